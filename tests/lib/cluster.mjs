// Integration test harness: a real sigstream cluster on loopback.
//
//   const cluster = await startCluster({ instances: 2, t });
//   const alice = await connect(cluster.url);
//   ...
//
// Starts nats-server (JetStream), redis-server, N sigstream instances and
// HAProxy (rendered from haproxy/haproxy.cfg, the same template scripts/dev
// uses), each on a free 127.0.0.1 port, with data and logs in a fresh temp
// dir. Every wait is bounded; a timeout names the process and prints the tail
// of its log. See README.md beside this file.

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HAPROXY_TEMPLATE = path.join(REPO_ROOT, 'haproxy', 'haproxy.cfg');
const SERVERS_PLACEHOLDER = /^[ \t]*# @SIGSTREAM_SERVERS@[ \t]*$/m;
const BACKEND = 'signaling';
const HOST = '127.0.0.1';

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------
// Small utilities (exported: tests may use them too)
// ---------------------------------------------------------------------------

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const portsHandedOut = new Set();

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export async function freePort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, HOST, () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    if (!portsHandedOut.has(port)) {
      portsHandedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port on 127.0.0.1');
}

/**
 * HTTP GET with a timeout; resolves {status, headers, body}, never rejects on HTTP status.
 * An https:// URL is checked against `ca` (PEM; e.g. cluster.tlsCa) when given.
 */
export function httpGet(url, { timeoutMs = 2000, headers = {}, ca } = {}) {
  return new Promise((resolve, reject) => {
    const tls = String(url).startsWith('https:');
    const req = (tls ? https : http).get(url, { agent: false, timeout: timeoutMs, headers, ...(tls && ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Poll `probe` until it returns a truthy value; bounded by timeoutMs. */
export async function waitFor(probe, { timeoutMs = 10_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

function tailFile(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '(no log)';
  }
}

// nats-server and haproxy live in /usr/sbin, which is not always on PATH.
function resolveBinary(name, envOverride) {
  const override = envOverride && process.env[envOverride];
  const candidates = override
    ? [override]
    : [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
      '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin']
      .map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch { /* next */ }
  }
  throw new Error(override
    ? `${envOverride}=${override} is not an executable file`
    : `${name} not found on PATH nor in /usr/sbin: install it (scripts/dev install)`);
}

function sigstreamBinary() {
  const bin = process.env.SIGSTREAM_BIN
    ? path.resolve(REPO_ROOT, process.env.SIGSTREAM_BIN)
    : path.join(REPO_ROOT, 'build', 'sigstream');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`sigstream binary ${bin} not found or not executable: `
      + 'build it (scripts/dev build) or point SIGSTREAM_BIN at it');
  }
  return bin;
}

// With setpriv (util-linux), children get SIGKILL when this process dies,
// even by SIGKILL, so no test run leaves servers behind.
let setprivPath;
function setpriv() {
  if (setprivPath === undefined) {
    setprivPath = null;
    for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
      try { fs.accessSync(candidate, fs.constants.X_OK); setprivPath = candidate; break; } catch { /* next */ }
    }
  }
  return setprivPath;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A zombie has exited even though kill(0) succeeds.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
export { pidAlive };

// Signals that mean a process crashed, rather than was stopped.
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE']);

// Every process started by any cluster in this test process: killed on exit.
const liveProcesses = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const proc of liveProcesses) {
      try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  });
}

// ---------------------------------------------------------------------------
// One child process with its log file
// ---------------------------------------------------------------------------

class Proc {
  constructor({ name, command, args, env, logFile }) {
    Object.assign(this, { name, command, args, env, logFile });
    this.child = null;
    this.exit = null; // {code, signal} once exited
    this.exited = null; // promise of the above
  }

  get pid() { return this.child?.pid; }

  get alive() { return this.child !== null && this.exit === null; }

  start() {
    installExitHook();
    const header = `--- ${new Date().toISOString()} starting: ${this.command} ${this.args.join(' ')}\n`;
    fs.appendFileSync(this.logFile, header);
    const fd = fs.openSync(this.logFile, 'a');
    const sp = setpriv();
    const [command, args] = sp
      ? [sp, ['--pdeathsig', 'KILL', '--', this.command, ...this.args]]
      : [this.command, this.args];
    try {
      this.child = spawn(command, args, { env: this.env, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    this.exit = null;
    this.stopRequested = null;
    const child = this.child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        liveProcesses.delete(this);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      child.once('error', (err) => {
        liveProcesses.delete(this);
        fs.appendFileSync(this.logFile, `--- could not start ${this.command}: ${err.message}\n`);
        this.exit = { code: null, signal: null, error: err };
        resolve(this.exit);
      });
    });
    liveProcesses.add(this);
    return this;
  }

  /** Send `signal`; if still running after timeoutMs, SIGKILL. Resolves the exit info. */
  async stop(signal = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
    if (!this.alive) return this.exit;
    this.stopRequested = signal;
    try { this.child.kill(signal); } catch { /* already gone */ }
    let timer;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      fs.appendFileSync(this.logFile,
        `--- harness: no exit ${timeoutMs} ms after ${signal}, sending SIGKILL\n`);
      try { this.child.kill('SIGKILL'); } catch { /* gone */ }
      await Promise.race([this.exited, sleep(5000)]);
      if (this.exit) this.exit.killedAfterTimeout = true;
    }
    return this.exit;
  }

  tail(lines = 40) { return tailFile(this.logFile, lines); }

  describeExit() {
    const e = this.exit;
    if (!e) return 'running';
    if (e.error) return `failed to start (${e.error.message})`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** Poll `probe` until truthy; fail early if the process exits, with its log tail. */
  async waitReady(probe, { timeoutMs = DEFAULT_READY_TIMEOUT_MS, what } = {}) {
    const deadline = Date.now() + timeoutMs;
    let lastError;
    for (;;) {
      if (!this.alive) {
        throw new Error(`${this.name} ${this.describeExit()} before becoming ready`
          + ` (${what}). Last lines of ${this.logFile}:\n${this.tail()}`);
      }
      try {
        if (await probe()) return;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() >= deadline) {
        throw new Error(`${this.name} not ready after ${timeoutMs} ms (${what})`
          + `${lastError ? `; last error: ${lastError.message}` : ''}.`
          + ` Last lines of ${this.logFile}:\n${this.tail()}`);
      }
      await sleep(100);
    }
  }
}

function looksLikePortClash(proc) {
  return /address already in use|EADDRINUSE|cannot bind socket/i.test(proc.tail(20));
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/**
 * Start a cluster and wait until it is ready.
 *
 * options:
 *   instances      number of sigstream instances (default 2), ids i1..iN
 *   redis          start redis-server (default true); when false, instances
 *                  get a Redis URL that nothing listens on
 *   haproxy        start HAProxy in front (default true)
 *   env            extra environment for every instance (SIGSTREAM_* etc.)
 *   lbCheckInter   HAProxy health check interval (default '1s'; fall 3, rise 2)
 *   readyTimeoutMs bound for each readiness wait (default 30000)
 *   tls            also terminate TLS in HAProxy (default false): a
 *                  self-signed certificate for 127.0.0.1/localhost is made
 *                  in the cluster dir; see tlsUrl, httpsUrl, tlsCa
 *   lbEnv          extra environment for HAProxy (e.g. SIGSTREAM_LB_HSTS)
 *   natsArgs       extra nats-server arguments (e.g. --user/--pass, --tls...)
 *   natsNodes      nats-server processes (default 1); 3 or more run a JetStream
 *                  cluster (nats1..natsN, routes between them), instances get
 *                  every node's URL and SIGSTREAM_STREAM_REPLICAS=3; see
 *                  natsNodeNames, stopNatsNode, startNatsNode, streamLeader
 *   natsScheme     scheme of the NATS URL given to instances (default 'nats'; 'tls')
 *   redisArgs      extra redis-server arguments
 *   redisPassword  start redis-server with --requirepass (the harness's
 *                  readiness check authenticates); instances need it too
 *   instanceRedisUrl  the Redis URL instances get instead of redisUrl (e.g.
 *                  rediss:// to a --tls-port given in redisArgs; the harness
 *                  itself keeps using the plain port)
 *   t              a node:test context: stop() is registered with t.after()
 *                  and keeps the logs when that test failed
 */
export async function startCluster(options = {}) {
  const cluster = new Cluster(options);
  try {
    await cluster.start();
  } catch (err) {
    // The start's own error is the one to report, not a teardown problem after it.
    await cluster.stop({ failed: true, quiet: true }).catch(() => {});
    err.message += `\n(cluster files kept in ${cluster.dir})`;
    throw err;
  }
  if (options.t) {
    options.t.after(() => cluster.stop({ failed: options.t.passed === false }));
  }
  return cluster;
}

export class Cluster {
  constructor({
    instances = 2,
    redis = true,
    haproxy = true,
    env = {},
    lbCheckInter = '1s',
    readyTimeoutMs = DEFAULT_READY_TIMEOUT_MS,
    tls = false,
    lbEnv = {},
    natsArgs = [],
    natsNodes = 1,
    natsScheme = 'nats',
    redisArgs = [],
    redisPassword = null,
    instanceRedisUrl = null,
  } = {}) {
    if (natsNodes > 1) env = { SIGSTREAM_STREAM_REPLICAS: String(Math.min(3, natsNodes)), ...env };
    this.options = { instances, redis, haproxy, env, lbCheckInter, readyTimeoutMs, tls, lbEnv, natsArgs, natsNodes, natsScheme, redisArgs, redisPassword, instanceRedisUrl };
    this.natsNodes = new Map(); // with natsNodes > 1: name -> {name, port, monitorPort, routePort, proc}
    this.bin = sigstreamBinary();
    this.natsServerBin = resolveBinary('nats-server', 'NATS_SERVER_BIN');
    this.redisServerBin = redis ? resolveBinary('redis-server', 'REDIS_SERVER_BIN') : null;
    this.redisCliBin = redis ? resolveBinary('redis-cli', 'REDIS_CLI_BIN') : null;
    this.haproxyBin = haproxy ? resolveBinary('haproxy', 'HAPROXY_BIN') : null;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-test-'));
    this.logDir = path.join(this.dir, 'logs');
    fs.mkdirSync(this.logDir);
    this.haproxySocket = path.join(this.dir, 'haproxy.sock');
    this.nats = null;
    this.redis = null;
    this.lb = null;
    this.natsPort = null;
    this.natsMonitorPort = null;
    this.redisPort = null;
    this.lbPort = null;
    this.tlsPort = null; // with tls: HAProxy's TLS port
    this.tlsCa = null; // with tls: the self-signed certificate (PEM) to trust
    this.tlsCertFile = null; // with tls: the same, as a file
    this.instanceMap = new Map(); // id -> {id, port, proc, env}
    this.allPids = [];
    this.stopping = null;
    this.clients = new Set(); // from this.connect(): terminated by stop()
  }

  // --- addresses --------------------------------------------------------

  get natsUrl() {
    if (this.natsNodes.size > 0)
      return [...this.natsNodes.values()].map((n) => `${this.options.natsScheme}://${HOST}:${n.port}`).join(',');
    return `${this.options.natsScheme}://${HOST}:${this.natsPort}`;
  }
  /** With natsNodes > 1: the nodes' names, nats1..natsN. */
  get natsNodeNames() { return [...this.natsNodes.keys()]; }
  get redisUrl() { return `redis://${HOST}:${this.redisPort}`; }
  /** WebSocket URL through HAProxy. */
  get url() { return this.lbPort ? `ws://${HOST}:${this.lbPort}/ws` : null; }
  /** HTTP base URL of HAProxy. */
  get httpUrl() { return this.lbPort ? `http://${HOST}:${this.lbPort}` : null; }
  /** With tls: wss:// and https:// URLs of HAProxy's TLS bind (trust tlsCa). */
  get tlsUrl() { return this.tlsPort ? `wss://${HOST}:${this.tlsPort}/ws` : null; }
  get httpsUrl() { return this.tlsPort ? `https://${HOST}:${this.tlsPort}` : null; }
  /** Direct WebSocket URL of every instance, in start order. */
  get instanceUrls() { return this.instances.map((i) => i.url); }
  /** [{id, port, url, httpUrl, pid, alive, logFile}] in start order. */
  get instances() { return [...this.instanceMap.keys()].map((id) => this.instance(id)); }

  instance(id) {
    const rec = this.instanceMap.get(id);
    if (!rec) throw new Error(`no instance ${id} (have: ${[...this.instanceMap.keys()].join(', ')})`);
    return {
      id,
      port: rec.port,
      url: `ws://${HOST}:${rec.port}/ws`,
      httpUrl: `http://${HOST}:${rec.port}`,
      pid: rec.proc.pid,
      alive: rec.proc.alive,
      logFile: rec.proc.logFile,
    };
  }

  /** Every pid this cluster ever started (to check that none survive stop()). */
  pids() { return [...this.allPids]; }

  // --- startup ----------------------------------------------------------

  async start() {
    const { instances, redis, haproxy } = this.options;
    this.natsPort = await freePort();
    this.natsMonitorPort = await freePort();
    this.redisPort = await freePort(); // with redis: false, nothing listens there
    if (this.options.natsNodes > 1) {
      for (let k = 1; k <= this.options.natsNodes; k++) {
        const name = `nats${k}`;
        this.natsNodes.set(name, { name, port: await freePort(), monitorPort: await freePort(), routePort: await freePort(), proc: null });
      }
    }
    await Promise.all([this.natsNodes.size > 0 ? this.startNatsCluster() : this.startNats(), redis ? this.startRedis() : null]);
    const ids = Array.from({ length: instances }, (_, i) => `i${i + 1}`);
    await Promise.all(ids.map((id) => this.startInstance(id)));
    if (haproxy) await this.startHaproxy();
  }

  #newProc(name, command, args, env = {}) {
    return new Proc({
      name,
      command,
      args,
      env: { ...process.env, ...env },
      logFile: path.join(this.logDir, `${name}.log`),
    });
  }

  #track(proc) {
    proc.start();
    if (proc.pid) this.allPids.push(proc.pid);
    return proc;
  }

  /** (Re)start nats-server on the same ports and store dir. */
  async startNats() {
    if (this.nats?.alive) throw new Error('nats-server is already running');
    const proc = this.#newProc('nats', this.natsServerBin, [
      '-js', '-sd', path.join(this.dir, 'nats'), '-a', HOST, '-p', String(this.natsPort),
      '-m', String(this.natsMonitorPort), '--server_name', 'sigstream-test', ...this.options.natsArgs,
    ]);
    this.nats = this.#track(proc);
    await proc.waitReady(
      async () => (await httpGet(`http://${HOST}:${this.natsMonitorPort}/healthz?js-enabled-only=true`)).status === 200,
      { timeoutMs: this.options.readyTimeoutMs, what: `JetStream healthz on port ${this.natsMonitorPort}` });
  }

  async stopNats(signal = 'SIGTERM') { return this.nats?.stop(signal); }

  async startNatsCluster() {
    await Promise.all(this.natsNodeNames.map((name) => this.startNatsNode(name)));
  }

  /** (Re)start one node of the NATS cluster, on its ports and store dir. */
  async startNatsNode(name) {
    const node = this.natsNodes.get(name);
    if (!node) throw new Error(`no NATS node ${name}`);
    if (node.proc?.alive) throw new Error(`${name} is already running`);
    const routes = [...this.natsNodes.values()].map((n) => `nats://${HOST}:${n.routePort}`).join(',');
    node.proc = this.#track(this.#newProc(name, this.natsServerBin, [
      '-js', '-sd', path.join(this.dir, name), '-a', HOST, '-p', String(node.port), '-m', String(node.monitorPort),
      '--server_name', name, '--cluster_name', 'sigstream-test', '--cluster', `nats://${HOST}:${node.routePort}`,
      '--routes', routes, ...this.options.natsArgs,
    ]));
    await node.proc.waitReady(
      async () => (await httpGet(`http://${HOST}:${node.monitorPort}/healthz?js-enabled-only=true`)).status === 200,
      { timeoutMs: this.options.readyTimeoutMs, what: `JetStream healthz of ${name} on port ${node.monitorPort}` });
  }

  async stopNatsNode(name, signal = 'SIGTERM') { return this.natsNodes.get(name)?.proc?.stop(signal); }

  /** The node leading `stream` (a JetStream stream or a bucket's KV_<name>), asked of a live node. */
  async streamLeader(stream = 'SIGSTREAM') { return (await this.streamPlacement(stream))?.leader ?? null; }

  /** {leader, copies: [names of the other replicas]} of `stream`, asked of a live node. */
  async streamPlacement(stream = 'SIGSTREAM') {
    for (const node of this.natsNodes.values()) {
      if (!node.proc?.alive) continue;
      const res = await httpGet(`http://${HOST}:${node.monitorPort}/jsz?streams=true`).catch(() => null);
      if (!res || res.status !== 200) continue;
      for (const account of JSON.parse(res.body).account_details ?? [])
        for (const detail of account.stream_detail ?? [])
          if (detail.name === stream && detail.cluster?.leader)
            return { leader: detail.cluster.leader, copies: (detail.cluster.replicas ?? []).map((r) => r.name) };
    }
    return null;
  }

  /** (Re)start redis-server on the same port. */
  async startRedis() {
    if (this.redis?.alive) throw new Error('redis-server is already running');
    const redisDir = path.join(this.dir, 'redis');
    fs.mkdirSync(redisDir, { recursive: true });
    const proc = this.#newProc('redis', this.redisServerBin, [
      '--port', String(this.redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no',
      '--dir', redisDir, ...this.options.redisArgs,
      ...(this.options.redisPassword ? ['--requirepass', this.options.redisPassword] : []),
    ]);
    this.redis = this.#track(proc);
    await proc.waitReady(() => redisPing(this.redisPort, this.options.redisPassword),
      { timeoutMs: this.options.readyTimeoutMs, what: `PING on port ${this.redisPort}` });
  }

  async stopRedis(signal = 'SIGTERM') { return this.redis?.stop(signal); }

  /**
   * Start instance `id` (default: the next unused iN). A stopped instance is
   * restarted on its old port. A new one joins a running HAProxy through
   * the runtime API. options: env (extra, this instance only; a restart
   * reuses the previous start's unless given), wait:
   * 'ready' (default: /readyz 200, and UP in HAProxy), 'healthy' (/healthz
   * 200) or false.
   */
  async startInstance(id, { env, wait = 'ready' } = {}) {
    id ??= this.#nextInstanceId();
    let rec = this.instanceMap.get(id);
    if (rec?.proc.alive) throw new Error(`instance ${id} is already running (pid ${rec.proc.pid})`);
    const isNew = !rec;
    const extraEnv = env ?? rec?.env ?? {};
    for (let attempt = 1; ; attempt++) {
      if (!rec) {
        rec = { id, port: await freePort(), proc: null };
        this.instanceMap.set(id, rec);
      }
      rec.env = extraEnv;
      rec.proc = this.#track(this.#newProc(id, this.bin, [
        'serve',
        '--listen', `${HOST}:${rec.port}`,
        '--instance-id', id,
        '--nats-url', this.natsUrl,
        '--redis-url', this.options.instanceRedisUrl ?? this.redisUrl,
      ], this.#instanceEnv(extraEnv)));
      if (!wait) break;
      try {
        const endpoint = wait === 'healthy' ? '/healthz' : '/readyz';
        await rec.proc.waitReady(
          async () => (await httpGet(`http://${HOST}:${rec.port}${endpoint}`)).status === 200,
          { timeoutMs: this.options.readyTimeoutMs, what: `GET ${endpoint} on port ${rec.port} answering 200` });
        break;
      } catch (err) {
        // Another process may have taken the port between freePort() and
        // the bind: retry a brand-new instance on another port.
        if (isNew && !this.lb && attempt < 3 && !rec.proc.alive && looksLikePortClash(rec.proc)) {
          this.instanceMap.delete(id);
          rec = null;
          continue;
        }
        throw err;
      }
    }
    if (this.lb?.alive) {
      if (isNew) await this.#registerWithLb(id);
      if (wait === 'ready') await this.waitForLbStatus(id, 'UP', { timeoutMs: this.options.readyTimeoutMs });
    }
    return this.instance(id);
  }

  /** Send `signal` to instance `id` (SIGKILL: no goodbye). Resolves {code, signal}. */
  async stopInstance(id, signal = 'SIGTERM', { timeoutMs = DEFAULT_STOP_TIMEOUT_MS } = {}) {
    const rec = this.instanceMap.get(id);
    if (!rec) throw new Error(`no instance ${id}`);
    return rec.proc.stop(signal, timeoutMs);
  }

  #nextInstanceId() {
    let n = this.instanceMap.size + 1;
    while (this.instanceMap.has(`i${n}`)) n++;
    return `i${n}`;
  }

  #instanceEnv(extra) {
    // The caller's SIGSTREAM_* would make runs depend on the shell they were
    // started from; keep only SIGSTREAM_LOG_LEVEL (handy when debugging).
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('SIGSTREAM_') || k === 'SIGSTREAM_LOG_LEVEL') env[k] = v;
    }
    // A drain waits --shutdown-grace (10 s) for clients to resume elsewhere;
    // most tests' clients never do, and teardown allows 10 s per process.
    // Load tests send faster than one browser would, and every test client
    // comes from 127.0.0.1: the per-connection signal limit and the
    // per-address join limit are tested on their own (abuse_limits.test.mjs).
    return { SIGSTREAM_SHUTDOWN_GRACE: '2s', SIGSTREAM_SIGNAL_RATE: '1000000', SIGSTREAM_SIGNAL_BURST: '1000000',
      SIGSTREAM_JOIN_RATE: '1000000', SIGSTREAM_JOIN_BURST: '1000000', ...env, ...this.options.env, ...extra };
  }

  // --- HAProxy ----------------------------------------------------------

  /** The template with one `server` line per instance. */
  renderHaproxyConfig() {
    const template = fs.readFileSync(HAPROXY_TEMPLATE, 'utf8');
    const matches = template.match(new RegExp(SERVERS_PLACEHOLDER.source, 'gm')) ?? [];
    if (matches.length !== 1) {
      throw new Error(`${HAPROXY_TEMPLATE} must contain exactly one '# @SIGSTREAM_SERVERS@' line`);
    }
    const servers = [...this.instanceMap.values()]
      .map((rec) => `    server ${rec.id} ${HOST}:${rec.port} check`)
      .join('\n');
    return template.replace(SERVERS_PLACEHOLDER, servers);
  }

  async startHaproxy() {
    if (this.lb?.alive) throw new Error('haproxy is already running');
    this.lbPort ??= await freePort();
    const cfg = path.join(this.dir, 'haproxy.cfg');
    fs.writeFileSync(cfg, this.renderHaproxyConfig());
    fs.rmSync(this.haproxySocket, { force: true });
    const proc = this.#newProc('haproxy', this.haproxyBin, ['-db', '-f', cfg], {
      SIGSTREAM_LB_BIND: `${HOST}:${this.lbPort}`,
      SIGSTREAM_LB_SOCKET: this.haproxySocket,
      SIGSTREAM_LB_MAXCONN: '1024',
      SIGSTREAM_LB_CHECK_INTER: this.options.lbCheckInter,
      // TLS only when asked for, whatever the caller's environment holds.
      SIGSTREAM_LB_TLS_CERT: undefined,
      SIGSTREAM_LB_TLS_BIND: undefined,
      SIGSTREAM_LB_TLS_REDIRECT: undefined,
      SIGSTREAM_LB_HSTS: undefined,
      ...(this.options.tls ? {
        SIGSTREAM_LB_TLS_CERT: await this.#tlsCert(),
        SIGSTREAM_LB_TLS_BIND: `${HOST}:${this.tlsPort ??= await freePort()}`,
      } : {}),
      ...this.options.lbEnv,
    });
    this.lb = this.#track(proc);
    const timeoutMs = this.options.readyTimeoutMs;
    await proc.waitReady(async () => fs.existsSync(this.haproxySocket)
      && (await this.haproxyCommand('show info')).includes('Name: HAProxy'),
    { timeoutMs, what: `admin socket ${this.haproxySocket}` });
    const expected = [...this.instanceMap.values()].filter((r) => r.proc.alive).map((r) => r.id);
    if (expected.length > 0) {
      await proc.waitReady(async () => {
        const servers = await this.lbServers();
        return expected.every((id) => servers[id]?.status === 'UP');
      }, { timeoutMs, what: `servers ${expected.join(', ')} UP in backend ${BACKEND}` });
      await proc.waitReady(async () => (await httpGet(`${this.httpUrl}/readyz`)).status === 200,
        { timeoutMs, what: `GET /readyz through HAProxy on port ${this.lbPort}` });
      if (this.tlsPort) {
        await proc.waitReady(async () => (await httpGet(`${this.httpsUrl}/readyz`, { ca: this.tlsCa })).status === 200,
          { timeoutMs, what: `GET /readyz through HAProxy's TLS bind on port ${this.tlsPort}` });
      }
    }
  }

  async stopHaproxy(signal = 'SIGTERM') { return this.lb?.stop(signal); }

  /** With tls: a self-signed certificate in <dir>/tls (made once); resolves HAProxy's PEM bundle. */
  async #tlsCert() {
    const tlsDir = path.join(this.dir, 'tls');
    const bundle = path.join(tlsDir, 'sigstream.pem');
    if (this.tlsCa) return bundle;
    fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    const cert = path.join(tlsDir, 'cert.pem');
    const key = path.join(tlsDir, 'key.pem');
    await new Promise((resolve, reject) => {
      execFile(resolveBinary('openssl', 'OPENSSL_BIN'), [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout', key, '-out', cert,
      ], { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`openssl could not make the test certificate: ${err.message}\n${stderr}`));
        else resolve();
      });
    });
    this.tlsCa = fs.readFileSync(cert, 'utf8');
    this.tlsCertFile = cert;
    fs.writeFileSync(bundle, this.tlsCa + fs.readFileSync(key, 'utf8'), { mode: 0o600 });
    return bundle;
  }

  /** Send one command to HAProxy's runtime API; resolves its answer. */
  haproxyCommand(command, { timeoutMs = 3000 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(this.haproxySocket);
      let out = '';
      const timer = setTimeout(() => sock.destroy(new Error(`HAProxy runtime API: no answer to '${command}' within ${timeoutMs} ms`)), timeoutMs);
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.end(`${command}\n`));
      sock.on('data', (d) => { out += d; });
      sock.on('close', () => { clearTimeout(timer); resolve(out); });
      sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
  }

  /** {id: {status, checkStatus, sessions, weight}} of backend `signaling`, from `show stat`. */
  async lbServers() {
    const csv = await this.haproxyCommand('show stat');
    const lines = csv.split('\n').filter(Boolean);
    const header = lines.shift()?.replace(/^# /, '').split(',') ?? [];
    const col = (name) => header.indexOf(name);
    const result = {};
    for (const line of lines) {
      const f = line.split(',');
      if (f[col('pxname')] !== BACKEND || ['FRONTEND', 'BACKEND'].includes(f[col('svname')])) continue;
      result[f[col('svname')]] = {
        status: f[col('status')],
        checkStatus: f[col('check_status')],
        sessions: Number(f[col('scur')]),
        weight: Number(f[col('weight')]),
      };
    }
    return result;
  }

  /** Wait until HAProxy reports server `id` with `status` (e.g. 'UP', 'DOWN', 'MAINT'). */
  async waitForLbStatus(id, status, { timeoutMs = 15_000 } = {}) {
    let last;
    try {
      await waitFor(async () => {
        last = (await this.lbServers())[id]?.status;
        return last === status;
      }, { timeoutMs, what: `HAProxy to report ${BACKEND}/${id} as ${status}` });
    } catch (err) {
      err.message += ` (last seen: ${last ?? 'absent'})`;
      throw err;
    }
  }

  async #registerWithLb(id) {
    const { port } = this.instanceMap.get(id);
    const added = await this.haproxyCommand(
      `add server ${BACKEND}/${id} ${HOST}:${port} check inter ${this.options.lbCheckInter} fall 3 rise 2 weight 100 observe layer4 error-limit 1 on-error mark-down`);
    if (!added.includes('New server registered')) {
      throw new Error(`HAProxy refused to add ${BACKEND}/${id}: ${added.trim()}`);
    }
    await this.haproxyCommand(`enable health ${BACKEND}/${id}`);
    await this.haproxyCommand(`enable server ${BACKEND}/${id}`);
  }

  // --- Redis ------------------------------------------------------------

  /** connect(), and the client is terminated when the cluster stops. */
  async connect(url, options) {
    const client = await connect(url, options);
    this.clients.add(client);
    return client;
  }

  /** Run redis-cli against this cluster's Redis; resolves its trimmed stdout. */
  redisCli(...args) {
    if (!this.redisCliBin) return Promise.reject(new Error('this cluster has no Redis (redis: false)'));
    return new Promise((resolve, reject) => {
      execFile(this.redisCliBin, ['-h', HOST, '-p', String(this.redisPort), ...args.map(String)],
        { timeout: 10_000, env: { ...process.env, ...(this.options.redisPassword ? { REDISCLI_AUTH: this.options.redisPassword } : {}) } }, (err, stdout, stderr) => {
          if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}${stderr ? `\n${stderr}` : ''}`));
          else resolve(stdout.trim());
        });
    });
  }

  // --- logs and teardown ------------------------------------------------

  /** The last lines of a process's log ('nats', 'redis', 'haproxy', or an instance id). */
  logTail(name, lines = 40) { return tailFile(path.join(this.logDir, `${name}.log`), lines); }

  /**
   * Stop everything by pid (SIGTERM, then SIGKILL after a bounded wait):
   * HAProxy, the instances, Redis, NATS. Removes the temp dir, unless the
   * test failed (`failed`, default: process.exitCode is set, as node:test
   * does after a failure) or SIGSTREAM_KEEP_TEST_DIR=1: then the dir is
   * kept and the tail of every log is printed. Safe to call twice.
   */
  stop({ failed = Boolean(process.exitCode), quiet = false } = {}) {
    this.stopping ??= this.#stop(failed, quiet);
    return this.stopping;
  }

  async #stop(failed, quiet) {
    const problems = [];
    for (const client of this.clients) client.ws.terminate();
    // Only what is still running is stopped (and judged) here: a process a
    // test stopped or killed on purpose is not a teardown problem.
    const stopAll = async (procs, judgeExit = false) => {
      const running = procs.filter((proc) => proc?.alive);
      await Promise.all(running.map((proc) => proc.stop('SIGTERM', DEFAULT_STOP_TIMEOUT_MS)));
      for (const proc of running) {
        const exit = proc.exit;
        if (proc.alive) problems.push(`${proc.name} (pid ${proc.pid}) survived SIGKILL`);
        else if (exit.killedAfterTimeout) problems.push(`${proc.name} ignored SIGTERM for ${DEFAULT_STOP_TIMEOUT_MS} ms and was killed`);
        else if (judgeExit && ((exit.signal && exit.signal !== 'SIGTERM') || (exit.code !== null && exit.code !== 0))) {
          problems.push(`${proc.name} ${proc.describeExit()} on SIGTERM (see ${proc.logFile})`);
        }
      }
    };
    // An instance that crashed during a test (a signal nobody sent it: a
    // segfault, or an abort from a sanitizer report or a corrupted heap)
    // fails the run, even if the test itself did not notice.
    for (const rec of this.instanceMap.values()) {
      const proc = rec.proc;
      if (proc && !proc.alive && proc.exit?.signal && CRASH_SIGNALS.has(proc.exit.signal) && proc.stopRequested !== proc.exit.signal) {
        problems.push(`${proc.name} crashed (${proc.describeExit()}; see ${proc.logFile})`);
      }
    }
    await stopAll([this.lb]);
    // sigstream must exit 0 on SIGTERM (nats-server exits 1 by design).
    await stopAll([...this.instanceMap.values()].map((rec) => rec.proc), true);
    await stopAll([this.redis, this.nats, ...[...this.natsNodes.values()].map((n) => n.proc)]);

    const keep = failed || problems.length > 0 || process.env.SIGSTREAM_KEEP_TEST_DIR === '1';
    if (keep) {
      if (!quiet) {
        const names = fs.readdirSync(this.logDir).filter((f) => f.endsWith('.log')).sort();
        const tails = names.map((f) => `----- ${f} (last 30 lines) -----\n${tailFile(path.join(this.logDir, f), 30)}`);
        process.stderr.write(`\nsigstream test cluster kept in ${this.dir}\n${tails.join('\n')}\n`);
      }
    } else {
      await fsp.rm(this.dir, { recursive: true, force: true });
    }
    if (problems.length > 0) {
      // A crash or a non-zero exit on SIGTERM (a sanitizer report, say) is a
      // failure of the run, not a note: the after() hook that called stop() fails.
      throw new Error(`sigstream test cluster teardown: ${problems.join('; ')} (files kept in ${this.dir})`);
    }
    return { dir: this.dir, kept: keep, problems };
  }
}

function redisPing(port, password = null) {
  return new Promise((resolve) => {
    const sock = net.createConnection(port, HOST);
    let data = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    // With a password: AUTH first (its +OK), then PING's +PONG.
    sock.on('connect', () => sock.write(password ? `AUTH ${password}\r\nPING\r\n` : 'PING\r\n'));
    sock.on('data', (d) => { data += d; if (data.includes('+PONG') || data.startsWith('-')) done(data.includes('+PONG')); });
    sock.on('error', () => done(false));
  });
}

// ---------------------------------------------------------------------------
// WebSocket test client
// ---------------------------------------------------------------------------

/**
 * Open a WebSocket and resolve a TestClient once it is open. Rejects with
 * the HTTP status when the upgrade is refused (e.g. 503 from HAProxy).
 * options: timeoutMs (handshake, default 5000), headers, localAddress (a
 * loopback source address such as 127.0.0.2, to act as another client
 * address); for wss:// URLs also ca (PEM to trust, e.g. cluster.tlsCa),
 * servername, rejectUnauthorized.
 * The rejection carries the underlying error's `code` (e.g. a certificate error's).
 */
export function connect(url, { timeoutMs = 5000, headers, ca, servername, rejectUnauthorized, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const socketOptions = Object.fromEntries(Object.entries({ ca, servername, rejectUnauthorized, localAddress })
      .filter(([, v]) => v !== undefined));
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, ...socketOptions });
    const client = new TestClient(ws, url);
    ws.once('upgrade', (res) => {
      client.upgradeHeaders = res.headers;
      client.instance = res.headers['x-sigstream-instance'] ?? null;
    });
    ws.once('open', () => resolve(client));
    ws.once('error', (err) => reject(Object.assign(new Error(`WebSocket ${url}: ${err.message}`), { code: err.code, cause: err })));
  });
}

function describePredicate(predicate) {
  if (typeof predicate === 'string') return `type '${predicate}'`;
  if (typeof predicate === 'function') return predicate.name ? `predicate ${predicate.name}` : 'predicate';
  return JSON.stringify(predicate);
}

function toMatcher(predicate) {
  if (predicate === undefined) return () => true;
  if (typeof predicate === 'function') return predicate;
  if (typeof predicate === 'string') return (m) => m?.type === predicate;
  if (predicate && typeof predicate === 'object') {
    return (m) => m !== null && typeof m === 'object'
      && Object.entries(predicate).every(([k, v]) => isDeepStrictEqual(m[k], v));
  }
  throw new TypeError('predicate must be a function, a type string or an object');
}

export class TestClient {
  constructor(ws, url) {
    this.ws = ws;
    this.url = url;
    this.instance = null;      // X-Sigstream-Instance of the upgrade response
    this.upgradeHeaders = {};
    this.messages = [];        // every message received, parsed (non-JSON as {nonJson: text})
    this.pending = [];         // received but not yet taken by next()
    this.waiters = [];
    this.closeInfo = null;
    this.lastError = null;
    this.nextId = 1;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`connection closed (code ${code}${this.closeInfo.reason ? `, '${this.closeInfo.reason}'` : ''})`
            + ` while waiting for a message matching ${w.description} on ${this.#where()}`));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (err) => { this.lastError = err; });
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let msg;
      try { msg = JSON.parse(text); } catch { msg = { nonJson: text, binary: isBinary }; }
      this.messages.push(msg);
      const idx = this.waiters.findIndex((w) => w.matches(msg));
      if (idx >= 0) {
        const [w] = this.waiters.splice(idx, 1);
        clearTimeout(w.timer);
        w.resolve(msg);
      } else {
        this.pending.push(msg);
      }
    });
  }

  #where() { return `${this.url}${this.instance ? ` (instance ${this.instance})` : ''}`; }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  /** Send an object as JSON (a string is sent as-is, for malformed-frame tests). */
  send(obj) {
    if (!this.isOpen) throw new Error(`cannot send on ${this.#where()}: connection is not open`);
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /**
   * The next received message matching `predicate` (a function, a `type`
   * string, or an object whose fields must all be equal). Messages that do
   * not match stay buffered for later calls. Rejects after timeoutMs or
   * when the connection closes.
   */
  next(predicate, timeoutMs = 5000) {
    const matches = toMatcher(predicate);
    const idx = this.pending.findIndex(matches);
    if (idx >= 0) return Promise.resolve(this.pending.splice(idx, 1)[0]);
    const description = describePredicate(predicate);
    if (this.closeInfo) {
      return Promise.reject(new Error(`connection already closed (code ${this.closeInfo.code})`
        + ` with no message matching ${description} on ${this.#where()}`));
    }
    return new Promise((resolve, reject) => {
      const waiter = { matches, resolve, reject, description };
      waiter.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const unconsumed = this.pending.slice(-5).map((m) => JSON.stringify(m)).join('\n  ');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a message matching ${description}`
          + ` on ${this.#where()}; unconsumed messages: ${unconsumed ? `\n  ${unconsumed}` : 'none'}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Send `obj` with a fresh `id` and resolve the reply carrying that id (joined, ack or error). */
  request(obj, timeoutMs = 5000) {
    const id = obj.id ?? `r${this.nextId++}`;
    this.send({ ...obj, id });
    return this.next((m) => m?.id === id, timeoutMs);
  }

  /** Messages received but not yet taken by next(). */
  drain() { return this.pending.splice(0); }

  /** Close cleanly; resolves {code, reason}. Terminates if the close handshake takes over timeoutMs. */
  async close(code = 1000, reason = '', { timeoutMs = 3000 } = {}) {
    if (this.closeInfo) return this.closeInfo;
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(code, reason);
    }
    let timer;
    const info = await Promise.race([
      this.closed,
      new Promise((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (info) return info;
    this.ws.terminate();
    return this.closed;
  }

  /** Drop the TCP connection without a close frame (a network failure, as the server sees it). */
  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}
