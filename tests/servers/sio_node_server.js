#!/usr/bin/env node
// Reference Node socket.io test server (socket.io pinned in tests/node/package.json).
//
//   node tests/servers/sio_node_server.js --port 0 [--ping-interval MS] [--ping-timeout MS]
//       [--transports polling,websocket]
//
// Prints "LISTENING <port>" on stdout once it accepts connections and exits with
// status 0 at once on SIGTERM/SIGINT, dropping every connection without a goodbye.
// Its behaviour mirrors sio_py_server.py and sio_flask_server.py; see the
// Socket.IO section of README.md.
"use strict";

const http = require("http");
const path = require("path");

const NODE_MODULES = path.join(__dirname, "..", "node", "node_modules");
let Server;
try {
  ({ Server } = require(path.join(NODE_MODULES, "socket.io")));
} catch (err) {
  process.stderr.write(
    `cannot load socket.io from ${NODE_MODULES}: ${err.message}\n` +
      "run `npm ci --prefix tests/node` first\n",
  );
  process.exit(2);
}

const HOST = "127.0.0.1";
const NAMESPACES = ["/", "/auth"];
const VALID_TRANSPORTS = ["polling", "websocket"];

// ------------------------------------------------------------------- CLI

function usage(message) {
  process.stderr.write(
    `sio_node_server.js: ${message}\n` +
      "usage: sio_node_server.js [--port N] [--ping-interval MS] [--ping-timeout MS] " +
      "[--transports polling,websocket]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, pingInterval: 25000, pingTimeout: 20000, transports: [...VALID_TRANSPORTS] };
  const intOption = (name, value) => {
    if (value === undefined || !/^\d+$/.test(value)) usage(`${name} needs an integer`);
    return parseInt(value, 10);
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
  return opts;
}

// ---------------------------------------------------------------- helpers

// socket.io gives {} when the client sent no auth; python-socketio gives None.
function authOf(socket) {
  const auth = socket.handshake.auth;
  return auth && typeof auth === "object" && Object.keys(auth).length ? auth : null;
}

function binaryValue() {
  return {
    bin: Buffer.from([0x00, 0x01, 0xff]),
    list: [Buffer.from("a"), 1, { deep: Buffer.from("b") }],
  };
}

// Split an event's arguments into (data, ack callback or null).
function splitAck(args) {
  if (args.length && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

// ----------------------------------------------------------- the server

function install(socket) {
  // Each handler returns the ack arguments (an array) or undefined; like
  // python-socketio, an event the client asked to acknowledge is acked with
  // those arguments, or with none.
  const handlers = {
    echo: (...args) => {
      socket.emit("echo", ...args);
      return args;
    },
    ack: (...args) => args,
    ask: (spec) => {
      const args = (spec && spec.args) || [];
      socket.emit(spec.event, ...args, (...ack) => socket.emit("asked", ack));
    },
    flood: (spec) => {
      const count = Number(spec.count);
      const payload = "x".repeat(Number(spec.size));
      for (let i = 0; i < count; i++) socket.emit("num", i, payload);
      socket.emit("flood_done", count);
    },
    binary: () => {
      socket.emit("binary", binaryValue());
      return [binaryValue()];
    },
    whoami: () => [
      {
        sid: socket.id,
        headers: { "x-test": socket.handshake.headers["x-test"] ?? null },
        query: { q: socket.handshake.query.q ?? null },
        auth: authOf(socket),
      },
    ],
    disconnect_me: () => {
      socket.disconnect(); // a DISCONNECT packet for this namespace only
    },
    close_me: () => {
      // DISCONNECT for every namespace of the connection, then closes the
      // Engine.IO session (see README.md for what goes on the wire)
      socket.disconnect(true);
    },
    emit_to_client_then_ack: () => {
      socket.emit("first");
      return ["done"];
    },
    // "noack" has no handler on purpose: it is never acknowledged.
  };
  for (const [event, handler] of Object.entries(handlers)) {
    socket.on(event, (...received) => {
      const [args, ack] = splitAck(received);
      const reply = handler(...args);
      if (ack) ack(...(reply || []));
    });
  }
  socket.emit("welcome", { sid: socket.id, auth: authOf(socket) });
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    transports: opts.transports,
    serveClient: false,
  });
  io.of("/auth").use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth && auth.token === "secret") next();
    else next(new Error("bad token")); // connect_error data {"message": "bad token"}
  });
  for (const name of NAMESPACES) io.of(name).on("connection", install);

  // A crash, as far as clients can tell: no goodbye of any kind.
  const shutdown = () => process.exit(0);
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  httpServer.listen(opts.port, HOST, () => {
    process.stdout.write(`LISTENING ${httpServer.address().port}\n`);
  });
}

main();
