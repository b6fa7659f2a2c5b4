#!/usr/bin/env node
// Benchmark worker for the Node reference client `engine.io-client` (pinned in tests/node).
//
//   node benchmarks/clients/node_bench.js --scenario latency --transport websocket \
//       --message text --size 32 --n 1000 --url http://127.0.0.1:PORT
//
// Same command line, scenarios and JSON line as gevent_driver.py (see benchmarks/README.md).
// --transport websocket: transports ["websocket"]; polling: ["polling"] without upgrade;
// upgrade: ["polling", "websocket"], done once the "upgrade" event fired.
// CPU is process.cpuUsage() (user + system, all threads), RSS process.memoryUsage().rss and the
// peak process.resourceUsage().maxRSS.
"use strict";

const crypto = require("crypto");
const path = require("path");

const NODE_MODULES = path.join(__dirname, "..", "..", "tests", "node", "node_modules");
const { Socket } = require(path.join(NODE_MODULES, "engine.io-client"));

const SCENARIOS = ["latency", "throughput", "flood", "connect", "idle"];
const TRANSPORTS = ["websocket", "polling", "upgrade"];
const WARMUP = 20;

class BenchError extends Error {}

function parseArgs(argv, scenarios = SCENARIOS) {
  const opts = {
    scenario: null,
    transport: null,
    message: "text",
    size: 32,
    n: null,
    url: null,
    concurrency: 20,
    hold: 10,
    connectBudget: 60,
    timeout: 10,
  };
  const names = {
    "--scenario": ["scenario", String],
    "--transport": ["transport", String],
    "--message": ["message", String],
    "--size": ["size", parseInt],
    "--n": ["n", parseInt],
    "--url": ["url", String],
    "--concurrency": ["concurrency", parseInt],
    "--hold": ["hold", parseFloat],
    "--connect-budget": ["connectBudget", parseFloat],
    "--timeout": ["timeout", parseFloat],
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--lift-limit") continue; // python-engineio only
    const spec = names[argv[i]];
    if (!spec || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    opts[spec[0]] = spec[1](argv[++i]);
  }
  if (!scenarios.includes(opts.scenario)) throw new Error("--scenario is required");
  if (!TRANSPORTS.includes(opts.transport)) throw new Error("--transport is required");
  if (!Number.isInteger(opts.n) || opts.url === null) throw new Error("--n and --url are required");
  return opts;
}

const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};
const rssKib = () => Math.round(process.memoryUsage().rss / 1024);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values, fraction) {
  if (!values.length) return 0;
  const ordered = [...values].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.floor(fraction * ordered.length))];
}

function payload(opts) {
  return opts.message === "text" ? "t".repeat(opts.size) : crypto.randomBytes(opts.size);
}

// One connection with a message inbox: receive() resolves with the next message.
class Conn {
  constructor(socket) {
    this.socket = socket;
    this.inbox = [];
    this.waiter = null;
    this.closed = false;
    socket.on("message", (data) => this._push(data));
    socket.on("close", () => {
      this.closed = true;
      this._push(null);
    });
  }

  _push(item) {
    if (this.waiter !== null) {
      const resolve = this.waiter;
      this.waiter = null;
      resolve(item);
    } else if (item !== null) {
      this.inbox.push(item);
    }
  }

  receive(timeoutS, done, total) {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    if (this.closed) return Promise.reject(new BenchError(`connection closed after ${done}/${total} messages`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new BenchError(`no message within ${timeoutS} s after ${done}/${total}`));
      }, timeoutS * 1000);
      this.waiter = (item) => {
        clearTimeout(timer);
        if (item === null) reject(new BenchError(`connection closed after ${done}/${total} messages`));
        else resolve(item);
      };
    });
  }

  get connected() {
    return !this.closed && this.socket.readyState === "open";
  }
}

function connect(opts) {
  const options = {
    websocket: { transports: ["websocket"] },
    polling: { transports: ["polling"], upgrade: false },
    upgrade: { transports: ["polling", "websocket"] },
  }[opts.transport];
  return new Promise((resolve, reject) => {
    const socket = new Socket(opts.url, { ...options, path: "/engine.io/" });
    const conn = new Conn(socket);
    const timer = setTimeout(() => fail(new BenchError(`connect timeout after ${opts.timeout} s`)), opts.timeout * 1000);
    const fail = (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const done = () => {
      clearTimeout(timer);
      socket.off("error", fail);
      socket.off("upgradeError", fail);
      resolve(conn);
    };
    socket.once("error", fail);
    if (opts.transport === "upgrade") {
      socket.once("upgrade", done);
      socket.once("upgradeError", fail);
    } else {
      socket.once("open", done);
    }
  });
}

async function expect(conn, opts, done) {
  return conn.receive(opts.timeout, done, opts.n);
}

async function runLatency(opts) {
  const conn = await connect(opts);
  const data = payload(opts);
  for (let i = 0; i < WARMUP; i++) {
    conn.socket.send(data);
    await expect(conn, opts, i - WARMUP);
  }
  const times = [];
  const cpu0 = cpuSeconds();
  for (let i = 0; i < opts.n; i++) {
    const start = process.hrtime.bigint();
    conn.socket.send(data);
    const echo = await expect(conn, opts, i);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (echo.length !== opts.size) throw new BenchError(`echo ${i} has ${echo.length} bytes`);
  }
  const cpu = cpuSeconds() - cpu0;
  return {
    cpu_s: cpu,
    p50_ms: percentile(times, 0.5),
    p90_ms: percentile(times, 0.9),
    p99_ms: percentile(times, 0.99),
    mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
    seconds: times.reduce((a, b) => a + b, 0) / 1e3,
  };
}

function rates(opts, seconds, size, cpu) {
  return { cpu_s: cpu, seconds, msgs_per_s: opts.n / seconds, mb_per_s: (opts.n * size) / seconds / 1e6 };
}

async function runThroughput(opts) {
  const conn = await connect(opts);
  const data = payload(opts);
  conn.socket.send(data);
  await expect(conn, opts, 0);
  const cpu0 = cpuSeconds();
  const start = performance.now();
  for (let i = 0; i < opts.n; i++) conn.socket.send(data);
  for (let i = 0; i < opts.n; i++) await expect(conn, opts, i);
  return rates(opts, (performance.now() - start) / 1e3, opts.size, cpuSeconds() - cpu0);
}

async function runFlood(opts) {
  const conn = await connect(opts);
  conn.socket.send("cmd:push:1");
  await expect(conn, opts, 0);
  const text = opts.message === "text";
  const command = text ? `cmd:push:${opts.n}` : `cmd:pushbin:${opts.n}:${opts.size}`;
  const size = text ? `push ${Math.floor(opts.n / 2)}`.length : opts.size;
  const cpu0 = cpuSeconds();
  const start = performance.now();
  conn.socket.send(command);
  for (let i = 0; i < opts.n; i++) await expect(conn, opts, i);
  return rates(opts, (performance.now() - start) / 1e3, size, cpuSeconds() - cpu0);
}

// Open opts.n connections with open(opts), opts.concurrency in flight, within budgetS seconds.
// As in gevent_driver.py, connects still pending when the budget ends are given up: one that
// completes later is closed at once and counted as not connected, so that it costs nothing
// during the hold.
async function connectMany(opts, budgetS, open = connect) {
  const opened = { conns: [], times: [], errors: new Map(), seconds: 0 };
  const start = performance.now();
  const deadline = start + budgetS * 1000;
  let next = 0;
  let over = false;
  const addError = (reason, count = 1) =>
    opened.errors.set(reason, (opened.errors.get(reason) || 0) + count);
  const worker = async () => {
    while (next < opts.n && performance.now() < deadline) {
      next++;
      const begin = performance.now();
      let conn;
      try {
        conn = await open(opts);
      } catch (err) {
        if (!over) addError(`${err.constructor.name}: ${err.message}`.slice(0, 160));
        continue;
      }
      if (over) {
        (conn.socket || conn).close();
        return;
      }
      opened.conns.push(conn);
      opened.times.push(performance.now() - begin);
    }
  };
  const workers = Array.from({ length: Math.min(opts.concurrency, opts.n) }, worker);
  let timer;
  const budget = new Promise((resolve) => {
    timer = setTimeout(resolve, budgetS * 1000);
  });
  await Promise.race([Promise.all(workers), budget]);
  clearTimeout(timer);
  over = true;
  opened.seconds = (performance.now() - start) / 1e3;
  const missing = opts.n - opened.conns.length - [...opened.errors.values()].reduce((a, b) => a + b, 0);
  if (missing > 0) addError(`not connected within the ${budgetS} s budget`, missing);
  return opened;
}

function firstError(opened, n) {
  if (!opened.errors.size) return null;
  const [reason, count] = [...opened.errors.entries()].sort((a, b) => b[1] - a[1])[0];
  const total = [...opened.errors.values()].reduce((a, b) => a + b, 0);
  return { total, text: `${total}${n ? "/" + n : ""}${n ? " failed" : ""} (${count}x ${reason})` };
}

async function runConnect(opts) {
  const cpu0 = cpuSeconds();
  const opened = await connectMany(opts, opts.connectBudget);
  const cpu = cpuSeconds() - cpu0;
  const result = {
    cpu_s: cpu,
    seconds: opened.seconds,
    connected: opened.conns.length,
    conns_per_s: opened.conns.length / opened.seconds,
    p50_ms: percentile(opened.times, 0.5),
    p99_ms: percentile(opened.times, 0.99),
  };
  const err = firstError(opened, opts.n);
  if (err) result.error = err.text;
  return result;
}

// One connection opened and closed before the baseline RSS, as gevent_driver.warm_up does:
// what a first connection loads is not counted per client.  `conn` is a Conn (its engine.io
// Socket emits "close") or a socket.io-client Socket (it emits "disconnect").
async function warmUp(opts, open) {
  const conn = await open(opts);
  const socket = conn.socket || conn;
  await new Promise((resolve) => {
    socket.once(conn.socket ? "close" : "disconnect", () => resolve());
    socket.close();
  });
}

// open(opts) resolves with an object whose `connected` says whether it is still open.
// Run with --expose-gc (bench_plan.py does), so that the baseline follows a full GC.
async function runIdle(opts, open = connect) {
  await warmUp(opts, open);
  if (global.gc) global.gc();
  const rssBase = rssKib();
  const opened = await connectMany(opts, opts.connectBudget, open);
  const connected = opened.conns.length;
  const cpu0 = cpuSeconds();
  const start = performance.now();
  await sleep(opts.hold * 1000);
  const held = (performance.now() - start) / 1e3;
  const cpu = cpuSeconds() - cpu0;
  const rss = rssKib();
  const result = {
    cpu_s: cpu,
    cpu_percent: (100 * cpu) / held,
    connected,
    still_connected: opened.conns.filter((conn) => conn.connected).length,
    connect_seconds: opened.seconds,
    rss_baseline_kib: rssBase,
    kib_per_client: (rss - rssBase) / Math.max(1, connected),
  };
  const err = firstError(opened, 0);
  if (err) result.connect_errors = err.text;
  if (connected === 0) result.error = `no client connected: ${result.connect_errors || ""}`;
  return result;
}

const RUNNERS = {
  latency: runLatency,
  throughput: runThroughput,
  flood: runFlood,
  connect: runConnect,
  idle: runIdle,
};

// runners: scenario name -> async function(opts); node_sio_bench.js passes its own.
async function main(runners = RUNNERS, impl = "node") {
  const opts = parseArgs(process.argv.slice(2), Object.keys(runners));
  const head = {
    impl,
    scenario: opts.scenario,
    transport: opts.transport,
    message: opts.message,
    size: opts.size,
    n: opts.n,
  };
  let result;
  try {
    result = { ...head, ...(await runners[opts.scenario](opts)) };
  } catch (err) {
    if (!(err instanceof BenchError)) process.stderr.write(`${err.stack}\n`);
    result = { ...head, error: `${err instanceof BenchError ? "" : err.constructor.name + ": "}${err.message}` };
  }
  result.rss_kib = rssKib();
  result.rss_peak_kib = process.resourceUsage().maxRSS;
  result.cpu_total_s = cpuSeconds();
  result.ok = !("error" in result);
  // exit at once, disconnecting nothing: teardown is not measured (as in gevent_driver.py)
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

if (require.main === module) main();

module.exports = { BenchError, cpuSeconds, main, percentile, runIdle, sleep };
