'use strict';
// Harness of the browser tests: runs `chat-sys serve` on free ports (kept across restarts) with a temporary
// data directory (so it can be stopped and started again on the same ports and data), drives
// Debian's chromium through playwright-core (which never downloads a browser), and saves
// screenshots as test artifacts.
//
// Environment:
//   CHAT_SYS_BIN              server binary (default: `cargo build -p chat-sys`, then
//                             $CARGO_TARGET_DIR/debug/chat-sys; CARGO_TARGET_DIR defaults to
//                             /var/cache/chat-sys-target)
//   CHROMIUM_PATH             browser executable (default: the path printed by scripts/chromium.sh)
//   CHAT_BROWSER_ARTIFACTS    screenshot directory (default: <repo>/target/browser-artifacts)
//   CHAT_BROWSER_KEEP=1       keep the servers' temporary directories (data + server.log)
//   CHAT_E2E_TIMEOUT_SCALE    multiply every wait (default 1), for slow machines

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SCALE = Number(process.env.CHAT_E2E_TIMEOUT_SCALE || 1) || 1;
const PASSWORD = 'correct horse battery';

/** Milliseconds scaled by CHAT_E2E_TIMEOUT_SCALE. */
function ms(n) {
  return Math.round(n * SCALE);
}

function sleep(n) {
  return new Promise((resolve) => setTimeout(resolve, n));
}

/** A short random suffix for user and channel names. */
function suffix() {
  return crypto.randomBytes(3).toString('hex');
}

let cachedBin;
function chatSysBin() {
  if (cachedBin) return cachedBin;
  if (process.env.CHAT_SYS_BIN) {
    cachedBin = path.resolve(process.env.CHAT_SYS_BIN);
    if (!fs.existsSync(cachedBin)) throw new Error(`CHAT_SYS_BIN=${cachedBin} does not exist`);
    return cachedBin;
  }
  const targetDir = process.env.CARGO_TARGET_DIR || '/var/cache/chat-sys-target';
  execFileSync('cargo', ['build', '-q', '-p', 'chat-sys'], {
    cwd: REPO_ROOT,
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  cachedBin = path.join(targetDir, 'debug', 'chat-sys');
  return cachedBin;
}

/** The chromium executable: $CHROMIUM_PATH, else what scripts/chromium.sh prints. */
function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  return execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'chromium.sh')], { encoding: 'utf8' }).trim();
}

// Servers still running when the test process exits are killed.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/**
 * A `chat-sys serve` whose REST and gateway ports and data directory outlive a stop:
 * `start()` (the first start binds ports 0 and learns them from the server's log line, later
 * starts bind those again; gRPC always takes a free port: no port is picked ahead of the
 * server, which another process could take meanwhile), `stop()` (SIGTERM, then SIGKILL after
 * 10 s), `restUrl`, `webUrl`, `log()`, `dispose()`. `env`: extra environment (e.g.
 * `CHAT_GATEWAY__SOCKJS__WEBSOCKET: 'false'`).
 */
class Server {
  static async create(env = {}) {
    return new Server(env);
  }

  constructor(env) {
    this.ports = null;
    this.env = env;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-sys-browser-'));
    this.restUrl = null;
    this.webUrl = null;
    this.child = null;
    this.output = '';
    this.starts = 0;
  }

  /** The ports of the `chat-sys serving rest=... gateway=...` line of this start, if logged. */
  boundPorts(from) {
    const m = /chat-sys serving rest=\S+:(\d+) gateway=\S+:(\d+)/.exec(this.output.slice(from));
    return m ? { http: Number(m[1]), ws: Number(m[2]) } : null;
  }

  async start() {
    const bin = chatSysBin();
    const [http, ws] = this.ports ? [this.ports.http, this.ports.ws] : [0, 0];
    const args = ['serve', '--data-dir', path.join(this.dir, 'data'), '--http-port', String(http), '--ws-port', String(ws)];
    args.push('--grpc-port', '0');
    this.starts += 1;
    const from = this.output.length;
    const logFd = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    const child = spawn(bin, args, {
      cwd: this.dir, // no stray ./chat-sys.toml
      env: {
        ...process.env,
        NO_COLOR: '1',
        RUST_LOG: process.env.RUST_LOG || 'info',
        // Short shutdown grace: a restart is quick.
        CHAT_GATEWAY__SHUTDOWN_GRACE_MS: '1000',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    this.child = child;
    const onData = (chunk) => {
      this.output += chunk.toString('utf8');
      fs.writeSync(logFd, chunk);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        running.delete(child);
        fs.closeSync(logFd);
        resolve({ code, signal });
      }),
    );
    let gone = null;
    this.exited.then((e) => (gone = e));
    const deadline = Date.now() + ms(60000);
    for (;;) {
      if (gone) throw new Error(`chat-sys serve exited (${JSON.stringify(gone)}):\n${this.tail()}`);
      if (!this.ports) {
        this.ports = this.boundPorts(from);
        if (this.ports) {
          this.restUrl = `http://127.0.0.1:${this.ports.http}`;
          this.webUrl = `http://127.0.0.1:${this.ports.ws}`;
        }
      }
      if (!this.ports) {
        if (Date.now() > deadline) throw new Error(`chat-sys serve logged no ports after 60 s:\n${this.tail()}`);
        await sleep(50);
        continue;
      }
      try {
        const res = await fetch(`${this.restUrl}/readyz`);
        const page = await fetch(`${this.webUrl}/config.json`);
        if (res.ok && page.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`chat-sys serve not ready after 60 s:\n${this.tail()}`);
      await sleep(100);
    }
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    let timer;
    const done = await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 10000, null)))]);
    clearTimeout(timer);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.child = null;
  }

  log() {
    return this.output.replace(/\x1b\[[0-9;]*m/g, '');
  }

  tail() {
    return this.log().split('\n').slice(-40).join('\n');
  }

  async dispose() {
    await this.stop();
    if (process.env.CHAT_BROWSER_KEEP) console.error(`browser tests: kept ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- REST helpers

  async rest(method, p, { token, json } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.restUrl}${p}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  }

  /** Registers `name` and logs in: `{id, name, token}`. */
  async user(name) {
    const u = await this.rest('POST', '/api/v1/auth/register', { json: { username: name, password: PASSWORD } });
    const login = await this.rest('POST', '/api/v1/auth/login', { json: { username: name, password: PASSWORD } });
    return { id: u.userId, name, token: login.data.accessToken };
  }

  /** Sends `text` into `conversationId` over REST as `user`. */
  send(user, conversationId, text) {
    return this.rest('POST', `/api/v1/conversations/${conversationId}/messages`, {
      token: user.token,
      json: { text, clientMsgId: crypto.randomUUID() },
    });
  }
}

// -------------------------------------------------------------------- browser

let browserPromise;
/** One headless chromium for the test file (Debian's, never a downloaded one). */
function browser() {
  if (!browserPromise) {
    browserPromise = chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
  }
  return browserPromise;
}

async function closeBrowser() {
  if (browserPromise) {
    const b = await browserPromise;
    browserPromise = null;
    await b.close();
  }
}

/**
 * A new browser context (its own storage: one user per context) with a page on the web
 * client. `query`: the page's query string (e.g. `?transport=htmlfile`). Console errors and
 * page errors are collected in `page.problems`.
 */
async function openPage(server, { query = '', initScript = null, name = 'page' } = {}) {
  const b = await browser();
  const context = await b.newContext({ viewport: { width: 1100, height: 720 }, acceptDownloads: true });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(ms(15000));
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    // Network failures (a server being restarted, a 404 the page handles) are expected.
    const networkNoise = /Failed to load resource|net::ERR_|WebSocket connection to .* failed/;
    if (m.type() === 'error' && !networkNoise.test(m.text())) page.problems.push(`${name}: console: ${m.text()}`);
  });
  await page.goto(`${server.webUrl}/${query}`);
  return page;
}

/** Fills the sign-in form (`register`: the Register button, else Log in); waits for the live connection. */
async function signIn(page, name, { register = false } = {}) {
  await page.fill('#login-form input[name=username]', name);
  await page.fill('#login-form input[name=password]', PASSWORD);
  await page.click(`#login-form button[value=${register ? 'register' : 'login'}]`);
  await page.waitForSelector('#app:not([hidden])');
  await waitLive(page);
}

/** Waits until the connection badge says the STOMP subscription is live. */
async function waitLive(page, timeout = ms(30000)) {
  await page.waitForSelector('#conn-status[data-status=live]', { timeout });
}

/** The messages in the main view: `[{text, seq, edited, deleted}]`. */
function timeline(page) {
  return page.$$eval('#messages .message', (nodes) =>
    nodes.map((n) => ({
      text: n.querySelector('.text') ? n.querySelector('.text').textContent : '',
      seq: Number(n.dataset.seq || 0),
      pending: n.classList.contains('pending'),
      edited: Boolean(n.querySelector('.edited')),
      deleted: n.classList.contains('deleted'),
    })),
  );
}

/** The message article in the main view whose text is exactly `text`. */
function messageByText(page, text, scope = '#messages') {
  return page.locator(`${scope} article.message`).filter({ has: page.locator('.text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }) });
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Sends `text` from the main composer. */
async function sendFromComposer(page, text) {
  await page.fill('#composer textarea', text);
  await page.press('#composer textarea', 'Enter');
}

/** Where screenshots go (created; printed once). */
function artifactsDir() {
  const dir = process.env.CHAT_BROWSER_ARTIFACTS || path.join(REPO_ROOT, 'target', 'browser-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a full-page screenshot as `<name>.png` in the artifacts directory and prints its path. */
async function screenshot(page, name) {
  const file = path.join(artifactsDir(), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
  return file;
}

module.exports = {
  PASSWORD,
  Server,
  closeBrowser,
  messageByText,
  ms,
  openPage,
  screenshot,
  sendFromComposer,
  signIn,
  sleep,
  suffix,
  timeline,
  waitLive,
};
