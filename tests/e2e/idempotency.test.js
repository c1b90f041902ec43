'use strict';
// A SEND /app/chat retried with the same messageId is stored once.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');

let server;
before(async () => {
  server = await h.startServer();
});
after(async () => {
  if (server) await server.stop();
});

test('a send retried with the same messageId is stored once; both ack offsets carry the same ackedSeq', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'idem_a');
  const b = await h.newUser(server, 'idem_b');
  const conv = await h.createDm(server, a, b);
  const alice = await h.openDevice(server, a, { name: 'alice' });
  await alice.subscribeAll();
  const bob = await h.openDevice(server, b, { name: 'bob' });
  await bob.subscribeMessages();
  let alice2;
  try {
    const messageId = crypto.randomUUID();
    await alice.sendChat(conv, 'say it once', { messageId });
    await alice.sendChat(conv, 'say it once', { messageId }); // the retry
    await alice.waitFor(
      () => alice.notifications.filter((n) => n.clientMsgId === messageId).length >= 2,
      h.ms(10000),
      'two ack offsets for the retried messageId',
    );
    const acks = alice.notifications.filter((n) => n.clientMsgId === messageId);
    assert.equal(acks.length, 2, `ack offsets: ${JSON.stringify(acks)}`);
    assert.deepEqual(acks.map((n) => n.status), ['PERSISTED', 'DUPLICATE']);
    assert.equal(acks[0].ackedSeq, acks[1].ackedSeq, 'both ack offsets carry the same ackedSeq');
    assert.equal(acks[0].messageId, acks[1].messageId, 'both ack offsets name the same stored message');
    for (const n of acks) {
      assert.equal(n.conversationId, conv);
      assert.equal(n.userId, a.userId);
    }

    // A retry from another connection (e.g. after a reconnect) is a duplicate too.
    alice2 = await h.openDevice(server, a, { name: 'alice-reconnected' });
    await alice2.subscribeNotifications();
    await alice2.sendChat(conv, 'say it once', { messageId });
    await alice2.waitFor(() => alice2.notifications.length >= 1, h.ms(10000), 'the ack offset of the retry');
    assert.equal(alice2.notifications[0].status, 'DUPLICATE');
    assert.equal(alice2.notifications[0].ackedSeq, acks[0].ackedSeq);

    const stored = await h.listMessages(server, b, conv);
    const copies = stored.filter((m) => m.clientMsgId === messageId);
    assert.equal(copies.length, 1, `REST lists ${copies.length} copies of the retried message: ${JSON.stringify(stored)}`);
    assert.equal(stored.length, 1, 'nothing else was stored');
    assert.equal(copies[0].serverSeq, acks[0].ackedSeq, 'the stored serverSeq is the acked seq');
    assert.equal(copies[0].messageId, acks[0].messageId);

    // The other member got the message once: a later marker arrives after exactly one copy.
    await alice.sendChat(conv, 'marker');
    await bob.waitFor(() => bob.messagesOf(conv).some((e) => e.text === 'marker'), h.ms(10000), 'the marker message');
    const seen = bob.messagesOf(conv).filter((e) => e.clientMsgId === messageId || e.text === 'say it once');
    assert.equal(seen.length, 1, `bob received ${seen.length} MESSAGE events for the retried send`);
  } finally {
    await Promise.all([alice, bob, alice2].filter(Boolean).map((d) => d.close()));
  }
});

test('concurrent retries of one messageId (pipelined, and from two connections) store one message', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'idem2_a');
  const b = await h.newUser(server, 'idem2_b');
  const conv = await h.createDm(server, a, b);
  const d1 = await h.openDevice(server, a, { name: 'alice#1' });
  const d2 = await h.openDevice(server, a, { name: 'alice#2' });
  try {
    await d1.subscribeNotifications();
    await d2.subscribeNotifications();
    const messageId = crypto.randomUUID();
    const body = { messageId, conversationId: conv, userId: a.userId, text: 'raced' };
    // No waiting between the sends: three in flight at once.
    const waits = [
      d1.publish('/app/chat', body, { receipt: true }),
      d1.publish('/app/chat', body, { receipt: true }),
      d2.publish('/app/chat', body, { receipt: true }),
    ];
    await Promise.all(waits.map((w) => w()));
    const acks = [...d1.notifications, ...d2.notifications].filter((n) => n.clientMsgId === messageId);
    assert.equal(acks.length, 3, `one ack offset per send: ${JSON.stringify(acks)}`);
    assert.deepEqual(acks.map((n) => n.status).sort(), ['DUPLICATE', 'DUPLICATE', 'PERSISTED']);
    assert.equal(new Set(acks.map((n) => n.ackedSeq)).size, 1, 'all ack offsets carry the same ackedSeq');
    const stored = await h.listMessages(server, b, conv);
    assert.equal(stored.length, 1, `REST lists ${stored.length} messages: ${JSON.stringify(stored)}`);
    assert.equal(stored[0].serverSeq, acks[0].ackedSeq);
  } finally {
    await d1.close();
    await d2.close();
  }
});
