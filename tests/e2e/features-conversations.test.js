'use strict';
// Per-feature end-to-end tests, conversation features: member join/leave, conversation
// update, slow mode, receipts ("seen by") and unread counts, typing, presence. For each:
// the action, what every member device receives, the REST state after, and the denials.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { channelScene, denied, noneOf, onEvery, say, summary, waitEvent } = require('./lib/features');

let server;
before(async () => {
  server = await h.startServer();
});
after(async () => {
  if (server) await server.stop();
});

const T = { timeout: 90000 };

test('members: USER_JOINED and USER_LEFT reach every member device and the leaver; REST members', T, async () => {
  const s = await channelScene(server, 'mem');
  try {
    await h.apiOk(server, 'POST', `/api/v1/conversations/${s.conv}/join`, { token: s.c.token });
    for (const e of await onEvery([...s.members, s.c1], 'USER_JOINED', (x) => x.userId === s.c.userId)) {
      assert.equal(e.role, 'MEMBER');
    }
    let members = await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}/members`, { token: s.b.token });
    assert.ok(members.some((m) => m.userId === s.c.userId));

    await denied(server, 'DELETE', `/api/v1/conversations/${s.conv}/members/${s.a.userId}`, s.b.token, [403]);
    await denied(server, 'POST', `/api/v1/conversations/${s.conv}/join`, s.c.token, [409]);
    await h.apiOk(server, 'POST', `/api/v1/conversations/${s.conv}/leave`, { token: s.c.token });
    await onEvery([...s.members, s.c1], 'USER_LEFT', (x) => x.userId === s.c.userId);
    members = await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}/members`, { token: s.a.token });
    assert.ok(!members.some((m) => m.userId === s.c.userId));
    // After leaving, nothing more arrives and history is closed.
    await say(server, s.a, s.conv, 'after carol left');
    await onEvery(s.members, 'MESSAGE', (x) => x.text === 'after carol left');
    assert.equal(s.c1.messagesOf(s.conv).length, 0);
    await denied(server, 'GET', `/api/v1/conversations/${s.conv}/messages`, s.c.token, [403, 404]);
    // DM members are fixed.
    const dm = await h.createDm(server, s.a, s.b);
    await denied(server, 'POST', `/api/v1/conversations/${dm}/members`, s.a.token, [403], { userId: s.c.userId });
    await denied(server, 'POST', `/api/v1/conversations/${dm}/join`, s.c.token, [403, 404]);
  } finally {
    await s.close();
  }
});

test('conversation update: CONVERSATION_UPDATED to every device, REST shows it; owners only', T, async () => {
  const s = await channelScene(server, 'upd');
  try {
    const conv = await h.apiOk(server, 'PATCH', `/api/v1/conversations/${s.conv}`, {
      token: s.a.token,
      body: { topic: 'new topic' },
    });
    assert.equal(conv.topic, 'new topic');
    for (const e of await onEvery(s.members, 'CONVERSATION_UPDATED', (x) => x.conversationId === s.conv)) {
      assert.equal(e.topic, 'new topic');
      assert.equal(e.settings.allowReactions, true);
    }
    const rest = await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}`, { token: s.b.token });
    assert.equal(rest.topic, 'new topic');
    await denied(server, 'PATCH', `/api/v1/conversations/${s.conv}`, s.b.token, [403], { topic: 'mine now' });
    await denied(server, 'PATCH', `/api/v1/conversations/${s.conv}`, s.c.token, [403, 404], { topic: 'intruder' });
    assert.equal((await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}`, { token: s.a.token })).topic, 'new topic');
  } finally {
    await s.close();
  }
});

test('slow mode: the second send is refused with the time to wait, over REST and STOMP; owners exempt', T, async () => {
  const s = await channelScene(server, 'slow');
  try {
    const settings = { allowReactions: true, allowPins: true, allowThread: true, slowModeSeconds: 60 };
    await h.apiOk(server, 'PATCH', `/api/v1/conversations/${s.conv}`, { token: s.a.token, body: { settings } });
    await onEvery(s.members, 'CONVERSATION_UPDATED', (x) => x.settings.slowModeSeconds === 60);
    await say(server, s.b, s.conv, 'one');
    const r = await denied(server, 'POST', `/api/v1/conversations/${s.conv}/messages`, s.b.token, [429], { text: 'two' });
    assert.ok(r.body.retryAfterMs > 0 && r.body.retryAfterMs <= 60000, `retryAfterMs ${r.body.retryAfterMs}`);
    assert.match(r.body.detail, /slow mode/);
    s.b1.publish('/app/chat', { messageId: h.uniqueName('s'), conversationId: s.conv, userId: s.b.userId, text: 'three' });
    const err = await s.b1.expectError('a send in slow mode');
    assert.match(err.message, /slow mode.*retry after \d+ ms/);
    // Owners are exempt.
    await say(server, s.a, s.conv, 'owner one');
    await say(server, s.a, s.conv, 'owner two');
    const texts = (await h.listMessages(server, s.a, s.conv)).map((m) => m.text);
    assert.deepEqual(texts, ['one', 'owner one', 'owner two']);
  } finally {
    await s.close();
  }
});

test('receipts: SEEN reaches the DM partner and the reader\'s devices, not channel members; unread counts', T, async () => {
  const a = await h.newUser(server, 'rc_a');
  const b = await h.newUser(server, 'rc_b');
  const dm = await h.createDm(server, a, b);
  const ch = await h.createChannel(server, a, [b]);
  const a1 = await h.openDevice(server, a, { name: 'rc-alice#1' });
  const a2 = await h.openDevice(server, a, { name: 'rc-alice#2' });
  const b1 = await h.openDevice(server, b, { name: 'rc-bob#1' });
  const b2 = await h.openDevice(server, b, { name: 'rc-bob#2' });
  const all = [a1, a2, b1, b2];
  try {
    for (const d of all) await d.subscribeAll();
    await a1.sendChat(dm, 'hi bob');
    await a1.sendChat(dm, 'are you there?');
    const [last] = await onEvery([b1], 'MESSAGE', (x) => x.text === 'are you there?');
    assert.equal((await summary(server, b, dm)).unreadCount, 2);

    await b1.publish('/app/ack', { conversationId: dm, seenSeq: last.seq }, { receipt: true })();
    for (const e of await onEvery([a1, a2, b2], 'SEEN', (x) => x.conversationId === dm)) {
      assert.deepEqual([e.userId, e.seenSeq, e.seq], [b.userId, last.seq, undefined]);
    }
    assert.equal((await summary(server, b, dm)).unreadCount, 0);
    const members = await h.apiOk(server, 'GET', `/api/v1/conversations/${dm}/members`, { token: a.token });
    assert.equal(members.find((m) => m.userId === b.userId).seenSeq, last.seq, 'the durable seen position');

    // Channels: receipts are off by default; the reader's own devices still sync.
    const m = await say(server, a, ch, 'channel news');
    await h.apiOk(server, 'POST', `/api/v1/conversations/${ch}/ack`, { token: b.token, body: { seenSeq: m.serverSeq } });
    await waitEvent(b2, 'SEEN', (x) => x.conversationId === ch);
    await noneOf(server, [a1, a2], 'SEEN', (x) => x.conversationId === ch, () => a1.sendChat(ch, 'marker'));
    // Denials: a non-member's ack.
    const c = await h.newUser(server, 'rc_c');
    await denied(server, 'POST', `/api/v1/conversations/${dm}/ack`, c.token, [404], { seenSeq: 1 });
  } finally {
    await Promise.all(all.map((d) => d.close()));
  }
});

test('typing: a start has a ttl, repeats within a second are dropped, a stop is forwarded', T, async () => {
  const s = await channelScene(server, 'typ');
  try {
    // Five starts in one burst (well within the one-second refresh interval).
    for (let i = 0; i < 4; i += 1) s.b1.publish('/app/typing', { conversationId: s.conv, typing: true });
    await s.b1.publish('/app/typing', { conversationId: s.conv, typing: true }, { receipt: true })();
    await s.b1.publish('/app/typing', { conversationId: s.conv, typing: false }, { receipt: true })();
    for (const d of [s.a1, s.a2]) {
      const stop = await waitEvent(d, 'TYPING', (x) => x.typing === false);
      assert.equal(stop.userId, s.b.userId);
      const starts = d.events.filter((e) => e.eventType === 'TYPING' && e.typing === true);
      assert.equal(starts.length, 1, `${d.name}: one start forwarded of five`);
      assert.equal(starts[0].ttlMs, 5000);
    }
    // A non-member's typing is refused.
    s.c1.publish('/app/typing', { conversationId: s.conv, typing: true });
    const err = await s.c1.expectError('typing as a non-member');
    assert.match(err.message, /member|not found/i);
  } finally {
    await s.close();
  }
});

test('presence: ONLINE with the first device, OFFLINE a grace period after the last, to users sharing a conversation; REST', T, async () => {
  const a = await h.newUser(server, 'pr_a');
  const b = await h.newUser(server, 'pr_b');
  const stranger = await h.newUser(server, 'pr_x');
  const dm = await h.createDm(server, a, b);
  const watcher = await h.openDevice(server, b, { name: 'pr-bob' });
  const other = await h.openDevice(server, stranger, { name: 'pr-stranger' });
  try {
    await watcher.subscribeMessages();
    await other.subscribeMessages();
    let p = await h.apiOk(server, 'GET', `/api/v1/users/${a.userId}/presence`, { token: b.token });
    assert.equal(p.status, 'OFFLINE');
    const a1 = await h.openDevice(server, a, { name: 'pr-alice#1' });
    const a2 = await h.openDevice(server, a, { name: 'pr-alice#2' });
    const online = await waitEvent(watcher, 'PRESENCE', (x) => x.userId === a.userId && x.status === 'ONLINE');
    assert.equal(online.seq, undefined);
    p = await h.apiOk(server, 'GET', `/api/v1/users/${a.userId}/presence`, { token: b.token });
    assert.deepEqual([p.status, p.connections], ['ONLINE', 2]);
    await a1.close();
    await a2.close();
    const closed = Date.now();
    const offline = await waitEvent(watcher, 'PRESENCE', (x) => x.userId === a.userId && x.status === 'OFFLINE');
    // The servers run with a 1 s grace period (lib/harness.js TEST_SERVER_ENV).
    assert.ok(Date.now() - closed >= 900, `OFFLINE after the grace period, not ${Date.now() - closed} ms after the close`);
    assert.ok(Date.parse(offline.lastSeenAt) > 0);
    const ofAlice = watcher.events.filter((e) => e.eventType === 'PRESENCE' && e.userId === a.userId);
    assert.deepEqual(ofAlice.map((e) => e.status), ['ONLINE', 'OFFLINE'], 'one ONLINE for two devices');
    const list = await h.apiOk(server, 'GET', `/api/v1/conversations/${dm}/presence`, { token: b.token });
    assert.deepEqual(
      list.map((x) => [x.userId, x.status]),
      [
        [a.userId, 'OFFLINE'],
        [b.userId, 'ONLINE'],
      ],
    );
    assert.equal(list[0].lastSeenAt, offline.lastSeenAt);
    assert.equal(other.events.filter((e) => e.eventType === 'PRESENCE' && e.userId === a.userId).length, 0);
    await denied(server, 'GET', `/api/v1/conversations/${dm}/presence`, stranger.token, [404]);
  } finally {
    await watcher.close();
    await other.close();
  }
});
