'use strict';
// The scale-out topology under faults (issue #5): one core, two fanout workers and two
// gateways as separate processes over MariaDB (or PostgreSQL with CHAT_SCALEOUT_DB=postgres),
// Redis and Apache Kafka. STOMP clients are split across the gateways.
//
// Run by tests/external/scaleout.sh (which starts Kafka and builds chat-sys with the `kafka`
// and `failpoints` features); tests run one at a time (they restart shared services).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const h = require('../e2e/lib/harness');
const { startTopology } = require('../e2e/lib/topology');

const REPO = path.resolve(__dirname, '..', '..');
const DB = process.env.CHAT_SCALEOUT_DB || 'mysql';
// Generous limits: these tests are about loss and order under faults, not rate limiting.
const ENV = {
  CHAT_LIMITS__SENDS_PER_USER_PER_SEC: '5000',
  CHAT_LIMITS__SEND_BURST_PER_USER: '5000',
  CHAT_GATEWAY__SEND_RATE_PER_SEC: '5000',
  CHAT_GATEWAY__SEND_BURST: '5000',
  CHAT_GATEWAY__REGISTRY_TOUCH_INTERVAL_MS: '1000',
  CHAT_REDIS__REGISTRY_TTL_SECS: '6',
};

let topo;
before(async () => {
  topo = await startTopology({ bin: h.chatSysBin(), db: DB, env: ENV });
});
after(async () => {
  if (topo) await topo.stop();
});

/** A server-like handle pinned to gateway `i` (devices made with it connect there). */
const on = (i) => ({ restUrl: topo.restUrl, wsUrl: topo.gateways[i].wsUrl });

function redisCli(...args) {
  return execFileSync('redis-cli', ['-u', topo.redisUrl, ...args], { encoding: 'utf8' }).trim();
}

/** Sends `count` messages from `device` with up to `window` awaiting their RECEIPT. */
async function sendMany(device, conversationId, count, { prefix = 'm', window = 16, onAcked } = {}) {
  let next = 0;
  let acked = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await device.sendChat(conversationId, `${prefix}-${i}`);
      acked += 1;
      if (onAcked) await onAcked(acked);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}

/** Waits until `device` holds `n` distinct MESSAGE seqs of `conv`; returns them deduped. */
async function waitAll(device, conv, n, timeout = 90000) {
  await device.waitFor(() => h.dedupe(device.messagesOf(conv)).unique.length >= n, h.ms(timeout), `${n} messages of ${conv}`);
  return h.dedupe(device.messagesOf(conv));
}

function assertContiguous(unique, n, what) {
  const seqs = unique.map((e) => e.seq);
  assert.equal(seqs.length, n, `${what}: ${seqs.length} distinct events, expected ${n}`);
  for (let i = 1; i < seqs.length; i++) {
    assert.ok(seqs[i] > seqs[i - 1], `${what}: seq ${seqs[i]} after ${seqs[i - 1]} (out of order)`);
  }
}

test('messages between users on different gateways arrive in order, exactly once', async () => {
  const alice = await h.newUser(topo, 'alice');
  const bob = await h.newUser(topo, 'bob');
  const conv = await h.createChannel(topo, alice, [bob]);
  const devices = [
    await h.openDevice(on(0), alice, { name: 'alice@gw1' }),
    await h.openDevice(on(1), alice, { name: 'alice@gw2' }),
    await h.openDevice(on(0), bob, { name: 'bob@gw1' }),
    await h.openDevice(on(1), bob, { name: 'bob@gw2' }),
  ];
  for (const d of devices) await d.subscribeAll();
  await Promise.all([sendMany(devices[0], conv, 100, { prefix: 'a' }), sendMany(devices[3], conv, 100, { prefix: 'b' })]);
  const rest = await h.listMessages(topo, bob, conv);
  assert.equal(rest.length, 200);
  for (const d of devices) {
    const { unique, duplicates } = await waitAll(d, conv, 200);
    assertContiguous(unique, 200, d.name);
    assert.equal(duplicates, 0, `${d.name} got duplicates`);
    assert.deepEqual(unique.map((e) => e.seq), rest.map((m) => m.serverSeq), `${d.name}: the seqs the database holds`);
  }
  for (const d of devices) await d.close();
});

test('kill -9 of a fanout worker mid-run: the other takes over, nothing is lost', async () => {
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await h.newUser(topo, `f${i}`));
  const convs = [];
  for (let c = 0; c < 4; c++) convs.push(await h.createChannel(topo, users[c], users.filter((_, i) => i !== c)));
  const senders = [];
  const receivers = [];
  for (let i = 0; i < 4; i++) {
    const s = await h.openDevice(on(i % 2), users[i], { name: `send${i}` });
    await s.subscribeAll();
    senders.push(s);
    const r = await h.openDevice(on((i + 1) % 2), users[i], { name: `recv${i}` });
    await r.subscribeAll();
    receivers.push(r);
  }
  let killed = false;
  let total = 0;
  const onAcked = async () => {
    total += 1;
    if (!killed && total >= 500) {
      killed = true;
      await topo.fanouts[0].kill('SIGKILL');
    }
  };
  // 2,000 messages: each user sends 500 into its own channel.
  await Promise.all(senders.map((s, i) => sendMany(s, convs[i], 500, { prefix: `k${i}`, onAcked })));
  assert.ok(killed && topo.fanouts[0].exited, 'the first fanout worker was killed mid-run');
  for (const r of receivers) {
    for (const conv of convs) {
      const { unique } = await waitAll(r, conv, 500, 120000);
      assertContiguous(unique, 500, `${r.name} in ${conv}`);
    }
  }
  for (const d of [...senders, ...receivers]) await d.close();
  // Bring the worker back for the next tests.
  topo.fanouts[0].start();
  await topo.fanouts[0].serving('fanout');
});

test('kill -9 of a gateway: its clients resume on the other gateway and get everything', async () => {
  const alice = await h.newUser(topo, 'ga');
  const bob = await h.newUser(topo, 'gb');
  const conv = await h.createChannel(topo, alice, [bob]);
  const sender = await h.openDevice(on(1), alice, { name: 'alice@gw2' });
  await sender.subscribeAll();
  const victim = await h.openDevice(on(0), bob, { name: 'bob@gw1' });
  await victim.subscribeAll();
  await sendMany(sender, conv, 50, { prefix: 'before' });
  const first = await waitAll(victim, conv, 50);
  const lastSeq = first.unique[first.unique.length - 1].seq;

  await topo.gateways[0].kill('SIGKILL');
  await victim.waitFor(() => victim.closed, h.ms(15000), 'the close of the killed gateway');
  await sendMany(sender, conv, 50, { prefix: 'during' });

  const resumed = await h.openDevice(on(1), bob, { name: 'bob@gw2-resumed' });
  await resumed.subscribeMessages({ resume: `${conv}:${lastSeq}` });
  await sendMany(sender, conv, 10, { prefix: 'after' });
  const { unique, duplicates } = await waitAll(resumed, conv, 60);
  assert.equal(duplicates, 0);
  const stored = (await h.listMessages(topo, bob, conv)).map((m) => m.serverSeq).filter((s) => s > lastSeq);
  assert.equal(stored.length, 60);
  assert.deepEqual(unique.map((e) => e.seq), stored, 'bob got exactly what he missed, then the live messages');

  // The dead gateway's connections expire (TTL 6 s): no more entries are produced for it.
  const key = `gatewayId:${topo.gateways[0].nodeId}:stream`;
  await h.sleep(h.ms(8000));
  const len = Number(redisCli('XLEN', key));
  await sendMany(sender, conv, 10, { prefix: 'expired' });
  await waitAll(resumed, conv, 70);
  assert.equal(Number(redisCli('XLEN', key)), len, 'entries still produced for a dead gateway');

  await topo.restartGateway(0);
  for (const d of [sender, resumed]) await d.close();
});

test('kill -9 of the core between the broker ack and the outbox mark: published twice, delivered once', async () => {
  const alice = await h.newUser(topo, 'ca');
  const bob = await h.newUser(topo, 'cb');
  const conv = await h.createChannel(topo, alice, [bob]);
  const watcher = await h.openDevice(on(0), bob, { name: 'bob@gw1' });
  await watcher.subscribeAll();
  // Drain the outbox first (a delivered message proves everything before it was relayed).
  await h.apiOk(topo, 'POST', `/api/v1/conversations/${conv}/messages`, {
    token: alice.token,
    body: { clientMsgId: 'warm-up', text: 'warm-up' },
  });
  await waitAll(watcher, conv, 1);
  // The core dies right after Kafka acknowledged the next relayed batch.
  await topo.restartCore({ FAILPOINTS: 'relay-after-publish=return' });
  const sent = await h.api(topo, 'POST', `/api/v1/conversations/${conv}/messages`, {
    token: alice.token,
    body: { clientMsgId: 'crash-1', text: 'survives the crash' },
  }).catch((e) => ({ status: 0, error: String(e) }));
  const deadline = Date.now() + h.ms(20000);
  while (!topo.core.exited && Date.now() < deadline) await h.sleep(50);
  assert.ok(topo.core.exited, `the failpoint did not stop the core (send answered ${JSON.stringify(sent)})`);
  assert.match(topo.core.log(), /failpoint relay-after-publish/);
  await topo.restartCore({});
  const { unique } = await waitAll(watcher, conv, 2, 60000);
  assert.equal(unique[1].text ?? unique[1].content, 'survives the crash');
  await h.sleep(h.ms(3000));
  assert.equal(watcher.messagesOf(conv).length, 2, 'delivered more than once');
  const rest = await h.listMessages(topo, bob, conv);
  assert.equal(rest.length, 2);
  await watcher.close();
});

test('flushed Redis and a trimmed stream: clients are told to resync and end with every event', async () => {
  const alice = await h.newUser(topo, 'ra');
  const bob = await h.newUser(topo, 'rb');
  const conv = await h.createChannel(topo, alice, [bob]);
  const sender = await h.openDevice(on(1), alice, { name: 'alice@gw2' });
  await sender.subscribeAll();
  const bobs = [await h.openDevice(on(0), bob, { name: 'bob@gw1' }), await h.openDevice(on(1), bob, { name: 'bob@gw2' })];
  for (const d of bobs) await d.subscribeAll();
  await sendMany(sender, conv, 20, { prefix: 'pre' });
  for (const d of bobs) await waitAll(d, conv, 20);

  redisCli('FLUSHDB');
  await sendMany(sender, conv, 20, { prefix: 'flushed' });
  for (const d of bobs) {
    const { unique } = await waitAll(d, conv, 40);
    assertContiguous(unique, 40, `${d.name} after FLUSHDB`);
  }

  // Pause gateway 1, trim its stream below what it has read, resume it.
  const gw = topo.gateways[0];
  gw.child.kill('SIGSTOP');
  try {
    await sendMany(sender, conv, 30, { prefix: 'trimmed' });
    await h.sleep(h.ms(1000));
    redisCli('XTRIM', `gatewayId:${gw.nodeId}:stream`, 'MAXLEN', '0');
  } finally {
    gw.child.kill('SIGCONT');
  }
  const { unique } = await waitAll(bobs[0], conv, 70);
  assertContiguous(unique, 70, 'bob@gw1 after the trim');
  assert.ok(bobs[0].events.some((e) => e.eventType === 'RESYNC'), 'bob@gw1 was told to resync');
  for (const d of [sender, ...bobs]) await d.close();
});

test('broker and database restarts during sends: no acknowledged message is lost', async () => {
  const alice = await h.newUser(topo, 'ba');
  const bob = await h.newUser(topo, 'bb');
  const conv = await h.createChannel(topo, alice, [bob]);
  const watcher = await h.openDevice(on(0), bob, { name: 'bob@gw1' });
  await watcher.subscribeAll();
  const sender = await h.openDevice(on(1), alice, { name: 'alice@gw2' });
  await sender.subscribeAll();

  const kafka = (cmd) => execFileSync('bash', [path.join(REPO, 'scripts/kafka.sh'), cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  let acked = 0;
  const sending = sendMany(sender, conv, 200, { prefix: 'k', window: 4, onAcked: async () => { acked += 1; } });
  while (acked < 50) await h.sleep(20);
  kafka('stop');
  await h.sleep(h.ms(2000));
  kafka('start');
  await sending;
  let { unique } = await waitAll(watcher, conv, 200, 120000);
  assertContiguous(unique, 200, 'after the broker restart');

  if (DB === 'mysql') {
    const services = (cmd) => execFileSync('bash', [path.join(REPO, 'scripts/services.sh'), cmd, 'mariadb'], { stdio: ['ignore', 'ignore', 'inherit'] });
    services('stop');
    try {
      const r = await h.api(topo, 'POST', `/api/v1/conversations/${conv}/messages`, {
        token: alice.token,
        body: { clientMsgId: 'db-down', text: 'while the database is down' },
      });
      assert.equal(r.status, 503, `a send while the database is down: ${JSON.stringify(r)}`);
      assert.match(JSON.stringify(r.body), /unavailable/i);
    } finally {
      services('start');
    }
    const back = await h.api(topo, 'POST', `/api/v1/conversations/${conv}/messages`, {
      token: alice.token,
      body: { clientMsgId: 'db-back', text: 'after the database came back' },
    });
    assert.ok(back.status === 201 || back.status === 200, JSON.stringify(back));
    ({ unique } = await waitAll(watcher, conv, 201, 60000));
    assertContiguous(unique, 201, 'after the database restart');
  }
  const rest = await h.listMessages(topo, bob, conv);
  assert.equal(rest.length, DB === 'mysql' ? 201 : 200);
  for (const d of [sender, watcher]) await d.close();
});
