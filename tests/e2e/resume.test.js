'use strict';
// Catch-up by seq: a device that was offline while 50 messages were sent reconnects with
// `resume: <conversationId>:<lastSeq>` and gets exactly those 50, in order, then live ones.

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

test('offline during 50 messages: resume header replays exactly the 50, in order, then live', { timeout: 90000 }, async () => {
  const a = await h.newUser(server, 'res_a');
  const b = await h.newUser(server, 'res_b');
  const conv = await h.createDm(server, a, b);

  const sender = await h.openDevice(server, a, { name: 'alice' });
  await sender.subscribeAll();
  let bob = await h.openDevice(server, b, { name: 'bob-first' });
  await bob.subscribeMessages();
  try {
    // Online phase: bob sees 3 messages and remembers the last seq.
    for (let i = 0; i < 3; i++) await sender.sendChat(conv, `before ${i}`);
    await bob.waitFor(() => bob.messagesOf(conv).length >= 3, h.ms(10000), '3 messages while online');
    const lastSeq = Math.max(...bob.messagesOf(conv).map((e) => e.seq));
    await bob.close();

    // Offline phase: 50 messages.
    const offlineTexts = [];
    for (let i = 0; i < 50; i++) {
      const text = `offline ${i}`;
      offlineTexts.push(text);
      await sender.sendChat(conv, text);
    }
    const stored = (await h.listMessages(server, b, conv)).filter((m) => m.serverSeq > lastSeq);
    assert.equal(stored.length, 50, `REST lists ${stored.length} messages after seq ${lastSeq}, expected 50`);
    assert.deepEqual(stored.map((m) => m.text), offlineTexts, 'REST order of the offline messages');

    // Reconnect with the resume position: the SUBSCRIBE's RECEIPT follows the replay.
    bob = await h.openDevice(server, b, { name: 'bob-resumed' });
    await bob.subscribeMessages({ resume: `${conv}:${lastSeq}` });
    const replayed = bob.messagesOf(conv);
    assert.equal(replayed.length, 50, `replayed ${replayed.length} MESSAGE events before the SUBSCRIBE RECEIPT, expected exactly 50`);
    assert.deepEqual(
      replayed.map((e) => e.seq),
      stored.map((m) => m.serverSeq),
      'replayed seqs, in order, equal the stored seqs after the resume position',
    );
    assert.deepEqual(replayed.map((e) => e.text), offlineTexts, 'replayed texts in send order');
    assert.ok(
      bob.events.every((e) => e.conversationId !== conv || e.seq > lastSeq),
      'nothing at or before the resume position is replayed',
    );

    // Live after the replay: the next message arrives once, right after the 50.
    await sender.sendChat(conv, 'live after resume');
    await bob.waitFor(() => bob.messagesOf(conv).length >= 51, h.ms(10000), 'the live message after the replay');
    await h.sleep(h.ms(300));
    const all = bob.messagesOf(conv);
    assert.equal(all.length, 51, `expected 50 replayed + 1 live, got ${all.length} (duplicates at the seam?)`);
    assert.equal(all[50].text, 'live after resume');
    assert.ok(all[50].seq > all[49].seq, 'live seq follows the replay');
  } finally {
    await sender.close();
    await bob.close();
  }
});

test('resume while messages are being sent: no gap and no duplicate at the seam', { timeout: 90000 }, async () => {
  const a = await h.newUser(server, 'seam_a');
  const b = await h.newUser(server, 'seam_b');
  const conv = await h.createDm(server, a, b);
  const sender = await h.openDevice(server, a, { name: 'alice' });
  let bob;
  try {
    await sender.subscribeNotifications();
    for (let i = 0; i < 5; i++) await sender.sendChat(conv, `before ${i}`);
    const lastSeq = (await h.listMessages(server, b, conv)).at(-1).serverSeq;

    // alice keeps sending while bob resumes, and for a while after.
    let sent = 0;
    let subscribedAt = null;
    const sending = (async () => {
      while (sent < 400 && (subscribedAt === null || sent < subscribedAt + 15)) {
        await sender.sendChat(conv, `during ${sent}`);
        sent += 1;
      }
    })();
    await sender.waitFor(() => sent >= 10, h.ms(10000), '10 sends before the resume');
    bob = await h.openDevice(server, b, { name: 'bob-resuming' });
    await bob.subscribeMessages({ resume: `${conv}:${lastSeq}` });
    subscribedAt = sent;
    await sending;

    const stored = (await h.listMessages(server, b, conv)).filter((m) => m.serverSeq > lastSeq);
    assert.equal(stored.length, sent);
    await bob.waitFor(() => bob.messagesOf(conv).length >= stored.length, h.ms(15000), `${stored.length} messages`);
    await h.sleep(h.ms(300));
    assert.deepEqual(
      bob.messagesOf(conv).map((e) => e.seq),
      stored.map((m) => m.serverSeq),
      `bob's stream (replay, then live) must be exactly the stored seqs after ${lastSeq}, in order, without duplicates`,
    );
  } finally {
    await sender.close();
    if (bob) await bob.close();
  }
});
