// Message search through the REST API (`GET /api/v1/search?q=...`). A server without the
// search endpoint (404) or with search switched off (501/503) gets a clear notice instead.

import { ApiError } from './api.js';

/**
 * Search hits (`{results: [{message, conversation, snippet: [{text, matched}]}]}`) in one
 * shape: `{messageId, conversationId, userId, text, snippet, createdAt}`; `snippet` is a list
 * of `{text, matched}` pieces (the query's words are `matched`).
 */
function normalize(answer) {
  const items = Array.isArray(answer) ? answer : (answer && answer.results) || [];
  return items.map((hit) => {
    const m = hit.message || hit;
    let snippet = hit.snippet;
    if (typeof snippet === 'string') snippet = [{ text: snippet, matched: false }];
    return {
      messageId: m.messageId,
      conversationId: m.conversationId || (hit.conversation && hit.conversation.conversationId),
      userId: m.userId,
      text: m.text,
      snippet: Array.isArray(snippet) && snippet.length ? snippet : [{ text: m.text || '', matched: false }],
      createdAt: m.createdAt,
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
    if (err.status === 501 || err.status === 503) return `Search is unavailable on this server right now (${err.message}).`;
    if (err.status === 400 || err.status === 422) return `Bad search: ${err.message}`;
    return `Search failed: ${err.message}`;
  }
  return `Search failed: the server is unreachable (${err.message}).`;
}
