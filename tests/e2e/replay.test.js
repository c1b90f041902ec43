'use strict';
// Replay: a device offline through 200 mixed events (sends, thread replies, edits, deletes,
// reactions added and removed, pins and unpins, joins and leaves) resumes with the `resume`
// SUBSCRIBE header and, applying the replayed events in seq order to the state it had,
// ends with exactly the state the REST API returns.

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

const EMOJIS = ['👍', '🎉', ':smile:'];
const EVENTS = 200;

/** A small seeded PRNG (mulberry32): the same mix of actions on every run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- the client-side model

/** A conversation's client-side state: messages, reactions, pins, members. */
function emptyState() {
  return { messages: new Map(), reactions: new Set(), pins: new Set(), members: new Set() };
}

function messageFields(m) {
  return {
    userId: m.userId,
    text: m.text,
    edited: m.edited,
    deleted: m.deleted,
    versionCount: m.versionCount,
    threadRootId: m.threadRootId || null,
  };
}

/** The reducer: applies one conversation event (as delivered on /user/queue/messages). */
function apply(state, e) {
  switch (e.eventType) {
    case 'MESSAGE': {
      state.messages.set(e.messageId, { ...messageFields(e), replyCount: 0 });
      if (e.threadRootId) state.messages.get(e.threadRootId).replyCount = e.threadReplyCount;
      break;
    }
    case 'MESSAGE_EDITED':
    case 'MESSAGE_DELETED': {
      const old = state.messages.get(e.messageId);
      state.messages.set(e.messageId, { ...messageFields(e), replyCount: old.replyCount });
      break;
    }
    case 'REACTION_ADDED':
      state.reactions.add(`${e.messageId}|${e.emoji}|${e.userId}`);
      break;
    case 'REACTION_REMOVED':
      state.reactions.delete(`${e.messageId}|${e.emoji}|${e.userId}`);
      break;
    case 'MESSAGE_PINNED':
      state.pins.add(e.messageId);
      break;
    case 'MESSAGE_UNPINNED':
      state.pins.delete(e.messageId);
      break;
    case 'USER_JOINED':
      state.members.add(e.userId);
      break;
    case 'USER_LEFT':
      state.members.delete(e.userId);
      break;
    default:
      throw new Error(`unexpected event ${e.eventType} at seq ${e.seq}`);
  }
}

/** The state as the REST API returns it, read as `user`. */
async function restState(user, conv) {
  const state = emptyState();
  for (const m of await h.listMessages(server, user, conv)) {
    state.messages.set(m.messageId, { ...messageFields(m), replyCount: m.replyCount });
    const reactions = await h.apiOk(server, 'GET', `/api/v1/messages/${m.messageId}/reactions`, { token: user.token });
    for (const r of reactions) state.reactions.add(`${m.messageId}|${r.emoji}|${r.userId}`);
  }
  const pins = await h.apiOk(server, 'GET', `/api/v1/conversations/${conv}/pins`, { token: user.token });
  for (const p of pins) state.pins.add(p.messageId);
  const members = await h.apiOk(server, 'GET', `/api/v1/conversations/${conv}/members`, { token: user.token });
  for (const m of members) state.members.add(m.userId);
  return state;
}

function plain(state) {
  return {
    messages: Object.fromEntries([...state.messages].sort(([a], [b]) => a.localeCompare(b))),
    reactions: [...state.reactions].sort(),
    pins: [...state.pins].sort(),
    members: [...state.members].sort(),
  };
}

// ---------------------------------------------------------------- the offline activity

/**
 * Performs one random action that appends exactly one event; `world` tracks what the
 * server holds (so every action is valid and changes something).
 */
async function randomAction(rnd, world, conv) {
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const members = world.people.filter((p) => world.members.has(p.userId));
  const live = [...world.messages.values()].filter((m) => !m.deleted);
  const call = (method, path, user, body) => h.apiOk(server, method, path, { token: user.token, body });
  const r = rnd();
  if (r < 0.3 || live.length < 3) {
    const who = pick(members);
    const m = await call('POST', `/api/v1/conversations/${conv}/messages`, who, { text: `msg ${world.n++}` });
    world.messages.set(m.messageId, { id: m.messageId, author: who, deleted: false, root: null, replies: 0 });
    return 'send';
  }
  if (r < 0.4) {
    const roots = live.filter((m) => !m.root);
    const root = pick(roots);
    const who = pick(members);
    const m = await call('POST', `/api/v1/conversations/${conv}/messages`, who, {
      text: `reply ${world.n++}`,
      threadRootId: root.id,
    });
    root.replies += 1;
    world.messages.set(m.messageId, { id: m.messageId, author: who, deleted: false, root: root.id, replies: 0 });
    return 'reply';
  }
  const own = live.filter((m) => world.members.has(m.author.userId));
  if (r < 0.5 && own.length) {
    const m = pick(own);
    await call('PATCH', `/api/v1/messages/${m.id}`, m.author, { text: `edited ${world.n++}` });
    return 'edit';
  }
  const deletable = own.filter((m) => !m.root && m.replies === 0);
  if (r < 0.57 && deletable.length > 2) {
    const m = pick(deletable);
    await call('DELETE', `/api/v1/messages/${m.id}`, m.author);
    m.deleted = true;
    return 'delete';
  }
  const liveIds = new Set(live.map((m) => m.id));
  const removable = [...world.reactions].filter((k) => {
    const [id, , user] = k.split('|');
    return liveIds.has(id) && world.members.has(user);
  });
  if (r < 0.72 && removable.length && rnd() < 0.4) {
    const key = pick(removable);
    const [id, emoji, user] = key.split('|');
    const who = world.people.find((p) => p.userId === user);
    await call('DELETE', `/api/v1/messages/${id}/reactions/${encodeURIComponent(emoji)}`, who);
    world.reactions.delete(key);
    return 'unreact';
  }
  const pinned = [...world.pins].filter((id) => liveIds.has(id));
  if (r >= 0.72 && r < 0.84 && pinned.length && rnd() < 0.4) {
    const id = pick(pinned);
    await call('DELETE', `/api/v1/messages/${id}/pin`, pick(members));
    world.pins.delete(id);
    return 'unpin';
  }
  if (r < 0.72) {
    const who = pick(members);
    const m = pick(live);
    const emoji = pick(EMOJIS);
    const key = `${m.id}|${emoji}|${who.userId}`;
    const path = `/api/v1/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`;
    if (world.reactions.has(key)) {
      await call('DELETE', path, who);
      world.reactions.delete(key);
      return 'unreact';
    }
    await call('PUT', path, who);
    world.reactions.add(key);
    return 'react';
  }
  if (r < 0.84) {
    const m = pick(live);
    const who = pick(members);
    if (world.pins.has(m.id)) {
      await call('DELETE', `/api/v1/messages/${m.id}/pin`, who);
      world.pins.delete(m.id);
      return 'unpin';
    }
    await call('PUT', `/api/v1/messages/${m.id}/pin`, who);
    world.pins.add(m.id);
    return 'pin';
  }
  const joiners = world.pool.filter((p) => !world.members.has(p.userId));
  const leavers = world.pool.filter((p) => world.members.has(p.userId));
  if (joiners.length && (rnd() < 0.6 || !leavers.length)) {
    const who = pick(joiners);
    await call('POST', `/api/v1/conversations/${conv}/join`, who);
    world.members.add(who.userId);
    return 'join';
  }
  const who = pick(leavers);
  await call('POST', `/api/v1/conversations/${conv}/leave`, who);
  world.members.delete(who.userId);
  return 'leave';
}

test(`offline through ${EVENTS} mixed events: resume and replay reproduce the REST state`, { timeout: 180000 }, async () => {
  const alice = await h.newUser(server, 'rp_a');
  const bob = await h.newUser(server, 'rp_b');
  const pool = [];
  for (let i = 0; i < 4; i += 1) pool.push(await h.newUser(server, `rp_p${i}`));
  const conv = await h.createChannel(server, alice, [bob]);

  // Online: bob's device sees the start and remembers the latest seq; its state is REST's.
  let device = await h.openDevice(server, bob, { name: 'bob-online' });
  await device.subscribeMessages();
  const sender = await h.openDevice(server, alice, { name: 'alice' });
  for (let i = 0; i < 3; i += 1) await sender.sendChat(conv, `before ${i}`);
  await sender.close();
  await device.waitFor(() => device.messagesOf(conv).length >= 3, h.ms(10000), '3 messages while online');
  const lastSeq = Math.max(...device.events.filter((e) => e.conversationId === conv).map((e) => e.seq));
  const state = await restState(bob, conv);
  await device.close();

  // Offline: exactly EVENTS events by the others.
  const world = {
    n: 0,
    people: [alice, ...pool],
    pool,
    members: new Set([alice.userId, bob.userId]),
    messages: new Map(),
    reactions: new Set(),
    pins: new Set(),
  };
  for (const [id, m] of state.messages) {
    world.messages.set(id, { id, author: alice, deleted: m.deleted, root: m.threadRootId, replies: m.replyCount });
  }
  const rnd = prng(42);
  const kinds = {};
  for (let i = 0; i < EVENTS; i += 1) {
    const kind = await randomAction(rnd, world, conv);
    kinds[kind] = (kinds[kind] || 0) + 1;
  }
  for (const k of ['send', 'reply', 'edit', 'delete', 'react', 'unreact', 'pin', 'unpin', 'join', 'leave']) {
    assert.ok(kinds[k] > 0, `the mix has ${k}: ${JSON.stringify(kinds)}`);
  }
  const conversation = await h.apiOk(server, 'GET', `/api/v1/conversations/${conv}`, { token: bob.token });
  assert.equal(conversation.lastSeq, lastSeq + EVENTS, 'one event per action');

  // Resume: the replay comes before the SUBSCRIBE's RECEIPT.
  device = await h.openDevice(server, bob, { name: 'bob-resumed' });
  try {
    await device.subscribeMessages({ resume: `${conv}:${lastSeq}` });
    const replayed = device.events.filter((e) => e.conversationId === conv && e.seq !== undefined);
    assert.deepEqual(
      replayed.map((e) => e.seq),
      Array.from({ length: EVENTS }, (_, i) => lastSeq + 1 + i),
      'every event after the resume position, once, in seq order',
    );
    for (const e of replayed) apply(state, e);
    assert.deepEqual(plain(state), plain(await restState(bob, conv)), 'replayed state equals the REST state');
  } finally {
    await device.close();
  }
});
