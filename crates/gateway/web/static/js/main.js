// The chat-sys web client: wires the REST client, the store, the live STOMP connection and
// the views. Loaded as an ES module by index.html (served by the gateway at `/`).
//
// Event handling is serialized (one promise chain), so the per-conversation order holds even
// when an event needs a REST round trip first (a gap, a conversation we did not know yet, a
// RESYNC notice). `window.chatApp` exposes the app for diagnostics (and the browser tests).

import { Api, ApiError, loadConfig } from './api.js';
import { ConversationView } from './conversation.js';
import { newId, toast } from './dom.js';
import { Live, parseTransport } from './live.js';
import { signIn } from './login.js';
import { wireSearch } from './search.js';
import { Sidebar } from './sidebar.js';
import { Applied, Store, fromEventDto } from './store.js';
import { SidePanel } from './thread.js';

const EVENTS_PAGE = 500;
const MEMBER_FETCHES = 6;

class App {
  constructor(cfg, api) {
    this.cfg = cfg;
    this.api = api;
    this.store = new Store();
    /** clientMsgId -> a message shown as "sending…" until its MESSAGE event arrives. */
    this.pending = new Map();
    /** Message being edited (rendering waits), open reaction palette, armed delete button. */
    this.editing = null;
    this.openPalette = null;
    this.armedDelete = null;
    this.chain = Promise.resolve();
    this.userFetches = new Map();
    this.renderQueued = false;
    this.live = new Live(cfg, parseTransport(location.search), {
      token: () => this.api.freshToken(),
      beforeSubscribe: () => this.refreshConversations(),
      resume: () => this.store.sortedConversations().map((c) => [c.id, c.seq]),
      onEvent: (ev) => this.ingest(ev),
      onAck: () => {},
      onSendFailed: (body, reason) => this.sendFailed(body, reason),
    });
    this.live.addEventListener('status', (e) => this.sidebar.showStatus(e.detail.status, e.detail.transport));
    this.live.addEventListener('error', (e) => toast(`Connection error: ${e.detail.message}`));
    this.live.addEventListener('resubscribed', (e) => {
      // Conversations beyond the resume header's limit catch up by REST.
      for (const [id] of e.detail.positions) this.serialize(() => this.catchUp(this.store.conversations.get(id)));
    });
    this.store.addEventListener('change', () => this.scheduleRender());
    this.sidebar = new Sidebar(this);
    this.view = new ConversationView(this);
    this.side = new SidePanel(this);
    wireSearch(this, this.side);
    document.getElementById('logout').addEventListener('click', () => this.logout());
    document.addEventListener('visibilitychange', () => this.view.markRead(this.view.conversation));
    window.addEventListener('hashchange', () => this.openFromHash());
  }

  async start() {
    for (;;) {
      if (!this.api.signedIn) await signIn(this.api);
      try {
        this.store.me = await this.api.me();
        break;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) throw e;
        this.api.clearTokens();
      }
    }
    this.api.onSignedOut = () => location.reload();
    this.store.users.set(this.store.me.userId, this.store.me);
    document.getElementById('app').hidden = false;
    await this.refreshConversations();
    this.render();
    this.live.start();
    await this.openFromHash();
  }

  async logout() {
    await this.live.stop();
    try {
      await this.api.logout();
    } catch {
      // the tokens are dropped locally either way
    }
    location.hash = '';
    location.reload();
  }

  openFromHash() {
    const id = location.hash.startsWith('#/c/') ? location.hash.slice(4) : null;
    if (id && this.store.conversations.has(id) && id !== this.store.activeId) return this.openConversation(id);
    return null;
  }

  /** Shows conversation `id` (and remembers it in the URL's fragment). */
  openConversation(id) {
    if (location.hash !== `#/c/${id}`) history.replaceState(null, '', `${location.pathname}${location.search}#/c/${id}`);
    if (this.side.state && this.side.state.kind === 'thread' && this.side.state.conversationId !== id) this.side.close();
    const opened = this.view.open(id);
    this.scheduleRender();
    return opened;
  }

  openThread(c, rootId) {
    return this.side.openThread(c, rootId);
  }

  /** Reloads the conversation summaries (new conversations, unread counts) and their members. */
  async refreshConversations() {
    const summaries = await this.api.conversations();
    for (const s of summaries) this.store.upsertConversation(s);
    this.store.rankFromServer(summaries);
    const known = new Set(summaries.map((s) => s.conversationId));
    for (const id of [...this.store.conversations.keys()]) {
      if (!known.has(id)) this.store.conversations.delete(id);
    }
    const missing = [...this.store.conversations.values()].filter((c) => c.memberIds.length === 0);
    const worker = async () => {
      while (missing.length) {
        const c = missing.shift();
        try {
          c.memberIds = (await this.api.members(c.id)).map((m) => m.userId);
        } catch {
          // left meanwhile
        }
      }
    };
    await Promise.all(Array.from({ length: MEMBER_FETCHES }, worker));
    // Presence of direct-message partners (the sidebar's dots); live changes come as PRESENCE.
    const direct = [...this.store.conversations.values()].filter((c) => c.type !== 'CHANNEL');
    const presenceWorker = async () => {
      while (direct.length) {
        const c = direct.shift();
        try {
          for (const p of await this.api.presence(c.id)) this.store.applyPresence(p);
        } catch {
          return; // not served or switched off: stop asking
        }
      }
    };
    await Promise.all(Array.from({ length: MEMBER_FETCHES }, presenceWorker));
    await this.ensureUsers([...this.store.conversations.values()].flatMap((c) => c.memberIds));
    this.scheduleRender();
  }

  /** Fetches the users not known yet (each once), then re-renders. */
  async ensureUsers(ids) {
    const wanted = [...new Set(ids)].filter((id) => id && !this.store.users.has(id));
    await Promise.all(
      wanted.map((id) => {
        if (!this.userFetches.has(id)) {
          const fetch = this.api
            .user(id)
            .then((u) => this.store.users.set(id, u))
            .catch(() => {})
            .finally(() => this.userFetches.delete(id));
          this.userFetches.set(id, fetch);
        }
        return this.userFetches.get(id);
      }),
    );
    if (wanted.length) this.scheduleRender();
  }

  serialize(task) {
    this.chain = this.chain.then(task).catch((e) => console.warn('event handling failed', e));
    return this.chain;
  }

  /** An event from the gateway, handled in arrival order. */
  ingest(ev) {
    return this.serialize(() => this.handle(ev));
  }

  async handle(ev) {
    if (ev.eventType === 'RESYNC') {
      const ids = ev.conversationIds && ev.conversationIds.length ? ev.conversationIds : [...this.store.conversations.keys()];
      for (const id of ids) await this.catchUp(this.store.conversations.get(id));
      return;
    }
    let result = this.store.apply(ev);
    if (result === Applied.UNKNOWN_CONVERSATION) {
      await this.refreshConversations();
      result = this.store.apply(ev);
    }
    if (result === Applied.GAP) {
      await this.catchUp(this.store.conversations.get(ev.conversationId));
      result = this.store.apply(ev);
    }
    if (ev.eventType === 'MESSAGE' && ev.clientMsgId && this.pending.has(ev.clientMsgId)) {
      this.pending.delete(ev.clientMsgId);
      this.scheduleRender();
    }
    if (result === Applied.OK && ev.eventType === 'MESSAGE') {
      await this.ensureUsers([ev.userId]);
      const c = this.store.conversations.get(ev.conversationId);
      if (c && this.store.activeId === c.id) this.view.markRead(c);
    }
    if (result === Applied.OK && (ev.eventType === 'USER_JOINED' || ev.eventType === 'USER_LEFT')) {
      if (this.store.me && ev.userId === this.store.me.userId && ev.eventType === 'USER_LEFT') {
        await this.refreshConversations();
      } else {
        await this.ensureUsers([ev.userId]);
      }
    }
  }

  /** Applies the REST events after the conversation's position (a gap, a resync, or beyond the resume header). */
  async catchUp(c) {
    if (!c) return;
    for (;;) {
      const events = await this.api.events(c.id, c.seq, EVENTS_PAGE);
      for (const e of events) this.store.apply(fromEventDto(e));
      if (events.length < EVENTS_PAGE) return;
    }
  }

  /** Sends a message over STOMP (queued while disconnected); shows it as pending meanwhile. */
  sendMessage(c, { text, threadRootId, attachmentIds }) {
    const me = this.store.me.userId;
    const messageId = newId();
    this.pending.set(messageId, {
      messageId,
      clientMsgId: messageId,
      conversationId: c.id,
      userId: me,
      threadRootId,
      text,
      createdAt: new Date().toISOString(),
      pending: true,
      attachments: [],
    });
    this.live.sendChat({ messageId, conversationId: c.id, userId: me, threadRootId, text, attachmentIds });
    this.scheduleRender();
  }

  sendFailed(body, reason) {
    const p = this.pending.get(body.messageId);
    if (p) p.failed = reason;
    toast(`Message not sent: ${reason}`);
    this.scheduleRender();
  }

  /** Pending (unconfirmed) messages of a conversation's timeline (`rootId` null) or thread. */
  pendingOf(conversationId, rootId) {
    return [...this.pending.values()].filter((p) => p.conversationId === conversationId && (p.threadRootId || null) === rootId);
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    this.sidebar.render();
    this.view.render();
    this.side.render();
  }

  renderSidebar() {
    this.sidebar.render();
  }
}

async function main() {
  let cfg;
  try {
    cfg = await loadConfig();
  } catch (e) {
    document.body.textContent = `Could not load the client configuration: ${e.message}`;
    return;
  }
  const app = new App(cfg, new Api(cfg.restBase));
  window.chatApp = app;
  try {
    await app.start();
  } catch (e) {
    toast(`Could not start: ${e.message}`);
  }
}

main();
