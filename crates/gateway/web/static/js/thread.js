// The side panel: a thread (its root, the replies by seq, a reply composer) or search results.

import { clear, el, formatTime, toast } from './dom.js';
import { renderMessage } from './message.js';

export class SidePanel {
  /** `app`: `{store, api, sendMessage, pendingOf, openConversation}`. */
  constructor(app) {
    this.app = app;
    this.panel = document.getElementById('side-panel');
    this.body = document.getElementById('side-body');
    this.title = document.getElementById('side-title');
    /** `{kind: 'thread', conversationId, rootId}` or `{kind: 'search', query, results, error}`. */
    this.state = null;
    document.getElementById('side-close').addEventListener('click', () => this.close());
  }

  close() {
    this.state = null;
    this.panel.hidden = true;
  }

  /** Opens the thread of `rootId` in conversation `c`, loading its replies by REST. */
  async openThread(c, rootId) {
    this.state = { kind: 'thread', conversationId: c.id, rootId };
    this.render();
    try {
      const replies = await this.app.api.replies(rootId, 0);
      for (const m of replies) this.app.store.putMessage(c, m);
      const root = c.messages.get(rootId);
      if (root) root.replyCount = Math.max(root.replyCount || 0, replies.length);
      await this.app.ensureUsers(replies.map((m) => m.userId));
    } catch (e) {
      toast(`Could not load the thread: ${e.message}`);
    }
    this.render();
  }

  /** Shows search results (see `search.js`). */
  showSearch(state) {
    this.state = { kind: 'search', ...state };
    this.render();
  }

  render() {
    if (!this.state || this.app.editing) return;
    this.panel.hidden = false;
    if (this.state.kind === 'thread') this.renderThread();
    else this.renderSearch();
  }

  renderThread() {
    const { store } = this.app;
    const { conversationId, rootId } = this.state;
    const c = store.conversations.get(conversationId);
    this.title.textContent = 'Thread';
    const focused = this.form && this.form.contains(document.activeElement) ? document.activeElement : null;
    clear(this.body);
    if (!c) return;
    const root = c.messages.get(rootId);
    const thread = el('div', { class: 'thread', dataset: { rootId } });
    if (root) thread.append(renderMessage(this.app, c, root, 'thread'));
    const replies = store.replies(c, rootId).concat(this.app.pendingOf(c.id, rootId));
    thread.append(el('p', { class: 'reply-count' }, `${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}`));
    for (const m of replies) thread.append(renderMessage(this.app, c, m, 'thread'));
    // The reply form survives re-renders (what is being typed stays).
    if (!this.form || this.form.dataset.rootId !== rootId) this.form = this.replyForm(c, rootId);
    this.body.append(thread, this.form);
    if (focused) focused.focus();
  }

  replyForm(c, rootId) {
    const text = el('textarea', { name: 'text', rows: 2, placeholder: 'Reply in thread', 'aria-label': 'Reply' });
    const form = el('form', { class: 'reply-form', dataset: { rootId } }, text, el('button', { type: 'submit' }, 'Reply'));
    const submit = () => {
      const value = text.value.trim();
      if (!value) return;
      this.app.sendMessage(c, { text: value, threadRootId: rootId, attachmentIds: [] });
      text.value = '';
      this.render();
      text.focus();
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        submit();
      }
    });
    return form;
  }

  renderSearch() {
    const { store } = this.app;
    const { query, results, error, pending } = this.state;
    this.title.textContent = `Search: ${query}`;
    clear(this.body);
    if (pending) {
      this.body.append(el('p', { class: 'notice' }, 'Searching…'));
      return;
    }
    if (error) {
      this.body.append(el('p', { class: 'notice search-unavailable' }, error));
      return;
    }
    if (!results.length) {
      this.body.append(el('p', { class: 'notice' }, 'No messages found.'));
      return;
    }
    const list = el('ul', { class: 'search-results' });
    for (const r of results) {
      const c = store.conversations.get(r.conversationId);
      list.append(
        el(
          'li',
          {},
          el(
            'button',
            {
              type: 'button',
              class: 'link result',
              dataset: { messageId: r.messageId || '' },
              onclick: () => this.app.openConversation(r.conversationId),
            },
            el('span', { class: 'where' }, c ? store.conversationTitle(c) : 'conversation'),
            ' · ',
            el('span', { class: 'author' }, store.userName(r.userId)),
            ' · ',
            el('time', {}, formatTime(r.createdAt)),
          ),
          el(
            'div',
            { class: 'snippet' },
            r.snippet.map((part) => (part.matched ? el('mark', {}, part.text) : part.text)),
          ),
        ),
      );
    }
    this.body.append(list);
  }
}
