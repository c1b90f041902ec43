// REST client of the chat-sys core API (`/api/v1`, RFC 9457 problem bodies).
//
// The API usually lives on another origin than this page (port 8081 vs the gateway's 8082);
// it answers cross-origin calls through its CORS policy. Authentication is a bearer access
// token in the `Authorization` header; a 401 triggers one refresh-token rotation and a retry.

/** An HTTP error with the problem body's `detail` (or `title`) as message. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }
}

/** The page's configuration from the gateway's `/config.json`, with `restBase` resolved. */
export async function loadConfig() {
  const res = await fetch('/config.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`/config.json: HTTP ${res.status}`);
  const cfg = await res.json();
  cfg.restBase = cfg.restUrl || `${location.protocol}//${location.hostname}:${cfg.restPort}`;
  return cfg;
}

/** Seconds until the JWT `token` expires (its `exp` claim), or Infinity when unreadable. */
function secondsLeft(token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return payload.exp - Date.now() / 1000;
  } catch {
    return Infinity;
  }
}

const SESSION_KEY = 'chat-sys.session';

export class Api {
  /** `base`: the REST API's base URL, e.g. `http://localhost:8081`. */
  constructor(base) {
    this.base = base.replace(/\/$/, '');
    this.accessToken = null;
    this.refreshToken = null;
    this.onSignedOut = () => {};
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        ({ accessToken: this.accessToken, refreshToken: this.refreshToken } = JSON.parse(saved));
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
  }

  get signedIn() {
    return Boolean(this.accessToken);
  }

  setTokens(data) {
    this.accessToken = data.accessToken;
    this.refreshToken = data.refreshToken || this.refreshToken;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ accessToken: this.accessToken, refreshToken: this.refreshToken }));
  }

  clearTokens() {
    this.accessToken = null;
    this.refreshToken = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  /**
   * One request. `opts`: `json` (a body sent as JSON), `body` (FormData etc.), `query` (an
   * object; undefined values skipped), `blob` (answer as a Blob). Resolves to the parsed JSON
   * (or null for 204); rejects with ApiError.
   */
  async request(method, path, opts = {}, retried = false) {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = {};
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const res = await fetch(url, { method, headers, body, credentials: 'omit' });
    if (res.status === 401 && !retried && this.refreshToken && !path.startsWith('/api/v1/auth/')) {
      if (await this.refresh()) return this.request(method, path, opts, true);
      this.clearTokens();
      this.onSignedOut();
    }
    if (!res.ok) {
      let problem = null;
      try {
        problem = await res.json();
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, problem);
    }
    if (opts.blob) return res.blob();
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  /** Rotates the refresh token; false when it was refused or the server is unreachable. */
  async refresh() {
    if (!this.refreshToken) return false;
    try {
      const res = await fetch(`${this.base}/api/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refreshToken: this.refreshToken }),
        credentials: 'omit',
      });
      if (!res.ok) return false;
      this.setTokens((await res.json()).data);
      return true;
    } catch {
      return false;
    }
  }

  /** A fresh enough access token (refreshed when it expires within a minute), for STOMP CONNECT. */
  async freshToken() {
    if (this.accessToken && secondsLeft(this.accessToken) < 60) await this.refresh();
    return this.accessToken;
  }

  async login(username, password) {
    const res = await this.request('POST', '/api/v1/auth/login', { json: { username, password } });
    this.setTokens(res.data);
  }

  register(username, password) {
    return this.request('POST', '/api/v1/auth/register', { json: { username, password } });
  }

  async logout() {
    try {
      await this.request('POST', '/api/v1/auth/logout', { json: { refreshToken: this.refreshToken } });
    } finally {
      this.clearTokens();
    }
  }

  me() {
    return this.request('GET', '/api/v1/users/me');
  }

  user(id) {
    return this.request('GET', `/api/v1/users/${encodeURIComponent(id)}`);
  }

  usersByPrefix(prefix) {
    return this.request('GET', '/api/v1/users', { query: { prefix, limit: 20 } });
  }

  /** The caller's conversations with `lastSeq`, read positions and unread counts. */
  conversations() {
    return this.request('GET', '/api/v1/conversations');
  }

  conversation(id) {
    return this.request('GET', `/api/v1/conversations/${id}`);
  }

  /** Presence of every member (`[{userId, status: 'ONLINE'|'OFFLINE', lastSeenAt}]`); 503 when off. */
  presence(conversationId) {
    return this.request('GET', `/api/v1/conversations/${conversationId}/presence`);
  }

  /** `body`: `{type: 'CHANNEL', name, memberIds}` or `{type: 'DM'|'GROUP_DM', memberIds}`. */
  createConversation(body) {
    return this.request('POST', '/api/v1/conversations', { json: body });
  }

  members(conversationId) {
    return this.request('GET', `/api/v1/conversations/${conversationId}/members`);
  }

  /** Messages with `afterSeq < serverSeq < beforeSeq`; without `afterSeq` the newest of the window. */
  messages(conversationId, { beforeSeq, afterSeq, limit = 50 } = {}) {
    return this.request('GET', `/api/v1/conversations/${conversationId}/messages`, {
      query: { beforeSeq, afterSeq, limit },
    });
  }

  /** Log events with `seq > afterSeq` (REST catch-up), in the `EventDto` shape. */
  events(conversationId, afterSeq, limit = 500) {
    return this.request('GET', `/api/v1/conversations/${conversationId}/events`, { query: { afterSeq, limit } });
  }

  replies(rootId, afterSeq = 0) {
    return this.request('GET', `/api/v1/messages/${rootId}/replies`, { query: { afterSeq, limit: 500 } });
  }

  editMessage(messageId, text) {
    return this.request('PATCH', `/api/v1/messages/${messageId}`, { json: { text } });
  }

  deleteMessage(messageId) {
    return this.request('DELETE', `/api/v1/messages/${messageId}`);
  }

  reactions(messageId) {
    return this.request('GET', `/api/v1/messages/${messageId}/reactions`);
  }

  react(messageId, emoji) {
    return this.request('PUT', `/api/v1/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }

  unreact(messageId, emoji) {
    return this.request('DELETE', `/api/v1/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }

  pins(conversationId) {
    return this.request('GET', `/api/v1/conversations/${conversationId}/pins`);
  }

  pin(messageId) {
    return this.request('PUT', `/api/v1/messages/${messageId}/pin`);
  }

  unpin(messageId) {
    return this.request('DELETE', `/api/v1/messages/${messageId}/pin`);
  }

  /** Uploads `file` (multipart field `file`); resolves to the AttachmentDto (PENDING until sent). */
  upload(conversationId, file) {
    const form = new FormData();
    form.append('file', file, file.name);
    return this.request('POST', `/api/v1/conversations/${conversationId}/attachments`, { body: form });
  }

  /** The content of an attachment (`url` as in MessageAttachmentDto) as a Blob. */
  download(url) {
    const path = url.startsWith('http') ? new URL(url).pathname : url;
    return this.request('GET', path, { blob: true });
  }

  /**
   * Full-text search (`GET /api/v1/search`). `params`: `q`, optional `conversationId`.
   * Rejects with ApiError 404 when the server has no search endpoint.
   */
  search(params) {
    return this.request('GET', '/api/v1/search', { query: params });
  }
}
