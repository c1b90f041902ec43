'use strict';
// The scale-out topology as separate processes: one `chat-sys core`, N `chat-sys fanout`
// workers and M `chat-sys gateway`s, on a fresh MariaDB or PostgreSQL database, a Redis
// database index and a Kafka topic and consumer group of their own (so topologies never see
// each other's data). Used by tests/scaleout and, with CHAT_E2E_TOPOLOGY=mysql|postgres, by the
// whole tests/e2e suite (harness.startServer then returns a topology).
//
// Environment: CHAT_TEST_MYSQL_URL, CHAT_TEST_POSTGRES_URL (base URLs without a database),
// CHAT_TEST_REDIS_URL, CHAT_TEST_KAFKA_BOOTSTRAP; defaults are the local services of
// scripts/services.sh and scripts/kafka.sh.

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SCALE = Number(process.env.CHAT_E2E_TIMEOUT_SCALE || 1) || 1;
const sleep = (n) => new Promise((resolve) => setTimeout(resolve, n));

const MYSQL_URL = process.env.CHAT_TEST_MYSQL_URL || 'mysql://chat:chat@127.0.0.1:3306';
const POSTGRES_URL = process.env.CHAT_TEST_POSTGRES_URL || 'postgres://chat:chat@127.0.0.1:5432';
const REDIS_URL = process.env.CHAT_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const KAFKA = process.env.CHAT_TEST_KAFKA_BOOTSTRAP || '127.0.0.1:9092';

/** Creates a fresh database named `name`; returns its URL. */
function createDatabase(kind, name) {
  const base = new URL(kind === 'postgres' ? POSTGRES_URL : MYSQL_URL);
  const user = decodeURIComponent(base.username);
  const password = decodeURIComponent(base.password);
  if (kind === 'postgres') {
    execFileSync('psql', ['-h', base.hostname, '-p', base.port || '5432', '-U', user, '-d', 'postgres', '-q', '-c', `CREATE DATABASE ${name}`], {
      env: { ...process.env, PGPASSWORD: password },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } else {
    execFileSync('mysql', ['-h', base.hostname, '-P', base.port || '3306', '-u', user, `-p${password}`, '-e',
      `CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return `${base.protocol}//${base.username}:${base.password}@${base.host}/${name}`;
}

/** One role process; restartable with the same arguments and environment. */
class RoleProcess {
  constructor(name, bin, args, env, dir) {
    Object.assign(this, { name, bin, args, env, dir });
    this.output = '';
    this.child = null;
    this.exited = null;
    this.logFile = path.join(dir, `${name}.log`);
  }

  start() {
    this.output = '';
    this.exited = null;
    const fd = fs.openSync(this.logFile, 'a');
    const child = spawn(this.bin, this.args, {
      cwd: this.dir,
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let open = true;
    const onData = (chunk) => {
      this.output += chunk.toString('utf8');
      if (open) fs.writeSync(fd, chunk);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // 'close' comes after the last output chunk (unlike 'exit'): only then close the log file.
    child.on('close', () => {
      open = false;
      fs.closeSync(fd);
    });
    this.exitedP = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      }),
    );
    this.child = child;
    allChildren.add(child);
    return this;
  }

  log() {
    return this.output.replace(/\x1b\[[0-9;]*m/g, '');
  }

  tail(n = 30) {
    return this.log().split('\n').slice(-n).join('\n');
  }

  /** Waits for the "chat-sys ROLE serving k=v ..." line; returns its fields. */
  async serving(role) {
    const deadline = Date.now() + 60000 * SCALE;
    const re = new RegExp(`chat-sys ${role} serving(.*)`);
    for (;;) {
      const m = re.exec(this.log());
      if (m) {
        const fields = {};
        for (const [, k, v] of m[1].matchAll(/(\w+)=(\S+)/g)) fields[k] = v;
        return fields;
      }
      if (this.exited) throw new Error(`${this.name} exited (${JSON.stringify(this.exited)}) before serving:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start within 60 s:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** SIGKILL (a crash) or SIGTERM (graceful, 10 s then SIGKILL); waits for the exit. */
  async kill(signal = 'SIGKILL') {
    if (!this.child || this.exited) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exitedP;
    clearTimeout(t);
    allChildren.delete(this.child);
  }
}

const allChildren = new Set();
process.on('exit', () => {
  for (const c of allChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

const portOf = (addr) => Number(addr.slice(addr.lastIndexOf(':') + 1));

async function waitReady(url, proc) {
  const deadline = Date.now() + 60000 * SCALE;
  for (;;) {
    if (proc.exited) throw new Error(`${proc.name} exited (${JSON.stringify(proc.exited)}) before ready:\n${proc.tail()}`);
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) });
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${url}/readyz of ${proc.name} not ready within 60 s:\n${proc.tail()}`);
    await sleep(100);
  }
}

/**
 * Starts the topology. Options: `db` ('mysql' | 'postgres'), `fanouts` (2), `gateways` (2),
 * `partitions` (4), `env` (extra environment for every role), `coreEnv` (for the core only).
 * Returns an object with `restUrl`, `wsUrls`, a round-robin `wsUrl` getter (successive
 * devices land on successive gateways), `core`, `fanouts`, `gateways` (RoleProcess), and
 * `restartCore()`, `restartGateway(i)`, `stop()`.
 */
async function startTopology({ bin, db = 'mysql', fanouts = 2, gateways = 2, partitions = 4, env = {}, coreEnv = {} } = {}) {
  const id = crypto.randomBytes(4).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chat-sys-topology-${id}-`));
  const dbName = `st_${id}`;
  const databaseUrl = createDatabase(db, dbName);
  // Databases 1..15 except 5 (crates/redis/tests/flush.rs flushes database 5).
  const redisDbs = [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const redisDb = redisDbs[parseInt(id.slice(0, 4), 16) % redisDbs.length];
  const redisUrl = `${REDIS_URL.replace(/\/\d*$/, '')}/${redisDb}`;
  const secret = crypto.randomBytes(16).toString('hex');
  const shared = {
    CHAT_DATABASE__URL: databaseUrl,
    CHAT_REDIS__URL: redisUrl,
    CHAT_KAFKA__BOOTSTRAP: KAFKA,
    CHAT_KAFKA__TOPIC: `message.all.${id}`,
    CHAT_KAFKA__FANOUT_GROUP: `fanout-${id}`,
    CHAT_KAFKA__PARTITIONS: String(partitions),
    ...require('./harness').TEST_SERVER_ENV,
    ...env,
  };
  const topo = { id, dir, db, databaseUrl, redisUrl, redisDb, secret, fanouts: [], gateways: [], rr: 0 };

  topo.core = new RoleProcess('core', bin, ['core', '--data-dir', path.join(dir, 'core'), '--http-port', '0', '--grpc-port', '0'],
    { ...shared, ...coreEnv }, dir).start();
  const coreFields = await topo.core.serving('core');
  topo.httpPort = portOf(coreFields.http);
  topo.grpcPort = portOf(coreFields.grpc);
  topo.restUrl = `http://127.0.0.1:${topo.httpPort}`;
  await waitReady(topo.restUrl, topo.core);
  // The core was started on port 0; pin its ports so a restart keeps them.
  topo.core.args = ['core', '--data-dir', path.join(dir, 'core'), '--http-port', String(topo.httpPort), '--grpc-port', String(topo.grpcPort)];

  execFileSync(bin, ['client', 'create', '--id', 'gateway', '--secret', secret, '--scopes', 'gateway'], {
    cwd: dir,
    env: { ...process.env, ...shared },
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  for (let i = 0; i < fanouts; i++) {
    const p = new RoleProcess(`fanout${i + 1}`, bin, ['fanout', '--data-dir', path.join(dir, `fanout${i + 1}`), '--http-port', '0'], shared, dir).start();
    const f = await p.serving('fanout');
    p.adminUrl = `http://127.0.0.1:${portOf(f.http)}`;
    await waitReady(p.adminUrl, p);
    topo.fanouts.push(p);
  }

  const gatewayEnv = {
    ...shared,
    CHAT_CORE_CLIENT__GRPC_URL: `http://127.0.0.1:${topo.grpcPort}`,
    CHAT_CORE_CLIENT__TOKEN_URL: `${topo.restUrl}/oauth2/token`,
    CHAT_CORE_CLIENT__CLIENT_ID: 'gateway',
    CHAT_CORE_CLIENT__CLIENT_SECRET: secret,
  };
  for (let i = 0; i < gateways; i++) {
    const nodeId = `gw-${id}-${i + 1}`;
    const p = new RoleProcess(`gateway${i + 1}`, bin, ['gateway', '--node-id', nodeId, '--data-dir', path.join(dir, nodeId), '--http-port', '0', '--ws-port', '0'], gatewayEnv, dir).start();
    const g = await p.serving('gateway');
    p.nodeId = nodeId;
    p.adminUrl = `http://127.0.0.1:${portOf(g.http)}`;
    p.wsUrl = `ws://127.0.0.1:${portOf(g.ws)}`;
    p.args = ['gateway', '--node-id', nodeId, '--data-dir', path.join(dir, nodeId), '--http-port', String(portOf(g.http)), '--ws-port', String(portOf(g.ws))];
    await waitReady(p.adminUrl, p);
    topo.gateways.push(p);
  }
  topo.wsUrls = topo.gateways.map((g) => g.wsUrl);
  Object.defineProperty(topo, 'wsUrl', {
    get() {
      const live = topo.gateways.filter((g) => !g.exited);
      const g = live[topo.rr++ % live.length];
      return g.wsUrl;
    },
  });

  /** Restarts the core on the same ports (after a kill); waits until ready. */
  topo.restartCore = async (extraEnv = {}) => {
    await topo.core.kill('SIGKILL');
    topo.core.env = { ...shared, ...extraEnv };
    topo.core.start();
    await topo.core.serving('core');
    await waitReady(topo.restUrl, topo.core);
  };
  /** Restarts gateway `i` on the same ports and node id. */
  topo.restartGateway = async (i) => {
    const p = topo.gateways[i];
    await p.kill('SIGKILL');
    p.start();
    await p.serving('gateway');
    await waitReady(p.adminUrl, p);
  };
  topo.log = () => [topo.core, ...topo.fanouts, ...topo.gateways].map((p) => `== ${p.name}\n${p.log()}`).join('\n');
  topo.tail = () => [topo.core, ...topo.fanouts, ...topo.gateways].map((p) => `== ${p.name}\n${p.tail(20)}`).join('\n');
  topo.stop = async () => {
    await Promise.all([...topo.gateways, ...topo.fanouts, topo.core].map((p) => p.kill('SIGTERM')));
    if (process.env.CHAT_E2E_KEEP) console.error(`chat-sys topology: kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  };
  return topo;
}

module.exports = { startTopology, createDatabase, RoleProcess };
