'use strict';
// Test harness for the chat-sys end-to-end tests: builds or locates the binary, runs
// `chat-sys serve` on free ports with a temporary data directory, and offers small REST
// and STOMP (@stomp/stompjs over `ws`) helpers with bounded waits.
//
// Environment:
//   CHAT_SYS_BIN      server binary to use (default: `cargo build -p chat-sys`, then
//                     $CARGO_TARGET_DIR/debug/chat-sys, CARGO_TARGET_DIR defaulting to
//                     /var/cache/chat-sys-target)
//   CHAT_E2E_KEEP=1   keep each server's temporary directory (data + server.log) and print it
//   CHAT_E2E_TIMEOUT_SCALE  multiply every wait (default 1), for slow machines
//   CHAT_SYS_FEATURES cargo features of the built binary (e.g. `kafka`)
//   CHAT_E2E_TOPOLOGY mysql | postgres: run against the scale-out topology (lib/topology.js)

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('@stomp/stompjs');
const WebSocket = require('ws');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SCALE = Number(process.env.CHAT_E2E_TIMEOUT_SCALE || 1) || 1;
const SUBPROTOCOLS = ['v10.stomp', 'v11.stomp', 'v12.stomp'];
const PASSWORD = 'correct horse battery';

/**
 * Settings every test server gets: a 1 s presence grace period (the default 10 s would
 * outlast the tests' waits for OFFLINE).
 */
const TEST_SERVER_ENV = { CHAT_PRESENCE__OFFLINE_GRACE_MS: '1000' };

/** Milliseconds scaled by CHAT_E2E_TIMEOUT_SCALE. */
function ms(n) {
  return Math.round(n * SCALE);
}

function sleep(n) {
  return new Promise((resolve) => setTimeout(resolve, n));
}

/** Rejects with `what` when `promise` has not settled after `timeout` ms. */
function withTimeout(promise, timeout, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms: ${what}`)), timeout);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

let cachedBin;
/** The chat-sys binary: $CHAT_SYS_BIN, else built once with cargo. */
function chatSysBin() {
  if (cachedBin) return cachedBin;
  if (process.env.CHAT_SYS_BIN) {
    cachedBin = path.resolve(process.env.CHAT_SYS_BIN);
    if (!fs.existsSync(cachedBin)) throw new Error(`CHAT_SYS_BIN=${cachedBin} does not exist`);
    return cachedBin;
  }
  const targetDir = process.env.CARGO_TARGET_DIR || '/var/cache/chat-sys-target';
  const features = process.env.CHAT_SYS_FEATURES ? ['--features', process.env.CHAT_SYS_FEATURES] : [];
  execFileSync('cargo', ['build', '-q', '-p', 'chat-sys', ...features], {
    cwd: REPO_ROOT,
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  cachedBin = path.join(targetDir, 'debug', 'chat-sys');
  return cachedBin;
}

// Servers still running when the test process exits (a crash, a timeout) are killed, and
// their temporary directories removed unless CHAT_E2E_KEEP is set.
const running = new Map(); // child -> its temporary directory
process.on('exit', () => {
  for (const [child, dir] of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
    if (!process.env.CHAT_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Starts `chat-sys serve` on free ports with a fresh data directory and waits for
 * `/readyz`. Returns `{ restUrl, wsUrl, log(), stop() }`.
 */
async function startServer() {
  const bin = chatSysBin();
  if (process.env.CHAT_E2E_TOPOLOGY) {
    // The scale-out topology (core, two fanout workers, two gateways on MariaDB or
    // PostgreSQL, Redis, Kafka): successive devices connect to successive gateways.
    return require('./topology').startTopology({ bin, db: process.env.CHAT_E2E_TOPOLOGY });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-sys-e2e-'));
  const logFile = path.join(dir, 'server.log');
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn(bin, ['serve', '--data-dir', path.join(dir, 'data'), '--http-port', '0', '--ws-port', '0', '--grpc-port', '0'], {
    cwd: dir, // no stray ./chat-sys.toml
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info', ...TEST_SERVER_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.set(child, dir);
  let output = '';
  let exited = null;
  const onData = (chunk) => {
    output += chunk.toString('utf8');
    fs.writeSync(logFd, chunk);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exitedP = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve(exited);
    }),
  );
  const log = () => output.replace(/\x1b\[[0-9;]*m/g, '');
  const tail = () => log().split('\n').slice(-40).join('\n');

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      let timer;
      const gone = await Promise.race([exitedP, new Promise((resolve) => (timer = setTimeout(resolve, 5000, null)))]);
      clearTimeout(timer);
      if (!gone) {
        child.kill('SIGKILL');
        await exitedP;
      }
    }
    fs.closeSync(logFd);
    if (process.env.CHAT_E2E_KEEP) {
      console.error(`chat-sys e2e: kept ${dir}`);
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    // "chat-sys serving rest=0.0.0.0:PORT gateway=0.0.0.0:PORT ..."
    const deadline = Date.now() + ms(60000);
    let m;
    while (!(m = /chat-sys serving rest=(\S+) gateway=(\S+)/.exec(log()))) {
      if (exited) throw new Error(`chat-sys serve exited (${JSON.stringify(exited)}) before serving:\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`chat-sys serve did not log its addresses within 60 s:\n${tail()}`);
      await sleep(50);
    }
    const port = (addr) => addr.slice(addr.lastIndexOf(':') + 1).replace(/[^0-9]/g, '');
    const restUrl = `http://127.0.0.1:${port(m[1])}`;
    const wsUrl = `ws://127.0.0.1:${port(m[2])}`;
    for (;;) {
      if (exited) throw new Error(`chat-sys serve exited (${JSON.stringify(exited)}) before ready:\n${tail()}`);
      try {
        const r = await fetch(`${restUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`${restUrl}/readyz not ready within 60 s:\n${tail()}`);
      await sleep(100);
    }
    return { restUrl, wsUrl, log, tail, stop, dir };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---------------------------------------------------------------- REST

/** A REST call; returns `{ status, body }` (body parsed as JSON when possible). */
async function api(server, method, urlPath, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(server.restUrl + urlPath, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ms(15000)),
  });
  const text = await r.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* keep the text */
  }
  return { status: r.status, body: parsed };
}

/** Like `api`, but throws unless the status is 2xx. */
async function apiOk(server, method, urlPath, opts) {
  const r = await api(server, method, urlPath, opts);
  if (r.status < 200 || r.status > 299) {
    throw new Error(`${method} ${urlPath} -> HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
  }
  return r.body;
}

/** A unique valid username with the given prefix. */
function uniqueName(prefix) {
  return `${prefix}_${crypto.randomBytes(4).toString('hex')}`.toLowerCase().slice(0, 32);
}

/**
 * Registers and logs in a fresh user. Returns `{ userId, username, password, token }`.
 */
async function newUser(server, prefix = 'u') {
  const username = uniqueName(prefix);
  const user = await apiOk(server, 'POST', '/api/v1/auth/register', { body: { username, password: PASSWORD } });
  const login = await apiOk(server, 'POST', '/auth/login', { body: { username, password: PASSWORD } });
  const token = login && login.data && login.data.accessToken;
  if (!token) throw new Error(`login response without data.accessToken: ${JSON.stringify(login)}`);
  return { userId: user.userId, username, password: PASSWORD, token };
}

/** Creates a DM between `a` and `b`; returns the conversation id. */
async function createDm(server, a, b) {
  const c = await apiOk(server, 'POST', '/api/v1/conversations', {
    token: a.token,
    body: { type: 'DM', memberIds: [b.userId] },
  });
  return c.conversationId;
}

/** Creates a channel owned by `owner` with `others` added as members; returns its id. */
async function createChannel(server, owner, others = [], name = uniqueName('chan')) {
  const c = await apiOk(server, 'POST', '/api/v1/conversations', {
    token: owner.token,
    body: { type: 'CHANNEL', name },
  });
  for (const o of others) {
    await apiOk(server, 'POST', `/api/v1/conversations/${c.conversationId}/members`, {
      token: owner.token,
      body: { userId: o.userId },
    });
  }
  return c.conversationId;
}

/** All messages of a conversation in seq order, as `user` sees them over REST. */
async function listMessages(server, user, conversationId) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await apiOk(server, 'GET', `/api/v1/conversations/${conversationId}/messages?afterSeq=${after}&limit=500`, {
      token: user.token,
    });
    out.push(...page);
    if (page.length < 500) return out;
    after = page[page.length - 1].serverSeq;
  }
}

// ---------------------------------------------------------------- STOMP

const MESSAGES = '/user/queue/messages';
const NOTIFICATIONS = '/user/queue/notifications/private';

/**
 * One STOMP connection (a "device") of a user. Collects what arrives:
 * `events` (JSON bodies on /user/queue/messages), `notifications` (JSON bodies on
 * /user/queue/notifications/private), `errors` (ERROR frames as `{ message, body }`).
 */
class Device {
  constructor(server, user, { name, tokenInQuery = false } = {}) {
    this.user = user;
    this.name = name || `${user.username}-device`;
    this.events = [];
    this.notifications = [];
    this.errors = [];
    this.closed = false;
    this.connectedFrame = null;
    this.waiters = new Set();
    this.receiptSeq = 0;
    const url = `${server.wsUrl}/ws${tokenInQuery ? `?token=${encodeURIComponent(user.token)}` : ''}`;
    this.client = new Client({
      webSocketFactory: () => new WebSocket(url, SUBPROTOCOLS),
      connectHeaders: tokenInQuery ? {} : { Authorization: `Bearer ${user.token}` },
      reconnectDelay: 0, // an ERROR closes the connection: stay closed, do not retry
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
      debug: () => {},
    });
    this.client.onStompError = (frame) => {
      this.errors.push({ message: frame.headers.message, headers: frame.headers, body: frame.body });
      this.notify();
    };
    this.client.onWebSocketClose = () => {
      this.closed = true;
      this.notify();
    };
    this.client.onConnect = (frame) => {
      this.connectedFrame = frame;
      this.notify();
    };
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Activates the client and waits for CONNECTED. */
  async connect() {
    this.client.activate();
    await this.waitFor(() => this.connectedFrame, ms(10000), 'CONNECTED', { failOnClose: true });
    return this;
  }

  /**
   * Resolves once `predicate()` is truthy (checked after every incoming frame and close);
   * rejects after `timeout` ms with a message naming `what`, or (failOnClose) when the
   * connection closed first.
   */
  waitFor(predicate, timeout, what, { failOnClose = false } = {}) {
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        let v;
        try {
          v = predicate();
        } catch (e) {
          done();
          reject(e);
          return;
        }
        if (v) {
          done();
          resolve(v);
        } else if (failOnClose && this.closed) {
          done();
          reject(new Error(`${this.name}: connection closed while waiting for ${what}` + this.errorSummary()));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: timed out after ${timeout} ms waiting for ${what}` + this.errorSummary()));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }

  errorSummary() {
    return this.errors.length ? ` (ERROR frames: ${JSON.stringify(this.errors.map((e) => e.message))})` : '';
  }

  nextReceiptId() {
    this.receiptSeq += 1;
    return `${this.name}-r${this.receiptSeq}`;
  }

  /** Waits for the RECEIPT `id`; `watchForReceipt` must have been registered first. */
  receiptPromise(id, what) {
    let got = false;
    this.client.watchForReceipt(id, () => {
      got = true;
      this.notify();
    });
    return () => this.waitFor(() => got, ms(10000), `RECEIPT ${id} of ${what}`, { failOnClose: true });
  }

  /**
   * SUBSCRIBEs to /user/queue/messages (with `resume` when given) and waits for its RECEIPT,
   * so the subscription is live (and any replay delivered) when this resolves.
   */
  async subscribeMessages({ resume } = {}) {
    const receipt = this.nextReceiptId();
    const wait = this.receiptPromise(receipt, `SUBSCRIBE ${MESSAGES}`);
    const headers = { receipt };
    if (resume) headers.resume = resume;
    this.client.subscribe(
      MESSAGES,
      (frame) => {
        this.events.push(JSON.parse(frame.body));
        this.notify();
      },
      headers,
    );
    await wait();
  }

  /** SUBSCRIBEs to the ack offsets and waits for the RECEIPT. */
  async subscribeNotifications() {
    const receipt = this.nextReceiptId();
    const wait = this.receiptPromise(receipt, `SUBSCRIBE ${NOTIFICATIONS}`);
    this.client.subscribe(
      NOTIFICATIONS,
      (frame) => {
        this.notifications.push(JSON.parse(frame.body));
        this.notify();
      },
      { receipt },
    );
    await wait();
  }

  /** Subscribes to both user queues. */
  async subscribeAll(opts) {
    await this.subscribeMessages(opts);
    await this.subscribeNotifications();
    return this;
  }

  /** SENDs a JSON body; with `{ receipt: true }` returns a function that awaits the RECEIPT. */
  publish(destination, body, { receipt = false, headers = {} } = {}) {
    const h = { 'content-type': 'application/json', ...headers };
    let wait = null;
    if (receipt) {
      h.receipt = this.nextReceiptId();
      wait = this.receiptPromise(h.receipt, `SEND ${destination}`);
    }
    this.client.publish({ destination, body: typeof body === 'string' ? body : JSON.stringify(body), headers: h });
    return wait;
  }

  /** SEND /app/chat as this device's user; resolves on the RECEIPT (after the commit). */
  async sendChat(conversationId, text, { messageId = crypto.randomUUID(), userId = this.user.userId } = {}) {
    const wait = this.publish('/app/chat', { messageId, conversationId, userId, text }, { receipt: true });
    await wait();
    return messageId;
  }

  /** MESSAGE events of one conversation, in arrival order. */
  messagesOf(conversationId) {
    return this.events.filter((e) => e.eventType === 'MESSAGE' && e.conversationId === conversationId);
  }

  /** Waits for the first ERROR frame and then the close. */
  async expectError(what) {
    await this.waitFor(() => this.errors.length > 0, ms(10000), `an ERROR frame for ${what}`);
    await this.waitFor(() => this.closed, ms(10000), `the close after the ERROR for ${what}`);
    return this.errors[0];
  }

  async close() {
    await this.client.deactivate({ force: false }).catch(() => {});
    this.closed = true;
  }
}

/** Opens a connected device for `user`. */
async function openDevice(server, user, opts) {
  return new Device(server, user, opts).connect();
}

/**
 * Dedupe by (conversationId, seq): the distinct MESSAGE events of one conversation in
 * first-arrival order, plus the number of duplicates dropped.
 */
function dedupe(events) {
  const seen = new Set();
  const unique = [];
  let duplicates = 0;
  for (const e of events) {
    const key = `${e.conversationId}:${e.seq}`;
    if (seen.has(key)) duplicates += 1;
    else {
      seen.add(key);
      unique.push(e);
    }
  }
  return { unique, duplicates };
}

module.exports = {
  TEST_SERVER_ENV,
  api,
  apiOk,
  chatSysBin,
  createChannel,
  createDm,
  dedupe,
  Device,
  listMessages,
  MESSAGES,
  ms,
  newUser,
  NOTIFICATIONS,
  openDevice,
  sleep,
  startServer,
  uniqueName,
  withTimeout,
};
