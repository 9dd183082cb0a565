// Integration test harness: a real sigstream cluster on loopback.
//
//   const cluster = await startCluster({ instances: 2, t });
//   const alice = await connect(cluster.url);
//   ...
//
// The cluster is the one `scripts/dev up` brings up, and scripts/dev does
// the bring-up: nats-server (JetStream; or a cluster of N nodes), redis-server,
// N sigstream instances and HAProxy rendered from haproxy/haproxy.cfg, their
// arguments, environment, data folders, readiness checks and pid files. This
// file gives it a run folder of its own (a fresh temp dir: pids/, logs/,
// data/) and free 127.0.0.1 ports, runs `scripts/dev up`, `stop`, `start`,
// `add` and `down` in it, and reads pids, ports and exit statuses back from
// its files. What is the tests' own stays here: the instances' test settings
// (rate limits lifted, a short drain), port choice, the JavaScript API, the
// WebSocket test client. Every wait is bounded; a timeout names the process
// and prints the tail of its log. See README.md beside this file.

import { execFile } from 'node:child_process';
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
export const DEV_SCRIPT = path.join(REPO_ROOT, 'scripts', 'dev');
/** The HAProxy template scripts/dev renders (for tests that run a HAProxy of their own). */
export const HAPROXY_TEMPLATE = path.join(REPO_ROOT, 'haproxy', 'haproxy.cfg');
const BACKEND = 'signaling';
const HOST = '127.0.0.1';

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------
// Small utilities (exported: tests may use them too)
// ---------------------------------------------------------------------------

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const portsHandedOut = new Set();

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

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

/** The first of `count` consecutive free ports (scripts/dev numbers instances and NATS nodes from one port up). */
export async function freePortRange(count) {
  if (count <= 1) return freePort();
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    let ok = first + count - 1 < 65536;
    for (let p = first + 1; ok && p < first + count; p++) ok = !portsHandedOut.has(p) && await portFree(p);
    if (ok) {
      for (let p = first + 1; p < first + count; p++) portsHandedOut.add(p);
      return first;
    }
  }
  throw new Error(`could not find ${count} consecutive free ports on 127.0.0.1`);
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

// redis-cli and haproxy (tests run them themselves) live in /usr/bin and
// /usr/sbin, which is not always on PATH.
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

/** Fields of /proc/PID/stat after "pid (comm)": [state, ppid, ...], or null. */
function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A zombie has exited even though kill(0) succeeds.
  const stat = procStat(pid);
  return stat !== null && stat[0] !== 'Z';
}
export { pidAlive };

// Signals that mean a process crashed, rather than was stopped.
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE']);

// Signal number -> name (the first name of each number: SIGABRT, not SIGIOT).
const SIGNAL_NAMES = new Map();
for (const [name, number] of Object.entries(os.constants.signals)) if (!SIGNAL_NAMES.has(number)) SIGNAL_NAMES.set(number, name);

const looksLikePortClash = (text) => /already in use|EADDRINUSE|cannot bind socket/i.test(text);

/** Run `scripts/dev ARGS...` with `env`; resolves {stdout, stderr}; rejects with what it said. */
function runDev(args, env, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile('bash', [DEV_SCRIPT, ...args], { env, cwd: REPO_ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (!err) { resolve({ stdout, stderr }); return; }
        const how = err.killed ? `no end within ${timeoutMs} ms` : `exit ${err.code}`;
        reject(Object.assign(new Error(`scripts/dev ${args.join(' ')} failed (${how}):\n${(stderr || stdout).trimEnd()}`),
          { stdout, stderr }));
      });
  });
}

// Every process started by any cluster in this test process: killed on exit.
// (If this process is killed outright, the guard scripts/dev runs for it,
// SIGSTREAM_DEV_OWNER_PID, kills them.)
const liveProcesses = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const proc of liveProcesses) {
      if (proc.alive) {
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });
}

// ---------------------------------------------------------------------------
// One process of the cluster, as scripts/dev keeps it: pids/NAME.pid (the
// process), NAME.start (its kernel start time: a reused pid is not it),
// NAME.exit (written when it ends: the exit code, or 128+N for signal N).
// ---------------------------------------------------------------------------

class DevProc {
  constructor(cluster, name) {
    this.cluster = cluster;
    this.name = name;
    this.pid = null;
    this.startTime = null;
    this.stopRequested = null; // the signal the harness sent, if any
    this.killedAfterTimeout = false;
  }

  #file(ext) { return path.join(this.cluster.pidDir, `${this.name}.${ext}`); }

  get logFile() { return path.join(this.cluster.logDir, `${this.name}.log`); }

  /** Take the pid of the current start from the pid files; true if it is a new one. */
  refresh() {
    let pid;
    let startTime;
    try {
      pid = Number(fs.readFileSync(this.#file('pid'), 'utf8').trim());
      startTime = fs.readFileSync(this.#file('start'), 'utf8').trim();
    } catch {
      return false; // forgotten by scripts/dev (after down): keep the last one
    }
    if (!pid || (pid === this.pid && startTime === this.startTime)) return false;
    Object.assign(this, { pid, startTime, stopRequested: null, killedAfterTimeout: false });
    liveProcesses.add(this);
    return true;
  }

  get alive() {
    if (!this.pid) return false;
    const stat = procStat(this.pid);
    return stat !== null && stat[0] !== 'Z' && stat[19] === this.startTime;
  }

  /** {code, signal} once it ended (from NAME.exit), else null. */
  get exit() {
    if (this.alive) return null;
    let text;
    try { text = fs.readFileSync(this.#file('exit'), 'utf8').trim(); } catch { return null; }
    const status = Number(text);
    if (text === '' || !Number.isInteger(status)) return null;
    const exit = status > 128 && status <= 128 + 64
      ? { code: null, signal: SIGNAL_NAMES.get(status - 128) ?? `signal ${status - 128}` }
      : { code: status, signal: null };
    if (this.killedAfterTimeout) exit.killedAfterTimeout = true;
    return exit;
  }

  /** Resolves true once it ended, false if still running after timeoutMs. */
  async waitGone(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (this.alive) {
      if (Date.now() >= deadline) return false;
      await sleep(10);
    }
    return true;
  }

  /** Its exit once its waiter wrote it (a few ms after it ended; 2 s at most), else null. */
  async waitExit() {
    for (let i = 0; i < 200 && !this.alive && !this.exit; i++) await sleep(10);
    return this.exit;
  }

  describeExit() {
    if (this.alive) return 'running';
    const e = this.exit;
    if (!e) return 'gone (no exit status)';
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  tail(lines = 40) { return tailFile(this.logFile, lines); }
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/**
 * Start a cluster (`scripts/dev up` in a temp dir) and wait until it is ready.
 *
 * options:
 *   instances      number of sigstream instances (default 2), ids i1..iN
 *   redis          start redis-server (default true); when false, instances
 *                  get a Redis URL that nothing listens on
 *   haproxy        start HAProxy in front (default true)
 *   env            extra environment for every instance (SIGSTREAM_* etc.;
 *                  a SIGSTREAM_* set to undefined is unset for the instances)
 *   lbCheckInter   HAProxy health check interval (default '1s'; fall 3, rise 2)
 *   readyTimeoutMs bound for each readiness wait (default 30000; whole seconds)
 *   tls            also terminate TLS in HAProxy (default false): a
 *                  self-signed certificate for 127.0.0.1/localhost is made
 *                  in the cluster dir; see tlsUrl, httpsUrl, tlsCa
 *   lbEnv          extra environment for HAProxy (e.g. SIGSTREAM_LB_HSTS;
 *                  undefined: the template's default)
 *   natsArgs       extra nats-server arguments (e.g. --user/--pass, --tls...; no white space in one)
 *   natsNodes      nats-server processes (default 1); 3 or more run a JetStream
 *                  cluster (nats1..natsN, routes between them), instances get
 *                  every node's URL and SIGSTREAM_STREAM_REPLICAS=3; see
 *                  natsNodeNames, stopNatsNode, startNatsNode, streamLeader
 *   natsScheme     scheme of the NATS URL given to instances (default 'nats'; 'tls')
 *   redisArgs      extra redis-server arguments (no white space in one)
 *   redisPassword  start redis-server with --requirepass (the readiness
 *                  check authenticates); instances need it too
 *   natsGomaxprocs nats-server's Go threads (SIGSTREAM_NATS_GOMAXPROCS; default:
 *                  one per core, Go's own default, as the tests always had;
 *                  scripts/dev's 1 is for the benchmark host: with it,
 *                  nats_cluster's rolling restart met nats-server 2.9.10's
 *                  renumbering in 2 runs of 3)
 *   instanceRedisUrl  the Redis URL instances get instead of redisUrl (e.g.
 *                  rediss:// to a --tls-port given in redisArgs; the
 *                  readiness check keeps using the plain port)
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
    natsGomaxprocs = os.availableParallelism?.() ?? os.cpus().length,
  } = {}) {
    if (natsNodes > 1) env = { SIGSTREAM_STREAM_REPLICAS: String(Math.min(3, natsNodes)), ...env };
    for (const arg of [...natsArgs, ...redisArgs, ...(redisPassword ? [redisPassword] : [])]) {
      if (/\s/.test(String(arg)) || String(arg) === '') throw new Error(`natsArgs, redisArgs, redisPassword: '${arg}' is empty or holds white space (scripts/dev splits them on it)`);
    }
    this.options = { instances, redis, haproxy, env, lbCheckInter, readyTimeoutMs, tls, lbEnv, natsArgs, natsNodes, natsScheme, redisArgs, redisPassword, instanceRedisUrl, natsGomaxprocs };
    this.bin = sigstreamBinary();
    // Tools tests run themselves (redisCli(), a HAProxy of their own).
    this.redisCliBin = redis ? resolveBinary('redis-cli', 'REDIS_CLI_BIN') : null;
    this.haproxyBin = haproxy ? resolveBinary('haproxy', 'HAPROXY_BIN') : null;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstream-test-'));
    this.logDir = path.join(this.dir, 'logs');
    this.pidDir = path.join(this.dir, 'pids');
    this.haproxySocket = path.join(this.dir, 'haproxy.sock');
    this.natsPort = null;
    this.natsMonitorPort = null;
    this.natsClusterPort = null;
    this.redisPort = null;
    this.lbPort = null;
    this.firstInstancePort = null;
    this.tlsPort = null; // with tls: HAProxy's TLS port
    this.tlsCa = null; // with tls: the self-signed certificate (PEM) to trust
    this.tlsCertFile = null; // with tls: the same, as a file
    this.natsNodes = new Map(); // with natsNodes > 1: name -> {name, port, monitorPort, routePort}
    this.procs = new Map(); // name (nats, natsK, redis, haproxy, iN) -> DevProc
    this.instanceMap = new Map(); // id -> {id, port, env}
    this.allPids = new Set();
    this.stopping = null;
    this.clients = new Set(); // from this.connect(): terminated by stop()
    installExitHook();
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

  /** The single nats-server, Redis and HAProxy: {name, pid, alive, logFile, exit} (null when there is none). */
  get nats() { return this.procs.get('nats') ?? null; }
  get redis() { return this.procs.get('redis') ?? null; }
  get lb() { return this.procs.get('haproxy') ?? null; }

  instance(id) {
    const rec = this.instanceMap.get(id);
    if (!rec) throw new Error(`no instance ${id} (have: ${[...this.instanceMap.keys()].join(', ')})`);
    const proc = this.procs.get(id);
    return {
      id,
      port: rec.port,
      url: `ws://${HOST}:${rec.port}/ws`,
      httpUrl: `http://${HOST}:${rec.port}`,
      pid: proc?.pid,
      alive: proc?.alive ?? false,
      logFile: path.join(this.logDir, `${id}.log`),
    };
  }

  /** Every pid this cluster ever started (to check that none survive stop()). */
  pids() { return [...this.allPids]; }

  // --- scripts/dev --------------------------------------------------------

  /**
   * The environment of a scripts/dev command: where the cluster lives, its
   * ports and settings, HAProxy's, and the instances' (the test settings,
   * the cluster's env, then `extra`). The caller's own SIGSTREAM_* stay out,
   * but SIGSTREAM_LOG_LEVEL (handy when debugging).
   */
  #devEnv(extra = {}, overrides = {}) {
    const o = this.options;
    const env = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('SIGSTREAM_') || k === 'SIGSTREAM_LOG_LEVEL') env[k] = v;
    }
    // A drain waits --shutdown-grace (10 s) for clients to resume elsewhere;
    // most tests' clients never do, and teardown allows 10 s per process.
    // Load tests send faster than one browser would, and every test client
    // comes from 127.0.0.1: the per-connection signal limit and the
    // per-address join limit are tested on their own (abuse_limits.test.mjs).
    // No admin API unless a test gives a token (scripts/dev would make one).
    const instanceEnv = {
      SIGSTREAM_SHUTDOWN_GRACE: '2s', SIGSTREAM_SIGNAL_RATE: '1000000', SIGSTREAM_SIGNAL_BURST: '1000000',
      SIGSTREAM_JOIN_RATE: '1000000', SIGSTREAM_JOIN_BURST: '1000000', SIGSTREAM_ADMIN_TOKEN: '',
      ...o.env, ...extra,
    };
    for (const [k, v] of Object.entries(instanceEnv)) {
      // An empty SIGSTREAM_* is unset for sigstream; it also overrides what
      // `up` was given, which a missing variable would not.
      if (v === undefined || v === null) {
        if (k.startsWith('SIGSTREAM_')) env[k] = '';
        else delete env[k];
      } else {
        env[k] = String(v);
      }
    }
    const setting = (k, v) => { if (v !== null && v !== undefined) env[k] = String(v); };
    setting('SIGSTREAM_RUN_DIR', this.dir);
    setting('SIGSTREAM_BIN', this.bin);
    setting('SIGSTREAM_INSTANCES', o.instances);
    setting('SIGSTREAM_PORT', this.lbPort);
    setting('SIGSTREAM_TLS_PORT', this.tlsPort);
    setting('SIGSTREAM_NATS_PORT', this.natsPort);
    setting('SIGSTREAM_NATS_MONITOR_PORT', this.natsMonitorPort);
    setting('SIGSTREAM_NATS_NODES', o.natsNodes);
    setting('SIGSTREAM_NATS_CLUSTER_PORT', this.natsClusterPort);
    setting('SIGSTREAM_NATS_GOMAXPROCS', o.natsGomaxprocs);
    setting('SIGSTREAM_REDIS_PORT', this.redisPort);
    setting('SIGSTREAM_FIRST_INSTANCE_PORT', this.firstInstancePort);
    setting('SIGSTREAM_READY_TIMEOUT', Math.ceil(o.readyTimeoutMs / 1000));
    setting('SIGSTREAM_STOP_TIMEOUT', Math.ceil(DEFAULT_STOP_TIMEOUT_MS / 1000));
    env.SIGSTREAM_NATS_ARGS = o.natsArgs.join(' ');
    env.SIGSTREAM_REDIS_ARGS = [...o.redisArgs, ...(o.redisPassword ? ['--requirepass', o.redisPassword] : [])].join(' ');
    setting('SIGSTREAM_DEV_NATS_SCHEME', o.natsScheme);
    setting('SIGSTREAM_DEV_REDIS_URL', o.instanceRedisUrl);
    setting('SIGSTREAM_DEV_OWNER_PID', process.pid);
    // HAProxy: the test settings, then the test's; TLS only when asked for.
    setting('SIGSTREAM_LB_MAXCONN', '1024');
    setting('SIGSTREAM_LB_CHECK_INTER', o.lbCheckInter);
    for (const [k, v] of Object.entries(o.lbEnv)) {
      if (v === undefined || v === null) delete env[k];
      else env[k] = String(v);
    }
    for (const [k, v] of Object.entries(overrides)) env[k] = String(v);
    return env;
  }

  /** Run scripts/dev in this cluster's folder, then take the pids of what it started. */
  async #dev(args, { extra, overrides, timeoutMs } = {}) {
    const bound = timeoutMs ?? (this.options.readyTimeoutMs * 4 + 60_000);
    try {
      return await runDev(args, this.#devEnv(extra, overrides), bound);
    } finally {
      this.#collect();
    }
  }

  /** Every pid file of the run folder: new starts are recorded. */
  #collect() {
    let files;
    try { files = fs.readdirSync(this.pidDir); } catch { return; }
    for (const file of files) {
      if (!file.endsWith('.pid')) continue;
      const name = file.slice(0, -4);
      let proc = this.procs.get(name);
      if (!proc) {
        proc = new DevProc(this, name);
        this.procs.set(name, proc);
      }
      if (proc.refresh()) this.allPids.add(proc.pid);
    }
  }

  // --- startup ----------------------------------------------------------

  async #choosePorts() {
    const { instances, haproxy, tls, natsNodes } = this.options;
    // Ports stay handed out: a retry takes new ones.
    this.natsPort = await freePortRange(natsNodes);
    this.natsMonitorPort = await freePortRange(natsNodes);
    this.natsClusterPort = natsNodes > 1 ? await freePortRange(natsNodes) : null;
    this.redisPort = await freePort(); // with redis: false, nothing listens there
    this.lbPort = haproxy ? await freePort() : null;
    this.tlsPort = haproxy && tls ? await freePort() : null;
    this.firstInstancePort = await freePortRange(instances);
    this.natsNodes.clear();
    if (natsNodes > 1) {
      for (let k = 1; k <= natsNodes; k++) {
        const name = `nats${k}`;
        this.natsNodes.set(name, { name, port: this.natsPort + k - 1, monitorPort: this.natsMonitorPort + k - 1, routePort: this.natsClusterPort + k - 1 });
      }
    }
  }

  async start() {
    const { instances, redis, haproxy, tls } = this.options;
    const args = ['up', '--no-build', ...(tls ? ['--tls'] : []), ...(redis ? [] : ['--no-redis']), ...(haproxy ? [] : ['--no-haproxy'])];
    for (let attempt = 1; ; attempt++) {
      await this.#choosePorts();
      try {
        await this.#dev(args);
        break;
      } catch (err) {
        // Another process took a port between the choice and the bind: `up`
        // stopped what it started; again on other ports.
        if (attempt < 3 && looksLikePortClash(err.message)) continue;
        throw err;
      }
    }
    for (let i = 1; i <= instances; i++) {
      this.instanceMap.set(`i${i}`, { id: `i${i}`, port: this.firstInstancePort + i - 1, env: {} });
    }
    if (tls) {
      this.tlsCertFile = path.join(this.dir, 'tls', 'cert.pem');
      this.tlsCa = fs.readFileSync(this.tlsCertFile, 'utf8');
    }
  }

  /**
   * Stop process `name` with `signal` (SIGKILL after timeoutMs); resolves
   * {code, signal}. The signal goes straight to the pid scripts/dev
   * recorded, and the exit status is the one its waiter wrote: a test's
   * kill -9 must land at once, not after a bash start (`scripts/dev stop`
   * does the same for people).
   */
  async #stopProc(name, signal = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
    const proc = this.procs.get(name);
    if (!proc) return undefined;
    if (proc.alive) {
      proc.stopRequested = signal;
      try { process.kill(proc.pid, signal); } catch { /* ended meanwhile */ }
      if (!(await proc.waitGone(timeoutMs))) {
        fs.appendFileSync(proc.logFile, `--- harness: no exit ${timeoutMs} ms after ${signal}, sending SIGKILL\n`);
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* ended meanwhile */ }
        proc.killedAfterTimeout = true;
        await proc.waitGone(5000);
      }
    }
    const exit = await proc.waitExit();
    if (exit) return exit;
    // No exit status: say what the harness saw, for the test's message (seen
    // once in a full run, 2026-12-04: an instance's stop came back with no
    // status in under a second, and it did not happen again).
    let exitFile;
    try { exitFile = fs.readFileSync(path.join(this.pidDir, `${name}.exit`), 'utf8'); } catch (err) { exitFile = err.code; }
    return { code: null, signal: null, pid: proc.pid, startTime: proc.startTime, alive: proc.alive, exitFile };
  }

  /** Start process `name` again (`scripts/dev start`), on its port and data. */
  async #startProc(name, { extra, wait } = {}) {
    if (this.procs.get(name)?.alive) throw new Error(`${name} is already running (pid ${this.procs.get(name).pid})`);
    await this.#dev(['start', name, ...(wait ? ['--wait', wait] : [])], { extra });
    return this.procs.get(name);
  }

  /** (Re)start nats-server on the same ports and store dir. */
  async startNats() { await this.#startProc('nats'); }

  async stopNats(signal = 'SIGTERM') { return this.#stopProc('nats', signal); }

  /** (Re)start one node of the NATS cluster, on its ports and store dir. */
  async startNatsNode(name) {
    if (!this.natsNodes.has(name)) throw new Error(`no NATS node ${name}`);
    await this.#startProc(name);
  }

  async stopNatsNode(name, signal = 'SIGTERM') { return this.#stopProc(name, signal); }

  /** The node leading `stream` (a JetStream stream or a bucket's KV_<name>), asked of a live node. */
  async streamLeader(stream = 'SIGSTREAM') { return (await this.streamPlacement(stream))?.leader ?? null; }

  /** {leader, copies: [names of the other replicas]} of `stream`, asked of a live node. */
  async streamPlacement(stream = 'SIGSTREAM') {
    for (const node of this.natsNodes.values()) {
      if (!this.procs.get(node.name)?.alive) continue;
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
    if (!this.options.redis) throw new Error('this cluster has no Redis (redis: false)');
    await this.#startProc('redis');
  }

  async stopRedis(signal = 'SIGTERM') { return this.#stopProc('redis', signal); }

  /**
   * Start instance `id` (default: the next unused iN). A stopped instance is
   * restarted on its old port (`scripts/dev start`). A new one (`scripts/dev
   * add`) joins a running HAProxy through the runtime API. options: env
   * (extra, this instance only; a restart reuses the previous start's unless
   * given), wait: 'ready' (default: /readyz 200, and UP in HAProxy),
   * 'healthy' (/healthz 200) or false.
   */
  async startInstance(id, { env, wait = 'ready' } = {}) {
    id ??= this.#nextInstanceId();
    const waitArg = wait === 'ready' || wait === 'healthy' ? wait : 'none';
    let rec = this.instanceMap.get(id);
    if (rec) {
      if (this.procs.get(id)?.alive) throw new Error(`instance ${id} is already running (pid ${this.procs.get(id).pid})`);
      if (env !== undefined) rec.env = env;
      await this.#startProc(id, { extra: rec.env, wait: waitArg });
      return this.instance(id);
    }
    rec = { id, port: null, env: env ?? {} };
    this.instanceMap.set(id, rec); // taken now: a concurrent call picks another id
    for (let attempt = 1; ; attempt++) {
      rec.port = await freePort();
      try {
        await this.#dev(['add', id, '--port', String(rec.port), '--wait', waitArg], { extra: rec.env });
        break;
      } catch (err) {
        // Another process may have taken the port between freePort() and
        // the bind: again on another port (`add` stopped the first try).
        if (attempt < 3 && looksLikePortClash(err.message)) continue;
        throw err;
      }
    }
    return this.instance(id);
  }

  /** Send `signal` to instance `id` (SIGKILL: no goodbye); SIGKILL after timeoutMs. Resolves {code, signal}. */
  async stopInstance(id, signal = 'SIGTERM', { timeoutMs = DEFAULT_STOP_TIMEOUT_MS } = {}) {
    if (!this.instanceMap.has(id)) throw new Error(`no instance ${id}`);
    return this.#stopProc(id, signal, timeoutMs);
  }

  #nextInstanceId() {
    let n = this.instanceMap.size + 1;
    while (this.instanceMap.has(`i${n}`)) n++;
    return `i${n}`;
  }

  // --- HAProxy ----------------------------------------------------------

  /** (Re)start HAProxy: the config rendered anew with every instance. */
  async startHaproxy() {
    if (!this.options.haproxy) throw new Error('this cluster has no HAProxy (haproxy: false)');
    await this.#startProc('haproxy');
  }

  async stopHaproxy(signal = 'SIGTERM') { return this.#stopProc('haproxy', signal); }

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
   * Stop everything (`scripts/dev down`: SIGTERM, then SIGKILL after a
   * bounded wait): HAProxy, the instances, Redis, NATS. Removes the temp
   * dir, unless the test failed (`failed`, default: process.exitCode is set,
   * as node:test does after a failure) or SIGSTREAM_KEEP_TEST_DIR=1: then
   * the dir is kept and the tail of every log is printed. Safe to call twice.
   */
  stop({ failed = Boolean(process.exitCode), quiet = false } = {}) {
    this.stopping ??= this.#stop(failed, quiet);
    return this.stopping;
  }

  async #stop(failed, quiet) {
    const problems = [];
    for (const client of this.clients) client.ws.terminate();
    // An instance that crashed during a test (a signal nobody sent it: a
    // segfault, or an abort from a sanitizer report or a corrupted heap)
    // fails the run, even if the test itself did not notice.
    for (const id of this.instanceMap.keys()) {
      const proc = this.procs.get(id);
      const exit = proc && !proc.alive ? proc.exit : null;
      if (exit?.signal && CRASH_SIGNALS.has(exit.signal) && proc.stopRequested !== exit.signal) {
        problems.push(`${proc.name} crashed (${proc.describeExit()}; see ${proc.logFile})`);
      }
    }
    // Only what is still running is stopped (and judged) here: a process a
    // test stopped or killed on purpose is not a teardown problem.
    const running = [...this.procs.values()].filter((proc) => proc.alive);
    let said = '';
    try {
      const { stdout, stderr } = await this.#dev(['down'], { timeoutMs: 4 * DEFAULT_STOP_TIMEOUT_MS + 30_000 });
      said = `${stdout}\n${stderr}`;
    } catch (err) {
      said = err.message;
      if (!running.some((proc) => proc.alive)) problems.push(`scripts/dev down: ${err.message}`);
    }
    for (const proc of running) {
      if (proc.alive) {
        problems.push(`${proc.name} (pid ${proc.pid}) survived SIGKILL`);
        continue;
      }
      liveProcesses.delete(proc);
      const exit = proc.exit;
      if (said.includes(`${proc.name} (pid ${proc.pid}) did not stop within`)) {
        problems.push(`${proc.name} ignored SIGTERM for ${DEFAULT_STOP_TIMEOUT_MS} ms and was killed`);
      } else if (this.instanceMap.has(proc.name) && exit
        && ((exit.signal && exit.signal !== 'SIGTERM') || (exit.code !== null && exit.code !== 0))) {
        // sigstream must exit 0 on SIGTERM (nats-server exits 1 by design).
        problems.push(`${proc.name} ${proc.describeExit()} on SIGTERM (see ${proc.logFile})`);
      }
    }

    const keep = failed || problems.length > 0 || process.env.SIGSTREAM_KEEP_TEST_DIR === '1';
    if (keep) {
      if (!quiet) {
        let names = [];
        try { names = fs.readdirSync(this.logDir).filter((f) => f.endsWith('.log')).sort(); } catch { /* none */ }
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
