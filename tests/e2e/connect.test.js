'use strict';
// Authentication at CONNECT: the token in the handshake query (seed style) works, and a
// bad token is refused.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

let server;
before(async () => {
  server = await h.startServer();
});
after(async () => {
  if (server) await server.stop();
});

test('token in the handshake URL (?token=) connects and chats', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'qs_a');
  const b = await h.newUser(server, 'qs_b');
  const conv = await h.createDm(server, a, b);
  const alice = await h.openDevice(server, a, { name: 'alice-query-token', tokenInQuery: true });
  const bob = await h.openDevice(server, b, { name: 'bob-header-token' });
  try {
    assert.equal(alice.connectedFrame.headers.version, '1.2', 'STOMP 1.2 negotiated');
    assert.match(alice.connectedFrame.headers.server || '', /^chat-sys\//);
    await alice.subscribeAll();
    await bob.subscribeMessages();
    await alice.sendChat(conv, 'hello via query token');
    await bob.waitFor(() => bob.messagesOf(conv).length, h.ms(10000), 'the message from the query-token session');
    const [e] = bob.messagesOf(conv);
    assert.equal(e.userId, a.userId, 'the query token authenticated alice');
    assert.equal(e.text, 'hello via query token');
    await alice.waitFor(() => alice.notifications.length, h.ms(10000), 'the ack offset');
    assert.equal(alice.notifications[0].status, 'PERSISTED');
  } finally {
    await alice.close();
    await bob.close();
  }
});

test('a CONNECT with an invalid token is refused', { timeout: 60000 }, async () => {
  const d = new h.Device(server, { username: 'nobody', userId: null, token: 'not-a-jwt' }, { name: 'bad-token' });
  d.client.activate();
  try {
    const err = await d.expectError('an invalid token');
    assert.match(err.message || '', /authentication failed/i, `ERROR message: ${err.message}`);
    assert.equal(d.connectedFrame, null, 'no CONNECTED for an invalid token');
  } finally {
    await d.close();
  }
});
