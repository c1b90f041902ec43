'use strict';
// Refusals: each gets an ERROR frame (stompjs onStompError), then a close, and nothing is
// stored (checked over REST as a member) or delivered (checked by a member's device).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');

let server;
let alice;
let bob;
let mallory; // not a member
let conv;
let observer; // bob's device, subscribed throughout
let markers = 0;

before(async () => {
  server = await h.startServer();
  alice = await h.newUser(server, 'sec_a');
  bob = await h.newUser(server, 'sec_b');
  mallory = await h.newUser(server, 'sec_m');
  conv = await h.createChannel(server, alice, [bob]);
  observer = await h.openDevice(server, bob, { name: 'bob-observer' });
  await observer.subscribeAll();
});
after(async () => {
  if (observer) await observer.close();
  if (server) await server.stop();
});

/**
 * After a refusal: REST (as a member) lists only the earlier markers, and the observer's
 * next MESSAGE event is a fresh marker (nothing was delivered in between).
 */
async function assertNothingStoredOrDelivered(label) {
  const stored = await h.listMessages(server, alice, conv);
  assert.deepEqual(
    stored.map((m) => m.text),
    Array.from({ length: markers }, (_, i) => `marker ${i + 1}`),
    `${label}: REST must list only the markers`,
  );
  markers += 1;
  const sender = await h.openDevice(server, alice, { name: 'alice-marker' });
  try {
    await sender.sendChat(conv, `marker ${markers}`);
  } finally {
    await sender.close();
  }
  await observer.waitFor(
    () => observer.messagesOf(conv).some((e) => e.text === `marker ${markers}`),
    h.ms(10000),
    `marker ${markers}`,
  );
  assert.deepEqual(
    observer.messagesOf(conv).map((e) => e.text),
    Array.from({ length: markers }, (_, i) => `marker ${i + 1}`),
    `${label}: the observer must have received only the markers`,
  );
  assert.equal(observer.errors.length, 0, 'the observer itself got no ERROR');
  assert.equal(observer.closed, false, 'the observer stays connected');
}

test('a SEND /app/chat with a spoofed userId gets an ERROR and stores nothing', { timeout: 60000 }, async () => {
  const d = await h.openDevice(server, alice, { name: 'alice-spoofing' });
  try {
    await d.subscribeAll();
    d.publish('/app/chat', { messageId: crypto.randomUUID(), conversationId: conv, userId: bob.userId, text: 'spoofed' }, {
      headers: { receipt: 'spoof-1' },
    });
    const err = await d.expectError('a spoofed userId');
    assert.match(err.message || '', /userId|forbidden|spoof/i, `ERROR message: ${err.message}`);
    assert.equal(err.headers['receipt-id'], 'spoof-1', 'the ERROR names the offending frame by receipt-id');
    assert.equal(d.notifications.length, 0, 'no ack offset for a refused send');
  } finally {
    await d.close();
  }
  await assertNothingStoredOrDelivered('spoofed userId');
});

test("a SUBSCRIBE to another user's queue gets an ERROR", { timeout: 60000 }, async () => {
  const d = await h.openDevice(server, mallory, { name: 'mallory-subscribing' });
  try {
    d.client.subscribe(`/user/${bob.userId}/queue/messages`, (f) => d.events.push(JSON.parse(f.body)));
    const err = await d.expectError("a subscription to another user's queue");
    assert.match(err.message || '', /another user|forbidden/i, `ERROR message: ${err.message}`);
    assert.equal(d.events.length, 0, 'nothing was delivered on the refused subscription');
  } finally {
    await d.close();
  }
  await assertNothingStoredOrDelivered("another user's queue");
});

test('a SEND to /topic/x gets an ERROR and stores nothing', { timeout: 60000 }, async () => {
  const d = await h.openDevice(server, alice, { name: 'alice-to-topic' });
  try {
    d.publish('/topic/x', { messageId: crypto.randomUUID(), conversationId: conv, userId: alice.userId, text: 'to a topic' }, {
      headers: { receipt: 'topic-1' },
    });
    const err = await d.expectError('a SEND to /topic/x');
    assert.match(err.message || '', /forbidden|\/app/i, `ERROR message: ${err.message}`);
    assert.equal(err.headers['receipt-id'], 'topic-1', 'the ERROR names the offending frame by receipt-id');
  } finally {
    await d.close();
  }
  await assertNothingStoredOrDelivered('SEND to /topic/x');
});

test('a SEND to a conversation the user is not in gets an ERROR and stores nothing', { timeout: 60000 }, async () => {
  const d = await h.openDevice(server, mallory, { name: 'mallory-sending' });
  try {
    await d.subscribeAll();
    d.publish('/app/chat', { messageId: crypto.randomUUID(), conversationId: conv, userId: mallory.userId, text: 'intruder' }, {
      headers: { receipt: 'nonmember-1' },
    });
    const err = await d.expectError('a send to a conversation the user is not in');
    assert.ok(err.message, 'the ERROR carries a message header');
    assert.equal(err.headers['receipt-id'], 'nonmember-1', 'the ERROR names the offending frame by receipt-id');
    assert.equal(d.notifications.length, 0, 'no ack offset for a refused send');
    assert.equal(d.messagesOf(conv).length, 0, 'the non-member received nothing of the conversation');
  } finally {
    await d.close();
  }
  // The non-member cannot read the conversation over REST either.
  const r = await h.api(server, 'GET', `/api/v1/conversations/${conv}/messages?afterSeq=0`, { token: mallory.token });
  assert.ok([403, 404].includes(r.status), `non-member REST listing -> HTTP ${r.status}`);
  await assertNothingStoredOrDelivered('non-member send');
});
