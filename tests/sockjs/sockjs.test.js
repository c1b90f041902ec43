'use strict';
// chat-sys over SockJS with the real sockjs-client, for every transport it supports in Node
// (websocket, xhr-streaming, xhr-polling, eventsource), carrying STOMP with @stomp/stompjs:
// CONNECT (token in the CONNECT Authorization header), SUBSCRIBE /user/queue/messages,
// SEND /app/chat, the MESSAGE at the other member, the sender's ack, heart-beats both ways,
// streaming responses that end at the server's limit (the client reconnects without losing
// a frame), and a server-side close (ERROR, then SockJS close 3000 "Go away!").
//
// Run by tests/external/sockjs.sh, which starts `chat-sys serve` and passes:
//   SOCKJS_URL       http://127.0.0.1:PORT/ws
//   ALICE_ID ALICE_TOKEN BOB_ID BOB_TOKEN   two registered users
//   CONVERSATION_ID  a conversation of both
// The server runs with 1 s STOMP heart-beats and a small streaming limit.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');

// Count HTTP requests by path (sockjs-client's xhr driver and the eventsource package both
// call http.request at run time), to see streaming responses end and the client reconnect.
const requests = [];
const originalRequest = http.request;
http.request = function request(options, ...rest) {
  const path = typeof options === 'string' ? new URL(options).pathname : options.path || options.pathname || '';
  requests.push(String(path).split('?')[0]);
  return originalRequest.call(this, options, ...rest);
};

const SockJS = require('sockjs-client');
const { Client } = require('@stomp/stompjs');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/external/sockjs.sh)`);
  return v;
};
const SOCKJS_URL = env('SOCKJS_URL');
const ALICE = { id: env('ALICE_ID'), token: env('ALICE_TOKEN') };
const BOB = { id: env('BOB_ID'), token: env('BOB_TOKEN') };
const CONVERSATION_ID = env('CONVERSATION_ID');
const WAIT = 15000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `check()` is true; rejects after `timeout` ms naming `what`. */
async function until(check, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

/**
 * A STOMP client over sockjs-client restricted to `transport`, connected. Records frames,
 * heart-beats, STOMP errors and the SockJS close event.
 */
async function open(transport, user, name) {
  const state = {
    name,
    sockets: [],
    messages: [],
    notifications: [],
    errors: [],
    heartbeats: 0,
    closeEvent: null,
    connected: false,
  };
  const client = new Client({
    webSocketFactory: () => {
      const sock = new SockJS(SOCKJS_URL, null, { transports: [transport], timeout: 10000 });
      state.sockets.push(sock);
      return sock;
    },
    connectHeaders: { Authorization: `Bearer ${user.token}` },
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
    reconnectDelay: 0,
    debug: () => {},
  });
  client.onConnect = () => {
    state.connected = true;
  };
  client.onStompError = (frame) => state.errors.push(frame.headers.message);
  client.onHeartbeatReceived = () => state.heartbeats++;
  client.onWebSocketClose = (evt) => {
    state.closeEvent = { code: evt.code, reason: evt.reason };
  };
  client.activate();
  await until(() => state.connected || state.closeEvent, `${name}: STOMP CONNECTED over ${transport}`);
  assert.ok(state.connected, `${name}: connection closed before CONNECTED: ${JSON.stringify(state.closeEvent)}`);
  assert.equal(state.sockets.length, 1);
  assert.equal(state.sockets[0].transport, transport, `${name}: sockjs-client picked ${state.sockets[0].transport}`);
  state.client = client;
  return state;
}

/** SUBSCRIBE with a receipt; resolves once the RECEIPT arrived. */
async function subscribe(state, destination, sink) {
  const receipt = `sub-${crypto.randomUUID()}`;
  let done = false;
  state.client.watchForReceipt(receipt, () => {
    done = true;
  });
  state.client.subscribe(destination, (m) => sink.push(m), { receipt });
  await until(() => done, `${state.name}: RECEIPT for SUBSCRIBE ${destination}`);
}

for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
  test(`${transport}: STOMP chat, heart-beats and server-side close over SockJS`, async () => {
    const bob = await open(transport, BOB, 'bob');
    const alice = await open(transport, ALICE, 'alice');
    try {
      await subscribe(bob, '/user/queue/messages', bob.messages);
      await subscribe(alice, '/user/queue/notifications/private', alice.notifications);

      // Enough traffic to pass the server's streaming limit several times: streaming
      // transports reconnect in between and must lose or repeat nothing. The text has
      // characters SockJS escapes and a '%' (eventsource percent-escaping).
      const texts = [];
      for (let i = 0; i < 12; i++) {
        const text = `${transport} #${i}: 100% ünïcødé \u2028 \u200c 😀 ${'x'.repeat(400)}`;
        texts.push(text);
        alice.client.publish({
          destination: '/app/chat',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            messageId: crypto.randomUUID(),
            conversationId: CONVERSATION_ID,
            userId: ALICE.id,
            text,
          }),
        });
      }
      const ofThisTest = () =>
        bob.messages.map((m) => JSON.parse(m.body)).filter((e) => typeof e.text === 'string' && e.text.startsWith(`${transport} #`));
      await until(() => ofThisTest().length >= texts.length, `bob: ${texts.length} MESSAGEs over ${transport}`);
      const events = ofThisTest();
      assert.deepEqual(
        events.map((e) => e.text),
        texts,
        'every message once, in order, byte-exact',
      );
      for (const e of events) {
        assert.equal(e.conversationId, CONVERSATION_ID);
        assert.equal(e.userId, ALICE.id);
      }
      const seqs = events.map((e) => e.seq ?? e.serverSeq);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq increases: ${seqs}`);
      await until(() => alice.notifications.length >= texts.length, `alice: ${texts.length} ack notifications`);
      for (const n of alice.notifications) assert.equal(JSON.parse(n.body).status, 'PERSISTED');

      // Heart-beats both ways: idle for a while, the server's keep arriving and the server
      // (1 s receive interval, closes after 2 s of silence) keeps the session.
      const before = bob.heartbeats;
      await sleep(3500);
      assert.ok(bob.heartbeats - before >= 2, `bob got ${bob.heartbeats - before} heart-beats in 3.5 s`);
      assert.equal(bob.closeEvent, null, 'still open after idling with heart-beats');
      assert.equal(alice.closeEvent, null);
      assert.equal(bob.sockets.length, 1, 'no STOMP reconnect happened');
      if (transport === 'xhr-streaming' || transport === 'eventsource') {
        // Past the 4 KiB streaming limit the server ended the response and sockjs-client
        // opened the next one on the same SockJS session.
        const receiver = transport === 'xhr-streaming' ? 'xhr_streaming' : 'eventsource';
        const session = bob.sockets[0]._transport.url.split('/').slice(-2).join('/');
        const count = requests.filter((p) => p.endsWith(`/${session}/${receiver}`)).length;
        assert.ok(count >= 2, `bob's ${receiver} requests: ${count} (expected a reconnect)`);
      }

      // Server-side close: a forbidden destination is an ERROR, then SockJS close 3000.
      alice.client.publish({ destination: '/topic/forged', body: 'nope' });
      await until(() => alice.closeEvent, 'alice: SockJS close after the ERROR');
      assert.equal(alice.errors.length, 1, `one ERROR: ${alice.errors}`);
      assert.match(alice.errors[0], /destination/i);
      assert.deepEqual(alice.closeEvent, { code: 3000, reason: 'Go away!' });

      // A client DISCONNECT: the server closes the SockJS session the same way.
      await bob.client.deactivate();
      await until(() => bob.closeEvent, 'bob: SockJS close after DISCONNECT');
    } finally {
      await Promise.allSettled([alice.client.deactivate(), bob.client.deactivate()]);
    }
  });
}
