// The live connection: STOMP 1.2 (@stomp/stompjs, global `StompJs`) over a raw WebSocket
// (`/ws/websocket`) or SockJS (`/ws`, global `SockJS`, with a chosen transport list).
//
// On every (re)connect: CONNECT with `Authorization: Bearer <token>`, then SUBSCRIBE
// `/user/queue/messages` with the `resume` header (`<conversationId>:<lastSeq>,...`, the
// store's positions) so the gateway replays what was missed before live events, and
// `/user/queue/notifications/private` (ack offsets of our sends). Sends wait in an outbox
// until their ack offset arrives and are sent again after a reconnect with the same
// `messageId` (the server's idempotency key), so a drop never loses or duplicates one.

/** Conversations listed in one `resume` header (one header line stays under 8 KiB). */
export const MAX_RESUME = 150;

/** sockjs-client transport names, and short aliases accepted in `?transport=`. */
const SOCKJS_ALIASES = { jsonp: 'jsonp-polling', xhr: 'xhr-polling', streaming: 'xhr-streaming' };

/**
 * The transport from the page's `?transport=` parameter: `websocket` (default, raw STOMP over
 * WebSocket), `sockjs` (SockJS, every transport), or a comma list of sockjs-client transport
 * names (`htmlfile`, `jsonp-polling` or `jsonp`, `xhr-streaming`, `xhr-polling`,
 * `eventsource`, `iframe-htmlfile`, ...).
 */
export function parseTransport(search) {
  const raw = (new URLSearchParams(search).get('transport') || 'websocket').trim();
  if (raw === 'websocket' || raw === 'ws') return { kind: 'websocket', label: 'websocket' };
  if (raw === 'sockjs') return { kind: 'sockjs', transports: null, label: 'sockjs' };
  const transports = raw
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => SOCKJS_ALIASES[t] || t);
  return { kind: 'sockjs', transports, label: `sockjs: ${transports.join(', ')}` };
}

export class Live extends EventTarget {
  /**
   * `cfg`: /config.json; `transport`: from parseTransport; `hooks`: `token()` (a fresh
   * access token), `beforeSubscribe()` (async, e.g. refresh the conversation list),
   * `resume()` (a list of `[conversationId, seq]`), `onEvent(body)`, `onAck(ack)`,
   * `onSendFailed(item, reason)`.
   */
  constructor(cfg, transport, hooks) {
    super();
    this.cfg = cfg;
    this.transport = transport;
    this.hooks = hooks;
    /** clientMsgId -> {body, attempts}: SENDs not yet acknowledged, in order. */
    this.outbox = new Map();
    this.status = 'connecting';
    this.transportName = null;
    /** The last `resume` header sent, and how many events its replay delivered (the events
     * before the SUBSCRIBE's RECEIPT), for diagnostics and tests. */
    this.lastResume = null;
    this.lastReplayCount = null;
    this.replaying = false;
    this.replayed = 0;
    this.connects = 0;
    this.client = null;
  }

  setStatus(status) {
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, transport: this.transportName } }));
  }

  endpoint() {
    if (this.transport.kind === 'sockjs') {
      if (!this.cfg.sockJsPath) throw new Error('SockJS is disabled on this gateway');
      return `${location.origin}${this.cfg.sockJsPath}`;
    }
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${this.cfg.webSocketPath}`;
  }

  /** Opens the connection; it reconnects by itself (1 s, doubling up to 8 s) until `stop`. */
  start() {
    const { Client, ReconnectionTimeMode } = window.StompJs;
    const url = this.endpoint();
    const client = new Client({
      reconnectDelay: 1000,
      maxReconnectDelay: 8000,
      reconnectTimeMode: ReconnectionTimeMode ? ReconnectionTimeMode.EXPONENTIAL : undefined,
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
      connectionTimeout: 15000,
      debug: () => {},
    });
    if (this.transport.kind === 'sockjs') {
      const options = this.transport.transports ? { transports: this.transport.transports } : {};
      client.webSocketFactory = () => new window.SockJS(url, null, options);
    } else {
      client.brokerURL = url;
    }
    client.beforeConnect = async () => {
      this.setStatus(this.connects === 0 ? 'connecting' : 'reconnecting');
      try {
        const token = await this.hooks.token();
        client.connectHeaders = { Authorization: `Bearer ${token}`, 'device-type': 'web' };
      } catch {
        // keep the previous headers; CONNECT fails and the client retries
      }
    };
    client.onConnect = () => this.onConnected(client);
    client.onWebSocketClose = () => {
      if (this.client === client && client.active) this.setStatus('reconnecting');
    };
    client.onStompError = (frame) => this.onStompError(frame);
    this.client = client;
    client.activate();
  }

  async stop() {
    const client = this.client;
    this.client = null;
    this.setStatus('offline');
    if (client) await client.deactivate();
  }

  get connected() {
    return Boolean(this.client && this.client.connected && this.status === 'live');
  }

  async onConnected(client) {
    this.connects += 1;
    const socket = client.webSocket;
    this.transportName = this.transport.kind === 'sockjs' ? (socket && socket.transport) || 'sockjs' : 'websocket';
    try {
      await this.hooks.beforeSubscribe();
    } catch {
      // REST unreachable: the resume positions we have are still right
    }
    if (this.client !== client || !client.connected) return;
    const positions = this.hooks.resume();
    const resume = positions
      .slice(0, MAX_RESUME)
      .map(([id, seq]) => `${id}:${seq}`)
      .join(',');
    this.lastResume = resume;
    const headers = { id: 'messages', receipt: `subscribed-${this.connects}` };
    if (resume) headers.resume = resume;
    this.replaying = true;
    this.replayed = 0;
    client.watchForReceipt(headers.receipt, () => {
      this.replaying = false;
      this.lastReplayCount = this.replayed;
      this.setStatus('live');
      this.flushOutbox();
    });
    client.subscribe('/user/queue/messages', (frame) => this.onMessage(frame), headers);
    client.subscribe('/user/queue/notifications/private', (frame) => this.onNotification(frame), { id: 'notifications' });
    this.dispatchEvent(new CustomEvent('resubscribed', { detail: { positions: positions.slice(MAX_RESUME) } }));
  }

  onMessage(frame) {
    let body;
    try {
      body = JSON.parse(frame.body);
    } catch {
      return;
    }
    if (this.replaying && typeof body.seq === 'number') this.replayed += 1;
    this.hooks.onEvent(body);
  }

  onNotification(frame) {
    let ack;
    try {
      ack = JSON.parse(frame.body);
    } catch {
      return;
    }
    if (ack.clientMsgId && this.outbox.has(ack.clientMsgId)) this.outbox.delete(ack.clientMsgId);
    this.hooks.onAck(ack);
  }

  onStompError(frame) {
    const message = frame.headers.message || 'STOMP error';
    const receipt = frame.headers['receipt-id'] || '';
    if (receipt.startsWith('chat:')) {
      const id = receipt.slice('chat:'.length);
      const item = this.outbox.get(id);
      this.outbox.delete(id);
      if (item) this.hooks.onSendFailed(item.body, message);
      return;
    }
    this.dispatchEvent(new CustomEvent('error', { detail: { message } }));
  }

  /**
   * Queues a chat message (`{conversationId, text, threadRootId?, attachmentIds?}`) and sends
   * it when live. Returns its client message id (`messageId` of the SEND body).
   */
  sendChat(body) {
    this.outbox.set(body.messageId, { body, attempts: 0 });
    if (this.connected) this.publishChat(this.outbox.get(body.messageId));
    return body.messageId;
  }

  publishChat(item) {
    item.attempts += 1;
    if (item.attempts > 5) {
      this.outbox.delete(item.body.messageId);
      this.hooks.onSendFailed(item.body, 'not acknowledged after 5 attempts');
      return;
    }
    this.client.publish({
      destination: '/app/chat',
      body: JSON.stringify(item.body),
      headers: { 'content-type': 'application/json', receipt: `chat:${item.body.messageId}` },
    });
  }

  flushOutbox() {
    for (const item of this.outbox.values()) {
      if (!this.connected) return;
      this.publishChat(item);
    }
  }

  /** Ephemeral typing signal (dropped when not connected). */
  typing(conversationId, typing) {
    if (!this.connected) return;
    this.client.publish({ destination: '/app/typing', body: JSON.stringify({ conversationId, typing }) });
  }

  /** Read position (`/app/ack`; dropped when not connected: the next one carries it). */
  ack(conversationId, seenSeq) {
    if (!this.connected) return;
    this.client.publish({
      destination: '/app/ack',
      body: JSON.stringify({ conversationId, deliveredSeq: seenSeq, seenSeq }),
    });
  }
}
