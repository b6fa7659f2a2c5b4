#!/usr/bin/env node
// Benchmark worker for the Node reference client `socket.io-client` (pinned in tests/node).
//
//   node benchmarks/clients/node_sio_bench.js --scenario sio-call --transport websocket \
//       --size 32 --n 1000 --concurrency 50 --url http://127.0.0.1:PORT
//
// The sio-* scenarios of sio_driver.py, line by line, against the Node socket.io test server
// (tests/servers/sio_node_server.js); command line, JSON line, CPU/RSS figures and the idle
// scenario are node_bench.js's. --transport websocket or polling (no upgrade); reconnection off.
"use strict";

const path = require("path");
const { BenchError, cpuSeconds, main, percentile, runIdle } = require("./node_bench.js");

const NODE_MODULES = path.join(__dirname, "..", "..", "tests", "node", "node_modules");
const { io } = require(path.join(NODE_MODULES, "socket.io-client"));

const WARMUP = 20;

// A connected socket.io-client Socket (namespace "/"), or a rejection.
function connect(opts) {
  return new Promise((resolve, reject) => {
    const socket = io(opts.url, {
      transports: [opts.transport],
      upgrade: false,
      reconnection: false,
      forceNew: true,
      timeout: opts.timeout * 1000,
    });
    const timer = setTimeout(() => fail(new BenchError(`connect timeout after ${opts.timeout} s`)), opts.timeout * 1000);
    const fail = (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    socket.once("connect_error", fail);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("connect_error", fail);
      resolve(socket);
    });
  });
}

const text = (opts) => "t".repeat(opts.size);

// One call("ack", data): its round trip in ms.
async function call(socket, opts, data) {
  const start = process.hrtime.bigint();
  let answer;
  try {
    answer = await socket.timeout(opts.timeout * 1000).emitWithAck("ack", data);
  } catch (err) {
    throw new BenchError(`no ack within ${opts.timeout} s (${err.message})`);
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (answer !== data) throw new BenchError(`ack carried ${String(answer).slice(0, 40)}`);
  return elapsed;
}

function rates(opts, seconds, cpu) {
  return { cpu_s: cpu, seconds, msgs_per_s: opts.n / seconds, mb_per_s: (opts.n * opts.size) / seconds / 1e6 };
}

// N emits of "ack" without ack, then one call("ack") that confirms them all (in-order server).
async function runEmit(opts) {
  const socket = await connect(opts);
  const data = text(opts);
  for (let i = 0; i < WARMUP; i++) await call(socket, opts, data);
  const cpu0 = cpuSeconds();
  const start = performance.now();
  for (let i = 0; i < opts.n; i++) socket.emit("ack", data);
  await call(socket, opts, data);
  return rates(opts, (performance.now() - start) / 1e3, cpuSeconds() - cpu0);
}

// N calls, --concurrency of them in flight at any time (each caller one after the other).
async function runCall(opts) {
  const socket = await connect(opts);
  const data = text(opts);
  for (let i = 0; i < WARMUP; i++) await call(socket, opts, data);
  const times = [];
  let left = opts.n;
  const caller = async () => {
    while (left > 0) {
      left--;
      times.push(await call(socket, opts, data));
    }
  };
  const cpu0 = cpuSeconds();
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, caller));
  return {
    ...rates(opts, (performance.now() - start) / 1e3, cpuSeconds() - cpu0),
    p50_ms: percentile(times, 0.5),
    p90_ms: percentile(times, 0.9),
    p99_ms: percentile(times, 0.99),
  };
}

// "flood" {count, size}: N "num" events counted by an on("num") handler, then "flood_done".
async function runFlood(opts) {
  const socket = await connect(opts);
  let count = 0;
  let finish = null;
  socket.on("num", () => {
    count++;
  });
  socket.on("flood_done", (total) => finish(total));
  const flood = (n) =>
    new Promise((resolve, reject) => {
      count = 0;
      const timer = setTimeout(() => reject(new BenchError(`flood stalled at ${count}/${n} events`)), opts.timeout * 1000 + n);
      finish = (total) => {
        clearTimeout(timer);
        if (total !== n || count !== n) reject(new BenchError(`flood_done ${total} after ${count}/${n} events`));
        else resolve();
      };
      socket.emit("flood", { count: n, size: opts.size });
    });
  await flood(WARMUP);
  const cpu0 = cpuSeconds();
  const start = performance.now();
  await flood(opts.n);
  return rates(opts, (performance.now() - start) / 1e3, cpuSeconds() - cpu0);
}

main(
  {
    "sio-emit": runEmit,
    "sio-call": runCall,
    "sio-flood": runFlood,
    "sio-idle": (opts) => runIdle(opts, connect),
  },
  "node-sio",
);
