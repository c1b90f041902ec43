'use strict';
// A SEND's RECEIPT comes only after the commit: when it arrives, the message is already
// visible over REST (and the ack offset has already been written on the same connection).

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

test('RECEIPT arrives only after commit: the message is visible via REST when the receipt arrives', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'rcpt_a');
  const b = await h.newUser(server, 'rcpt_b');
  const conv = await h.createDm(server, a, b);
  const alice = await h.openDevice(server, a, { name: 'alice' });
  try {
    await alice.subscribeNotifications();
    // Pipelined: 30 SENDs at once, each checked over REST (as the other member) the moment
    // its RECEIPT arrives; the ack offset must already be there.
    const N = 30;
    const checks = [];
    for (let i = 0; i < N; i++) {
      const messageId = crypto.randomUUID();
      const receipt = `send-${i}`;
      checks.push(
        new Promise((resolve, reject) => {
          alice.client.watchForReceipt(receipt, () => {
            const ackBefore = alice.notifications.some((n) => n.clientMsgId === messageId);
            h.listMessages(server, b, conv)
              .then((stored) => resolve({ i, messageId, ackBefore, visible: stored.some((m) => m.clientMsgId === messageId) }))
              .catch(reject);
          });
        }),
      );
      alice.publish('/app/chat', { messageId, conversationId: conv, userId: a.userId, text: `committed ${i}` }, {
        headers: { receipt },
      });
    }
    const results = await h.withTimeout(Promise.all(checks), h.ms(20000), `${N} RECEIPTs`);
    for (const r of results) {
      assert.ok(r.visible, `message ${r.i} (${r.messageId}) was not visible over REST when its RECEIPT arrived`);
      assert.ok(r.ackBefore, `message ${r.i}: its ack offset did not precede its RECEIPT`);
    }
    assert.equal((await h.listMessages(server, b, conv)).length, N);
    assert.equal(alice.errors.length, 0, `no ERROR: ${JSON.stringify(alice.errors)}`);
  } finally {
    await alice.close();
  }
});
