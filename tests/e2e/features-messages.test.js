'use strict';
// Per-feature end-to-end tests, message features: edit, delete, reactions, pins, threads,
// mentions. For each: the action, the event every member device receives (two devices of
// the owner, one of a member), the REST state after it, and the denials (non-member,
// setting off, wrong author).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const { channelScene, denied, EMOJI, noneOf, onEvery, say, summary, waitEvent } = require('./lib/features');

let server;
before(async () => {
  server = await h.startServer();
});
after(async () => {
  if (server) await server.stop();
});

const T = { timeout: 90000 };

test('edit: MESSAGE_EDITED to every device, REST shows the new text; others and non-members are refused', T, async () => {
  const s = await channelScene(server, 'ed');
  try {
    const messageId = await s.b1.sendChat(s.conv, 'first draft');
    const [created] = await onEvery(s.members, 'MESSAGE', (e) => e.messageId && e.text === 'first draft');
    const id = created.messageId;
    assert.equal(messageId, created.clientMsgId);
    const edited = await h.apiOk(server, 'PATCH', `/api/v1/messages/${id}`, { token: s.b.token, body: { text: 'final' } });
    assert.equal(edited.text, 'final');
    const events = await onEvery(s.members, 'MESSAGE_EDITED', (e) => e.messageId === id);
    for (const e of events) {
      assert.equal(e.text, 'final');
      assert.equal(e.edited, true);
      assert.equal(e.versionCount, 1);
      assert.ok(e.seq > created.seq, 'an edit is a new seq in the log');
    }
    const rest = await h.apiOk(server, 'GET', `/api/v1/messages/${id}`, { token: s.a.token });
    assert.deepEqual([rest.text, rest.edited, rest.versionCount], ['final', true, 1]);
    const versions = await h.apiOk(server, 'GET', `/api/v1/messages/${id}/versions`, { token: s.a.token });
    assert.equal(versions[0].oldText, 'first draft');

    await denied(server, 'PATCH', `/api/v1/messages/${id}`, s.a.token, [403], { text: 'not yours' });
    await denied(server, 'PATCH', `/api/v1/messages/${id}`, s.c.token, [403, 404], { text: 'intruder' });
    const after = await h.apiOk(server, 'GET', `/api/v1/messages/${id}`, { token: s.a.token });
    assert.equal(after.text, 'final', 'refused edits change nothing');
    assert.equal(s.c1.events.filter((e) => e.conversationId === s.conv).length, 0, 'non-members get no events');
  } finally {
    await s.close();
  }
});

test('delete: MESSAGE_DELETED tombstone to every device; only the author or an owner may delete', T, async () => {
  const s = await channelScene(server, 'del');
  try {
    const byAlice = await say(server, s.a, s.conv, 'alice says');
    const byBob = await say(server, s.b, s.conv, 'bob says');
    await denied(server, 'DELETE', `/api/v1/messages/${byAlice.messageId}`, s.b.token, [403]);
    await denied(server, 'DELETE', `/api/v1/messages/${byBob.messageId}`, s.c.token, [403, 404]);
    // The owner deletes Bob's message.
    await h.apiOk(server, 'DELETE', `/api/v1/messages/${byBob.messageId}`, { token: s.a.token });
    for (const e of await onEvery(s.members, 'MESSAGE_DELETED', (x) => x.messageId === byBob.messageId)) {
      assert.deepEqual([e.deleted, e.text], [true, '']);
    }
    const rest = await h.apiOk(server, 'GET', `/api/v1/messages/${byBob.messageId}`, { token: s.b.token });
    assert.deepEqual([rest.deleted, rest.text], [true, '']);
    const still = await h.apiOk(server, 'GET', `/api/v1/messages/${byAlice.messageId}`, { token: s.b.token });
    assert.equal(still.deleted, false);
  } finally {
    await s.close();
  }
});

test('reactions: added and removed on every device, REST list; refused when off or for non-members', T, async () => {
  const s = await channelScene(server, 'rx');
  try {
    const m = await say(server, s.a, s.conv, 'react to me');
    await h.apiOk(server, 'PUT', `/api/v1/messages/${m.messageId}/reactions/${EMOJI}`, { token: s.b.token });
    for (const e of await onEvery(s.members, 'REACTION_ADDED', (x) => x.messageId === m.messageId)) {
      assert.deepEqual([e.emoji, e.userId], ['👍', s.b.userId]);
    }
    const list = await h.apiOk(server, 'GET', `/api/v1/messages/${m.messageId}/reactions`, { token: s.a.token });
    assert.deepEqual(list.map((r) => [r.emoji, r.userId]), [['👍', s.b.userId]]);
    await h.apiOk(server, 'DELETE', `/api/v1/messages/${m.messageId}/reactions/${EMOJI}`, { token: s.b.token });
    await onEvery(s.members, 'REACTION_REMOVED', (x) => x.messageId === m.messageId && x.userId === s.b.userId);
    assert.deepEqual(await h.apiOk(server, 'GET', `/api/v1/messages/${m.messageId}/reactions`, { token: s.a.token }), []);

    await denied(server, 'PUT', `/api/v1/messages/${m.messageId}/reactions/${EMOJI}`, s.c.token, [403, 404]);
    const settings = { allowReactions: false, allowPins: true, allowThread: true, slowModeSeconds: 0 };
    await h.apiOk(server, 'PATCH', `/api/v1/conversations/${s.conv}`, { token: s.a.token, body: { settings } });
    const r = await denied(server, 'PUT', `/api/v1/messages/${m.messageId}/reactions/${EMOJI}`, s.b.token, [403]);
    assert.match(r.body.detail, /reaction/i);
    // The refused reactions produced no event.
    await noneOf(server, s.members, 'REACTION_ADDED', (x) => x.userId === s.c.userId, () => s.a1.sendChat(s.conv, 'marker'));
    for (const d of s.members) {
      assert.equal(d.events.filter((e) => e.eventType === 'REACTION_ADDED').length, 1, `${d.name}: one REACTION_ADDED`);
    }
  } finally {
    await s.close();
  }
});

test('pins: pinned and unpinned on every device, REST pins; refused when off or for non-members', T, async () => {
  const s = await channelScene(server, 'pin');
  try {
    const m = await say(server, s.a, s.conv, 'pin me');
    await h.apiOk(server, 'PUT', `/api/v1/messages/${m.messageId}/pin`, { token: s.b.token });
    for (const e of await onEvery(s.members, 'MESSAGE_PINNED', (x) => x.messageId === m.messageId)) {
      assert.equal(e.pinnedBy, s.b.userId);
    }
    const pins = await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}/pins`, { token: s.a.token });
    assert.deepEqual(pins.map((p) => p.messageId), [m.messageId]);
    await h.apiOk(server, 'DELETE', `/api/v1/messages/${m.messageId}/pin`, { token: s.a.token });
    await onEvery(s.members, 'MESSAGE_UNPINNED', (x) => x.messageId === m.messageId && x.unpinnedBy === s.a.userId);
    assert.deepEqual(await h.apiOk(server, 'GET', `/api/v1/conversations/${s.conv}/pins`, { token: s.b.token }), []);

    await denied(server, 'PUT', `/api/v1/messages/${m.messageId}/pin`, s.c.token, [403, 404]);
    await denied(server, 'GET', `/api/v1/conversations/${s.conv}/pins`, s.c.token, [403, 404]);
    const settings = { allowReactions: true, allowPins: false, allowThread: true, slowModeSeconds: 0 };
    await h.apiOk(server, 'PATCH', `/api/v1/conversations/${s.conv}`, { token: s.a.token, body: { settings } });
    await denied(server, 'PUT', `/api/v1/messages/${m.messageId}/pin`, s.a.token, [403]);
  } finally {
    await s.close();
  }
});

test('threads: a reply carries the root and its reply count; REST replies; refused when threads are off', T, async () => {
  const s = await channelScene(server, 'thr');
  try {
    const root = await say(server, s.a, s.conv, 'root');
    const wait = s.b1.publish(
      '/app/chat',
      { messageId: h.uniqueName('t'), conversationId: s.conv, userId: s.b.userId, text: 'reply', threadRootId: root.messageId },
      { receipt: true },
    );
    await wait();
    for (const e of await onEvery(s.members, 'MESSAGE', (x) => x.text === 'reply')) {
      assert.equal(e.threadRootId, root.messageId);
      assert.equal(e.threadReplyCount, 1);
    }
    const replies = await h.apiOk(server, 'GET', `/api/v1/messages/${root.messageId}/replies`, { token: s.a.token });
    assert.deepEqual(replies.map((r) => r.text), ['reply']);
    const rootNow = await h.apiOk(server, 'GET', `/api/v1/messages/${root.messageId}`, { token: s.b.token });
    assert.equal(rootNow.replyCount, 1);

    const settings = { allowReactions: true, allowPins: true, allowThread: false, slowModeSeconds: 0 };
    await h.apiOk(server, 'PATCH', `/api/v1/conversations/${s.conv}`, { token: s.a.token, body: { settings } });
    await denied(server, 'POST', `/api/v1/conversations/${s.conv}/messages`, s.b.token, [403], {
      text: 'late reply',
      threadRootId: root.messageId,
    });
    s.b1.publish('/app/chat', {
      messageId: h.uniqueName('t'),
      conversationId: s.conv,
      userId: s.b.userId,
      text: 'stomp reply',
      threadRootId: root.messageId,
    });
    const err = await s.b1.expectError('a thread reply with threads off');
    assert.match(err.message, /thread/i);
  } finally {
    await s.close();
  }
});

test('mentions: parsed on send and edit, in the events and REST, counted in the conversation list', T, async () => {
  const s = await channelScene(server, 'men');
  try {
    const m = await say(server, s.a, s.conv, `hello @${s.b.username} and @${s.c.username}`);
    assert.deepEqual(m.mentions.userIds.sort(), [s.b.userId, s.c.userId].sort());
    for (const e of await onEvery(s.members, 'MESSAGE', (x) => x.messageId === m.messageId)) {
      assert.ok(e.mentions.userIds.includes(s.b.userId), 'the event carries the mentions');
      assert.equal(e.mentions.channel, false);
    }
    assert.equal((await summary(server, s.b, s.conv)).mentionCount, 1);
    await say(server, s.a, s.conv, 'attention @channel');
    let entry = await summary(server, s.b, s.conv);
    assert.deepEqual([entry.mentionCount, entry.unreadCount], [2, 2]);
    // Editing the mention away removes it from the count.
    await h.apiOk(server, 'PATCH', `/api/v1/messages/${m.messageId}`, { token: s.a.token, body: { text: 'hello all' } });
    const [edited] = await onEvery([s.b1], 'MESSAGE_EDITED', (x) => x.messageId === m.messageId);
    assert.deepEqual(edited.mentions.userIds, []);
    assert.equal((await summary(server, s.b, s.conv)).mentionCount, 1);
    // Seen: unread and mention counts drop to zero.
    await h.apiOk(server, 'POST', `/api/v1/conversations/${s.conv}/ack`, { token: s.b.token, body: { seenSeq: edited.seq } });
    entry = await summary(server, s.b, s.conv);
    assert.deepEqual([entry.mentionCount, entry.unreadCount], [0, 0]);
    // The author's own messages never count.
    assert.equal((await summary(server, s.a, s.conv)).mentionCount, 0);
    await waitEvent(s.a2, 'MESSAGE_EDITED', (x) => x.messageId === m.messageId);
  } finally {
    await s.close();
  }
});
