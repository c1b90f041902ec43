'use strict';
// Helpers of the per-feature end-to-end tests (features-*.test.js): a conversation with
// two devices of its owner and one of a member, event waits over every device, and REST
// denial checks.

const assert = require('node:assert/strict');
const h = require('./harness');

/**
 * A public channel owned by `alice` (two devices) with member `bob` (one device), and
 * `carol`, a user of the workspace who is not a member (one device). Every device is
 * subscribed to both user queues.
 */
async function channelScene(server, prefix) {
  const a = await h.newUser(server, `${prefix}_a`);
  const b = await h.newUser(server, `${prefix}_b`);
  const c = await h.newUser(server, `${prefix}_c`);
  const conv = await h.createChannel(server, a, [b]);
  const a1 = await h.openDevice(server, a, { name: `${prefix}-alice#1` });
  const a2 = await h.openDevice(server, a, { name: `${prefix}-alice#2` });
  const b1 = await h.openDevice(server, b, { name: `${prefix}-bob` });
  const c1 = await h.openDevice(server, c, { name: `${prefix}-carol` });
  const devices = [a1, a2, b1, c1];
  for (const d of devices) await d.subscribeAll();
  return {
    a,
    b,
    c,
    conv,
    a1,
    a2,
    b1,
    c1,
    members: [a1, a2, b1],
    async close() {
      await Promise.all(devices.map((d) => d.close()));
    },
  };
}

/** Waits on `device` for an event of `type` matching `pred`; returns it. */
function waitEvent(device, type, pred = () => true, what = type) {
  const find = () => device.events.find((e) => e.eventType === type && pred(e));
  return device.waitFor(find, h.ms(10000), what);
}

/** Waits for the event on every device; returns the events in device order. */
async function onEvery(devices, type, pred, what) {
  return Promise.all(devices.map((d) => waitEvent(d, type, pred, what)));
}

/** Asserts that `devices` got no event of `type` matching `pred` (after a marker round trip). */
async function noneOf(server, devices, type, pred, marker) {
  // A marker message through the same pipeline: whatever was sent before it has arrived.
  await marker();
  await h.sleep(h.ms(200));
  for (const d of devices) {
    const got = d.events.filter((e) => e.eventType === type && pred(e));
    assert.equal(got.length, 0, `${d.name} must not receive ${type}: ${JSON.stringify(got)}`);
  }
}

/** The REST status of a call, asserting it is one of `statuses` with a problem body. */
async function denied(server, method, path, token, statuses, body) {
  const r = await h.api(server, method, path, { token, body });
  assert.ok(statuses.includes(r.status), `${method} ${path}: expected ${statuses}, got ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.title, 'string', `${method} ${path}: a problem body`);
  return r;
}

/** Sends a message over REST as `user`; returns the stored message. */
function say(server, user, conv, text, extra = {}) {
  return h.apiOk(server, 'POST', `/api/v1/conversations/${conv}/messages`, {
    token: user.token,
    body: { text, clientMsgId: h.uniqueName('c'), ...extra },
  });
}

/** The conversation-list entry of `conv` for `user`. */
async function summary(server, user, conv) {
  const list = await h.apiOk(server, 'GET', '/api/v1/conversations', { token: user.token });
  const entry = list.find((c) => c.conversationId === conv);
  assert.ok(entry, `conversation ${conv} in the list of ${user.username}`);
  return entry;
}

const EMOJI = encodeURIComponent('👍');

module.exports = { channelScene, denied, EMOJI, noneOf, onEvery, say, summary, waitEvent };
