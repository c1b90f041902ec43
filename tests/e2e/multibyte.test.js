'use strict';
// Bodies with multibyte characters round-trip exactly: STOMP in, STOMP out (to the other
// member and the sender's other device), and REST.

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

const TEXTS = [
  'emoji 😀🎉🚀 family 👨‍👩‍👧‍👦 flag 🇯🇵 skin 👍🏽',
  'CJK 中文字符 日本語のテキスト 한국어 텍스트',
  'astral CJK 𠀀𠜎𠮷 and math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'combining e\u0301 vs \u00e9, RTL مرحبا بالعالم, Hebrew שלום',
  'JSON-ish "quotes" \\ backslash\nnew line\ttab and colon: value',
  '€'.repeat(1000), // 3000 bytes in 1000 characters
  '😀'.repeat(2000) + '中', // 8003 bytes: content-length in bytes, not characters
];

test('bodies with multibyte characters (emoji, CJK) round-trip exactly', { timeout: 60000 }, async () => {
  const a = await h.newUser(server, 'mb_a');
  const b = await h.newUser(server, 'mb_b');
  const conv = await h.createDm(server, a, b);
  const alice = await h.openDevice(server, a, { name: 'alice#1' });
  const alice2 = await h.openDevice(server, a, { name: 'alice#2' });
  const bob = await h.openDevice(server, b, { name: 'bob' });
  const all = [alice, alice2, bob];
  try {
    for (const d of all) await d.subscribeMessages();
    for (const text of TEXTS) await alice.sendChat(conv, text);
    // bob answers with the same texts, so both directions are covered.
    for (const text of TEXTS) await bob.sendChat(conv, `re: ${text}`);
    const expected = [...TEXTS, ...TEXTS.map((t) => `re: ${t}`)];

    const stored = await h.listMessages(server, a, conv);
    assert.deepEqual(stored.map((m) => m.text), expected, 'REST texts equal the sent texts');
    for (const d of all) {
      await d.waitFor(() => d.messagesOf(conv).length >= expected.length, h.ms(10000), `${expected.length} messages`);
      const got = d.messagesOf(conv).map((e) => e.text);
      assert.equal(got.length, expected.length, `${d.name}: message count`);
      got.forEach((text, i) => {
        assert.equal(Buffer.byteLength(text), Buffer.byteLength(expected[i]), `${d.name}: UTF-8 length of text ${i}`);
        assert.equal(text, expected[i], `${d.name}: text ${i}`);
      });
      assert.equal(d.errors.length, 0, `${d.name}: no ERROR`);
    }
  } finally {
    await Promise.all(all.map((d) => d.close()));
  }
});
