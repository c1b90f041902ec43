// Message search through the REST API (`GET /api/v1/search?q=...`). A server without the
// search endpoint (404) or with search switched off (501/503) gets a clear notice instead.

import { ApiError } from './api.js';

/** Search result items in one shape: `{messageId, conversationId, userId, text, snippet, createdAt}`. */
function normalize(answer) {
  const items = Array.isArray(answer) ? answer : (answer && (answer.results || answer.items || answer.hits || answer.data)) || [];
  return items.map((hit) => {
    const m = hit.message || hit;
    return {
      messageId: m.messageId,
      conversationId: m.conversationId || hit.conversationId,
      userId: m.userId || hit.userId,
      text: m.text,
      snippet: hit.snippet || hit.highlight || null,
      createdAt: m.createdAt || hit.createdAt,
    };
  });
}

/** Wires the sidebar's search form to `panel` (a SidePanel). */
export function wireSearch(app, panel) {
  const form = document.getElementById('search-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const query = form.elements.q.value.trim();
    if (!query) return;
    panel.showSearch({ query, results: [], pending: true });
    try {
      const answer = await app.api.search({ q: query });
      const results = normalize(answer);
      await app.ensureUsers(results.map((r) => r.userId).filter(Boolean));
      panel.showSearch({ query, results });
    } catch (err) {
      panel.showSearch({ query, results: [], error: describe(err) });
    }
  });
}

function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 404 || err.status === 405) return 'Search is not available on this server yet.';
    if (err.status === 501 || err.status === 503) return 'Search is switched off on this server.';
    if (err.status === 400 || err.status === 422) return `Bad search: ${err.message}`;
    return `Search failed: ${err.message}`;
  }
  return `Search failed: the server is unreachable (${err.message}).`;
}
