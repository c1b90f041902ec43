'use strict';
// SEND /app/typing reaches the other members' devices, never the sender's.

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

test('typing reaches the other members and not the sender', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'typ_a');
  const b = await h.newUser(server, 'typ_b');
  const c = await h.newUser(server, 'typ_c');
  const conv = await h.createChannel(server, a, [b, c]);
  const alice = await h.openDevice(server, a, { name: 'alice#1' });
  const alice2 = await h.openDevice(server, a, { name: 'alice#2' });
  const bob = await h.openDevice(server, b, { name: 'bob' });
  const carol = await h.openDevice(server, c, { name: 'carol' });
  const all = [alice, alice2, bob, carol];
  try {
    for (const d of all) await d.subscribeMessages();
    const typingOf = (d, typing) =>
      d.events.filter((e) => e.eventType === 'TYPING' && e.conversationId === conv && e.typing === typing);

    await alice.publish('/app/typing', { conversationId: conv, typing: true }, { receipt: true })();
    for (const d of [bob, carol]) {
      const [e] = await d.waitFor(() => typingOf(d, true).length && typingOf(d, true), h.ms(10000), 'TYPING true from alice');
      assert.equal(e.userId, a.userId, `${d.name}: TYPING names the typist`);
      assert.equal(e.seq, undefined, 'typing is ephemeral: no seq');
    }
    await alice.publish('/app/typing', { conversationId: conv, typing: false }, { receipt: true })();
    for (const d of [bob, carol]) {
      await d.waitFor(() => typingOf(d, false).length, h.ms(10000), 'TYPING false from alice');
    }

    // The others got both signals; give the sender's devices the same time and more.
    await alice.sendChat(conv, 'marker');
    for (const d of all) {
      await d.waitFor(() => d.messagesOf(conv).some((e) => e.text === 'marker'), h.ms(10000), 'the marker message');
    }
    await h.sleep(h.ms(300));
    for (const d of [alice, alice2]) {
      const typing = d.events.filter((e) => e.eventType === 'TYPING');
      assert.equal(typing.length, 0, `${d.name} (the typist's device) received its own typing: ${JSON.stringify(typing)}`);
    }
    for (const d of [bob, carol]) {
      assert.equal(typingOf(d, true).length, 1, `${d.name}: exactly one TYPING true`);
      assert.equal(typingOf(d, false).length, 1, `${d.name}: exactly one TYPING false`);
    }
  } finally {
    await Promise.all(all.map((d) => d.close()));
  }
});
