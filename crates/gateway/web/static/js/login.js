// The sign-in form: log in, or register then log in.

import { ApiError } from './api.js';

/**
 * Shows the form until the user is signed in; resolves then. `api`: the REST client.
 */
export function signIn(api) {
  const view = document.getElementById('login');
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  view.hidden = false;
  document.getElementById('app').hidden = true;
  form.username.focus();
  return new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      const register = event.submitter && event.submitter.value === 'register';
      const username = form.username.value.trim();
      const password = form.password.value;
      error.textContent = '';
      for (const b of form.querySelectorAll('button')) b.disabled = true;
      try {
        if (register) await api.register(username, password);
        await api.login(username, password);
        form.removeEventListener('submit', submit);
        form.reset();
        view.hidden = true;
        resolve();
      } catch (e) {
        error.textContent = describe(e, register);
      } finally {
        for (const b of form.querySelectorAll('button')) b.disabled = false;
      }
    };
    form.addEventListener('submit', submit);
  });
}

function describe(e, register) {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'Wrong user name or password.';
    if (e.status === 409) return 'That user name is taken.';
    return `${register ? 'Registration' : 'Login'} failed: ${e.message}`;
  }
  return `The chat server is unreachable (${e.message}).`;
}
