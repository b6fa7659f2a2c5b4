#!/usr/bin/env node
// Reference Node engine.io test server (engine.io pinned in tests/node/package.json).
//
//   node tests/servers/node_server.js --port 0 [--ping-interval MS] [--ping-timeout MS]
//       [--transports polling,websocket] [--no-upgrades] [--max-payload BYTES]
//       [--tls-cert PEM --tls-key PEM [--client-ca PEM]]
//
// Prints "LISTENING <port>" on stdout once it accepts connections and exits with
// status 0 on SIGTERM. Its behaviour mirrors py_server.py exactly; see README.md.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");

const NODE_MODULES = path.join(__dirname, "..", "node", "node_modules");
let engineio;
try {
  engineio = require(path.join(NODE_MODULES, "engine.io"));
} catch (err) {
  process.stderr.write(
    `cannot load engine.io from ${NODE_MODULES}: ${err.message}\n` +
      "run `npm ci --prefix tests/node` first\n",
  );
  process.exit(2);
}

const HOST = "127.0.0.1";
const PATH = "/engine.io/";
const VALID_TRANSPORTS = ["polling", "websocket"];

// ------------------------------------------------------------------- CLI

function usage(message) {
  process.stderr.write(
    `node_server.js: ${message}\n` +
      "usage: node_server.js [--port N] [--ping-interval MS] [--ping-timeout MS] " +
      "[--transports polling,websocket] [--no-upgrades] [--max-payload BYTES] " +
      "[--tls-cert PEM --tls-key PEM [--client-ca PEM]]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    port: 0,
    pingInterval: 25000,
    pingTimeout: 20000,
    transports: [...VALID_TRANSPORTS],
    upgrades: true,
    maxPayload: 1000000,
    tlsCert: null,
    tlsKey: null,
    clientCa: null,
  };
  const intOption = (name, value) => {
    if (value === undefined || !/^\d+$/.test(value)) usage(`${name} needs an integer`);
    return parseInt(value, 10);
  };
  const pathOption = (name, value) => {
    if (!value) usage(`${name} needs a file name`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case "--port":
        opts.port = intOption(arg, argv[++i]);
        break;
      case "--ping-interval":
        opts.pingInterval = intOption(arg, argv[++i]);
        break;
      case "--ping-timeout":
        opts.pingTimeout = intOption(arg, argv[++i]);
        break;
      case "--max-payload":
        opts.maxPayload = intOption(arg, argv[++i]);
        break;
      case "--no-upgrades":
        opts.upgrades = false;
        break;
      case "--tls-cert":
        opts.tlsCert = pathOption(arg, argv[++i]);
        break;
      case "--tls-key":
        opts.tlsKey = pathOption(arg, argv[++i]);
        break;
      case "--client-ca":
        opts.clientCa = pathOption(arg, argv[++i]);
        break;
      case "--transports": {
        const value = argv[++i] || "";
        const transports = value
          .split(",")
          .map((t) => t.trim())
          .filter((t) => t);
        if (!transports.length || transports.some((t) => !VALID_TRANSPORTS.includes(t))) {
          usage(`invalid transports: ${value}`);
        }
        opts.transports = transports;
        break;
      }
      default:
        usage(`unknown argument: ${arg}`);
    }
  }
  if ((opts.tlsCert === null) !== (opts.tlsKey === null)) {
    usage("--tls-cert and --tls-key go together");
  }
  if (opts.clientCa !== null && opts.tlsCert === null) {
    usage("--client-ca needs --tls-cert and --tls-key");
  }
  return opts;
}

// ---------------------------------------------------------------- helpers

function queryOf(req) {
  return new URL(req.url, "http://localhost").searchParams;
}

function isEngineRequest(req) {
  return req.url.startsWith(PATH);
}

function headersOf(req) {
  // node already lowercases header names; copy into a plain object
  return Object.assign({}, req.headers);
}

function stickyCookie() {
  return `sticky=s-${crypto.randomBytes(8).toString("hex")}; Path=/`;
}

// Plain HTTP, or HTTPS/WSS with --tls-cert/--tls-key (mutual TLS with --client-ca).
function createServer(opts, handler) {
  if (opts.tlsCert === null) return http.createServer(handler);
  const tls = { cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) };
  if (opts.clientCa !== null) {
    tls.ca = fs.readFileSync(opts.clientCa);
    tls.requestCert = true;
    tls.rejectUnauthorized = true;
  }
  return https.createServer(tls, handler);
}

// ----------------------------------------------------------- the server

function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Anything outside PATH gets a plain 404 (engine.io hands such requests to
  // the listeners that existed before attach()).
  const httpServer = createServer(opts, (req, res) => {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("Not Found");
  });
  const engine = engineio.attach(httpServer, {
    path: PATH,
    destroyUpgrade: false, // we answer non-engine.io upgrades with 404 below
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    transports: opts.transports,
    allowUpgrades: opts.upgrades,
    maxHttpBufferSize: opts.maxPayload,
    // Handshake query deny=1 is refused: 403 {"code":4,"message":"Forbidden"} on
    // polling, 400 with the plain-text body "Forbidden" on a WebSocket handshake.
    allowRequest: (req, callback) => {
      if (queryOf(req).get("deny") === "1") callback("Forbidden", false);
      else callback(null, true);
    },
  });

  const pollingHeaders = new Map(); // sid -> headers of the latest polling request
  const websocketHeaders = new Map(); // sid -> headers of the websocket handshake
  const counts = new Map(); // sid -> number of non-command messages received
  // sid -> {messages, closed}; never cleared, so it survives the session (cmd:stats)
  const stats = new Map();
  // sid -> number of its long-poll GETs the server holds now, from the request's arrival to
  // its response's end (cmd:polls)
  const polls = new Map();

  // Every successful handshake response (polling or websocket) gets the cookie.
  engine.on("initial_headers", (headers) => {
    headers["Set-Cookie"] = stickyCookie();
  });

  // Registered after attach(): engine.io only captures the listeners that
  // existed before, ours just observe every request.
  httpServer.on("request", (req, res) => {
    if (!isEngineRequest(req)) return;
    const query = queryOf(req);
    const sid = query.get("sid");
    if (sid && query.get("transport") === "polling" && engine.clients[sid]) {
      pollingHeaders.set(sid, headersOf(req));
    }
    if (sid && query.get("transport") === "polling" && req.method === "GET") {
      polls.set(sid, (polls.get(sid) || 0) + 1);
      res.on("close", () => polls.set(sid, polls.get(sid) - 1));
    }
  });
  if (opts.transports.includes("websocket")) {
    // Only when engine.io itself listens for upgrades. Without any 'upgrade'
    // listener node hands WebSocket requests to the 'request' listeners, so
    // engine.io answers them with HTTP 400 "Transport unknown".
    httpServer.on("upgrade", (req, socket) => {
      if (!isEngineRequest(req)) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const sid = queryOf(req).get("sid");
      if (sid && engine.clients[sid]) websocketHeaders.set(sid, headersOf(req));
    });
  }

  engine.on("connection", (socket) => {
    const sid = socket.id;
    counts.set(sid, 0);
    stats.set(sid, { messages: 0, closed: false });
    const req = socket.request;
    if (socket.transport.name === "websocket") {
      websocketHeaders.set(sid, headersOf(req));
    } else {
      pollingHeaders.set(sid, headersOf(req));
    }
    const greet = queryOf(req).get("greet");
    if (greet !== null) socket.send(greet);

    const count = () => {
      counts.set(sid, (counts.get(sid) || 0) + 1);
      stats.get(sid).messages += 1;
    };

    socket.on("message", (data) => {
      if (typeof data !== "string" || !data.startsWith("cmd:")) {
        count();
        socket.send(data);
      } else {
        runCommand(socket, data);
      }
    });

    socket.on("close", () => {
      stats.get(sid).closed = true;
      counts.delete(sid);
      pollingHeaders.delete(sid);
      websocketHeaders.delete(sid);
    });
  });

  function runCommand(socket, text) {
    const sid = socket.id;
    const parts = text.split(":");
    const command = parts.length > 1 ? parts[1] : "";
    const isInt = (s) => /^\d+$/.test(s);
    if (command === "stats" && parts.length > 2 && parts[2] !== "") {
      const target = text.slice("cmd:stats:".length);
      socket.send(JSON.stringify(stats.get(target) || { messages: 0, closed: false }));
    } else if (command === "polls" && parts.length > 2 && parts[2] !== "") {
      socket.send(String(polls.get(text.slice("cmd:polls:".length)) || 0));
    } else if (command === "push" && parts.length === 3 && isInt(parts[2])) {
      const n = parseInt(parts[2], 10);
      for (let i = 0; i < n; i++) socket.send(`push ${i}`);
    } else if (
      command === "pushbin" &&
      parts.length === 4 &&
      isInt(parts[2]) &&
      isInt(parts[3]) &&
      parseInt(parts[3], 10) >= 4
    ) {
      const n = parseInt(parts[2], 10);
      const size = parseInt(parts[3], 10);
      for (let i = 0; i < n; i++) {
        const buf = Buffer.alloc(size);
        buf.writeUInt32BE(i, 0);
        socket.send(buf);
      }
    } else if (command === "close" && parts.length === 2) {
      socket.close();
    } else if (command === "headers" && parts.length === 2) {
      socket.send(
        JSON.stringify({
          polling: pollingHeaders.get(sid) || null,
          websocket: websocketHeaders.get(sid) || null,
        }),
      );
    } else if (command === "transport" && parts.length === 2) {
      socket.send(socket.transport.name);
    } else if (command === "count" && parts.length === 2) {
      socket.send(String(counts.get(sid) || 0));
    } else {
      socket.send(`unknown command: ${text}`);
    }
  }

  const shutdown = () => {
    httpServer.close();
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  httpServer.listen(opts.port, HOST, () => {
    process.stdout.write(`LISTENING ${httpServer.address().port}\n`);
  });
}

main();
