#!/usr/bin/env node
'use strict';
// chat.js: a tiny STOMP chat client for chat-sys, built on @stomp/stompjs (see README.md).
//
// It logs in over REST (POST /auth/login), connects to the STOMP gateway with the token in
// the CONNECT `Authorization: Bearer` header, prints the conversation's recent history, then
// subscribes to /user/queue/messages with `resume: <conversationId>:<lastSeq>` (no gap
// between history and live) and sends every line you type (SEND /app/chat, with a RECEIPT).
//
// Dependencies: @stomp/stompjs and ws, taken from tests/e2e/node_modules (install once with
// `npm ci --prefix tests/e2e`) or from anywhere on NODE_PATH.
//
// Usage (server: `chat-sys serve` on the default ports 8081/8082):
//   node examples/chat.js --register --user alice --password 'correct horse battery'
//   node examples/chat.js --user alice --password 'correct horse battery' --create-channel general --invite bob
//   node examples/chat.js --user alice --password 'correct horse battery' --conversation general
//   node examples/chat.js --user alice --password 'correct horse battery' --conversation general --send 'hi 👋'
//   printf 'one\ntwo\n' | node examples/chat.js --user bob --password 'correct horse battery' --conversation general
//
// Options:
//   --user NAME --password PW   credentials (required); --register creates the user first
//                               (an existing user is fine)
//   --conversation ID|NAME      a conversation id, or the name of one of your channels
//   --send TEXT                 send TEXT (repeatable) and exit once stored; without it,
//                               interactive: each stdin line is a message, EOF/Ctrl-C quits
//   --history N                 messages of history to print first (default 20, 0 = none)
//   --create-channel NAME       create a channel (or reuse yours of that name), print its id
//                               and exit; --invite USER (repeatable) adds members by username
//   --rest URL                  default http://localhost:8081 (env CHAT_REST_URL)
//   --ws URL                    default ws://localhost:8082/ws (env CHAT_WS_URL)

const crypto = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

function load(name) {
  try {
    return require(name);
  } catch {
    try {
      return require(path.join(__dirname, '..', 'tests', 'e2e', 'node_modules', name));
    } catch {
      fail(`cannot load ${name}: run \`npm ci --prefix tests/e2e\` in the repository first`);
    }
  }
}

function fail(msg) {
  console.error(`chat.js: ${msg}`);
  process.exit(1);
}

const USAGE = 'usage: node examples/chat.js --user NAME --password PW (--conversation ID|NAME [--send TEXT]... | --create-channel NAME [--invite USER]... | --register)';

let opts;
try {
  opts = parseArgs({
    options: {
      user: { type: 'string' },
      password: { type: 'string' },
      register: { type: 'boolean', default: false },
      conversation: { type: 'string' },
      send: { type: 'string', multiple: true },
      history: { type: 'string', default: '20' },
      'create-channel': { type: 'string' },
      invite: { type: 'string', multiple: true },
      rest: { type: 'string', default: process.env.CHAT_REST_URL || 'http://localhost:8081' },
      ws: { type: 'string', default: process.env.CHAT_WS_URL || 'ws://localhost:8082/ws' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  fail(`${e.message}\n${USAGE}`);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!opts.user || !opts.password) fail(USAGE);
if (!opts.register && !opts.conversation && !opts['create-channel']) fail(USAGE);

const REST = opts.rest.replace(/\/+$/, '');

async function api(method, urlPath, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let r;
  try {
    r = await fetch(REST + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    fail(`${method} ${REST}${urlPath}: ${e.cause ? e.cause.message : e.message} (is \`chat-sys serve\` running?)`);
  }
  const text = await r.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: r.status, body: parsed };
}

async function apiOk(method, urlPath, opts2) {
  const r = await api(method, urlPath, opts2);
  if (r.status < 200 || r.status > 299) {
    const detail = r.body && typeof r.body === 'object' ? r.body.detail || r.body.title || JSON.stringify(r.body) : r.body;
    fail(`${method} ${urlPath}: HTTP ${r.status}: ${detail}`);
  }
  return r.body;
}

const names = new Map(); // userId -> username
async function nameOf(userId, token) {
  if (!names.has(userId)) {
    const r = await api('GET', `/api/v1/users/${userId}`, { token });
    names.set(userId, r.status === 200 ? r.body.username : userId.slice(0, 8));
  }
  return names.get(userId);
}

async function findUser(username, token) {
  const found = await apiOk('GET', `/api/v1/users?prefix=${encodeURIComponent(username)}&limit=50`, { token });
  const u = found.find((x) => x.username === username.toLowerCase());
  if (!u) fail(`no user named ${username}`);
  return u;
}

async function resolveConversation(arg, token) {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(arg)) return arg;
  const mine = await apiOk('GET', '/api/v1/conversations', { token });
  const matches = mine.filter((c) => c.name === arg);
  if (matches.length === 0) fail(`you are in no conversation named ${JSON.stringify(arg)}`);
  if (matches.length > 1) fail(`several conversations are named ${JSON.stringify(arg)}: use an id (${matches.map((c) => c.conversationId).join(', ')})`);
  return matches[0].conversationId;
}

function time(iso) {
  return new Date(iso).toTimeString().slice(0, 8);
}

async function main() {
  if (opts.register) {
    const r = await api('POST', '/api/v1/auth/register', { body: { username: opts.user, password: opts.password } });
    if (r.status === 201) console.error(`registered ${opts.user} (${r.body.userId})`);
    else if (r.status === 409) console.error(`${opts.user} already exists`);
    else fail(`register: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  }
  const login = await apiOk('POST', '/auth/login', { body: { username: opts.user, password: opts.password } });
  const token = login.data.accessToken;
  const me = await apiOk('GET', '/api/v1/users/me', { token });
  names.set(me.userId, me.username);

  if (opts['create-channel']) {
    // Re-running is harmless: a channel of yours with that name is reused.
    const name = opts['create-channel'];
    const mine = await apiOk('GET', '/api/v1/conversations', { token });
    let c = mine.find((x) => x.type === 'CHANNEL' && x.name === name);
    if (c) console.error(`reusing your channel ${name}`);
    else c = await apiOk('POST', '/api/v1/conversations', { token, body: { type: 'CHANNEL', name } });
    for (const invitee of opts.invite || []) {
      const u = await findUser(invitee, token);
      const r = await api('POST', `/api/v1/conversations/${c.conversationId}/members`, { token, body: { userId: u.userId } });
      if (r.status === 201) console.error(`added ${u.username} to ${name}`);
      else if (r.status === 409) console.error(`${u.username} is already in ${name}`);
      else fail(`adding ${u.username}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
    }
    console.log(c.conversationId);
    return;
  }
  if (!opts.conversation) return; // --register alone

  const conversationId = await resolveConversation(opts.conversation, token);
  const print = async (m) => {
    console.log(`#${m.serverSeq} ${time(m.createdAt)} ${await nameOf(m.userId, token)}: ${m.text}`);
  };

  // History over REST; the live subscription resumes right after its last seq.
  let lastSeq = 0;
  const historyN = Math.max(0, Math.min(500, Number(opts.history) || 0));
  if (opts.send === undefined && historyN > 0) {
    const history = await apiOk('GET', `/api/v1/conversations/${conversationId}/messages?limit=${historyN}`, { token });
    for (const m of history) await print(m);
    if (history.length) lastSeq = history[history.length - 1].serverSeq;
  } else {
    const conv = await apiOk('GET', `/api/v1/conversations/${conversationId}`, { token });
    lastSeq = conv.lastSeq;
  }

  const { Client } = load('@stomp/stompjs');
  const WebSocket = load('ws');
  const client = new Client({
    webSocketFactory: () => new WebSocket(opts.ws, ['v10.stomp', 'v11.stomp', 'v12.stomp']),
    connectHeaders: { Authorization: `Bearer ${token}` },
    reconnectDelay: 0,
    debug: () => {},
  });
  let connected = false;
  let closing = false;
  const ready = new Promise((resolve) => {
    client.onConnect = () => {
      connected = true;
      resolve();
    };
  });
  client.onStompError = (frame) => fail(`server ERROR: ${frame.headers.message}`);
  client.onWebSocketClose = (evt) => {
    if (!connected) fail(`could not connect to ${opts.ws} (close code ${evt.code})`);
    if (!closing) fail('connection closed by the server');
  };
  client.activate();
  await ready;

  const acked = new Map(); // clientMsgId -> ack offset
  client.subscribe('/user/queue/notifications/private', (frame) => {
    const ack = JSON.parse(frame.body);
    acked.set(ack.clientMsgId, ack);
  });
  // Live events of this conversation (and the replay after lastSeq), printed in arrival
  // order: names are looked up over REST, so printing is chained.
  const seen = new Set();
  let printing = Promise.resolve();
  const show = async (e) => {
    if (e.conversationId !== conversationId) return;
    if (e.eventType === 'TYPING') {
      if (e.typing) console.log(`* ${await nameOf(e.userId, token)} is typing...`);
      return;
    }
    if (seen.has(e.seq)) return; // dedupe by (conversationId, seq)
    seen.add(e.seq);
    if (e.eventType === 'MESSAGE') await print(e);
    else if (e.eventType === 'USER_JOINED') console.log(`#${e.seq} * ${await nameOf(e.userId, token)} joined`);
    else if (e.eventType === 'USER_LEFT') console.log(`#${e.seq} * ${await nameOf(e.userId, token)} left`);
    else console.log(`#${e.seq} * ${e.eventType}`);
  };
  if (opts.send === undefined) {
    client.subscribe(
      '/user/queue/messages',
      (frame) => {
        const e = JSON.parse(frame.body);
        printing = printing.then(() => show(e)).catch((err) => console.error(`chat.js: ${err.message}`));
      },
      { resume: `${conversationId}:${lastSeq}` },
    );
  }

  // SEND /app/chat; resolves with the ack offset when the RECEIPT arrives (after the commit;
  // the ack offset on /user/queue/notifications/private comes before it).
  const send = (text) =>
    new Promise((resolve) => {
      const receipt = crypto.randomUUID();
      const messageId = crypto.randomUUID();
      client.watchForReceipt(receipt, () => resolve(acked.get(messageId)));
      client.publish({
        destination: '/app/chat',
        headers: { 'content-type': 'application/json', receipt },
        body: JSON.stringify({ messageId, conversationId, userId: me.userId, text }),
      });
    });
  const quit = async () => {
    closing = true;
    await client.deactivate();
    process.exit(0);
  };

  if (opts.send !== undefined) {
    for (const text of opts.send) {
      const ack = await send(text);
      console.log(`sent #${ack ? ack.ackedSeq : '?'}: ${text}`);
    }
    await quit();
    return;
  }

  console.error(`-- ${me.username} in ${opts.conversation}: type a message and press Enter; Ctrl-D or Ctrl-C to quit`);
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const pending = [];
  rl.on('line', (line) => {
    if (line.trim()) pending.push(send(line));
  });
  rl.on('close', async () => {
    await Promise.all(pending);
    await printing;
    if (!process.stdin.isTTY) await new Promise((r) => setTimeout(r, 300)); // let the echoes print
    await quit();
  });
  process.on('SIGINT', quit);
}

main().catch((e) => fail(e.stack || String(e)));
