'use strict';
// Fanout: every message reaches every device of every member (the sender's other device
// included), in seq order, exactly once after dedupe by (conversationId, seq).

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

const PER_DEVICE = 10;

/**
 * Every device of every member sends PER_DEVICE messages concurrently (each device waits
 * for its own RECEIPT before the next send); then every device of every member must hold
 * exactly the REST listing, in seq order.
 */
async function fanoutScenario(t, members, conversationId, outsiders) {
  const devices = [];
  for (const u of members) {
    for (const n of [1, 2]) {
      const d = await h.openDevice(server, u, { name: `${u.username}#${n}` });
      await d.subscribeAll();
      devices.push(d);
    }
  }
  const outsiderDevices = [];
  for (const u of outsiders) {
    const d = await h.openDevice(server, u, { name: `${u.username}#outsider` });
    await d.subscribeAll();
    outsiderDevices.push(d);
  }
  try {
    const sent = new Map(); // text -> { userId, messageId }
    await Promise.all(
      devices.map(async (d) => {
        for (let i = 0; i < PER_DEVICE; i++) {
          const text = `${d.name} message ${i}`;
          const messageId = await d.sendChat(conversationId, text);
          sent.set(text, { userId: d.user.userId, messageId });
        }
      }),
    );
    const expected = devices.length * PER_DEVICE;

    const stored = await h.listMessages(server, members[0], conversationId);
    assert.equal(stored.length, expected, `REST lists ${stored.length} messages, ${expected} were sent`);
    for (const m of stored) {
      const s = sent.get(m.text);
      assert.ok(s, `REST lists a message that was not sent: ${JSON.stringify(m.text)}`);
      assert.equal(m.userId, s.userId, `author of ${JSON.stringify(m.text)}`);
      assert.equal(m.clientMsgId, s.messageId, `clientMsgId of ${JSON.stringify(m.text)}`);
    }
    const storedSeqs = stored.map((m) => m.serverSeq);
    const memberIds = members.map((u) => u.userId).sort();

    let duplicates = 0;
    for (const d of devices) {
      await d.waitFor(
        () => h.dedupe(d.messagesOf(conversationId)).unique.length >= expected,
        h.ms(20000),
        `${expected} distinct MESSAGE events of ${conversationId} (have ${h.dedupe(d.messagesOf(conversationId)).unique.length})`,
      );
    }
    // Late extras (out-of-order stragglers, events of messages never sent) would show here.
    await h.sleep(h.ms(300));
    for (const d of devices) {
      const { unique, duplicates: dup } = h.dedupe(d.messagesOf(conversationId));
      duplicates += dup;
      assert.deepEqual(
        unique.map((e) => e.seq),
        storedSeqs,
        `${d.name}: distinct seqs in arrival order must equal the stored seqs in order`,
      );
      unique.forEach((e, i) => {
        const m = stored[i];
        assert.equal(e.serverSeq, e.seq, `${d.name}: serverSeq = seq`);
        assert.equal(e.messageId, m.messageId, `${d.name}: messageId at seq ${e.seq}`);
        assert.equal(e.text, m.text, `${d.name}: text at seq ${e.seq}`);
        assert.equal(e.userId, m.userId, `${d.name}: userId at seq ${e.seq}`);
        assert.equal(e.conversationId, conversationId);
        assert.deepEqual([...(e.conversationMemberIds || [])].sort(), memberIds, `${d.name}: conversationMemberIds`);
      });
      // Every device's own sends are in the stream too (the sender's echo).
      const own = unique.filter((e) => e.text.startsWith(`${d.name} `));
      assert.equal(own.length, PER_DEVICE, `${d.name}: its own ${PER_DEVICE} sends are delivered back to it`);
    }
    for (const d of outsiderDevices) {
      assert.equal(d.messagesOf(conversationId).length, 0, `${d.name} is not a member and must receive nothing`);
    }
    t.diagnostic(`${devices.length} devices x ${expected} messages; duplicates dropped by dedupe: ${duplicates}`);
  } finally {
    await Promise.all([...devices, ...outsiderDevices].map((d) => d.close()));
  }
}

test('DM: every message reaches both devices of both members, in seq order, exactly once', { timeout: 90000 }, async (t) => {
  const a = await h.newUser(server, 'dm_a');
  const b = await h.newUser(server, 'dm_b');
  const c = await h.newUser(server, 'dm_out');
  const conv = await h.createDm(server, a, b);
  await fanoutScenario(t, [a, b], conv, [c]);
});

test('channel of three: every message reaches both devices of every member, in seq order, exactly once', { timeout: 90000 }, async (t) => {
  const a = await h.newUser(server, 'ch_a');
  const b = await h.newUser(server, 'ch_b');
  const c = await h.newUser(server, 'ch_c');
  const d = await h.newUser(server, 'ch_out');
  const conv = await h.createChannel(server, a, [b, c]);
  await fanoutScenario(t, [a, b, c], conv, [d]);
});
