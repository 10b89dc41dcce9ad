// Interop scenarios: the official socket.io-client (npm) against a tete test server.
//
// Usage: node interop.mjs <url> <scenario> [websocket|polling|default]
//
// The server is the one tests/api/interop.rs starts: namespaces `/` and `/test`, where
// `message` is echoed as `message-back`, `message-with-ack` is acknowledged with its
// own arguments, `ask-client` makes the server ask the client `question` (with an ack)
// and report the answer as `client-answered`, `join`/`broadcast` use rooms,
// `disconnect-me` makes the server disconnect the socket, `seq`/`seq-report` and
// `burst` number messages to check their order, a socket that leaves is announced to
// the room `watchers` as `left` {id, reason}, and a CONNECT with an `auth.token` other
// than "letmein" is refused with "invalid token".
//
// Prints `PASS <scenario>` and exits 0, or prints `FAIL <scenario>: <why>` and exits 1.
// Every scenario is bounded: a watchdog fails it after SCENARIO_LIMIT_MS. The `restart`
// scenario prints `READY-FOR-RESTART` and expects the server to go away and come back.

import assert from "node:assert/strict";
import { io, Manager } from "socket.io-client";

const SCENARIO_LIMIT_MS = 20_000;
const STEP_MS = 5_000;

const [url, scenario, transportArg = "default"] = process.argv.slice(2);
if (!url || !scenario) {
  console.error("usage: node interop.mjs <url> <scenario> [websocket|polling|default]");
  process.exit(2);
}

const TRANSPORTS = {
  websocket: ["websocket"],
  polling: ["polling"],
  default: undefined,
};
if (!(transportArg in TRANSPORTS)) {
  console.error(`unknown transport ${transportArg}`);
  process.exit(2);
}
const transports = TRANSPORTS[transportArg];

/** Options for a fresh client connection of this run. */
function options(extra = {}) {
  const o = { forceNew: true, reconnection: false, timeout: STEP_MS, ...extra };
  if (transports) o.transports = transports;
  return o;
}

/** Resolves with the arguments of the next `event`, or rejects after `ms`. */
function next(emitter, event, ms = STEP_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    function handler(...args) {
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args);
    }
    emitter.on(event, handler);
  });
}

/** Rejects if `event` comes within `ms`. */
function silence(emitter, event, ms) {
  return new Promise((resolve, reject) => {
    const handler = (...args) => {
      clearTimeout(timer);
      reject(new Error(`unexpected '${event}': ${JSON.stringify(args)}`));
    };
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      resolve();
    }, ms);
    emitter.on(event, handler);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const opened = [];

/** Connects a client to `nsp` and waits for `connect`. */
async function connect(nsp = "/test", extra = {}) {
  const socket = io(url + nsp, options(extra));
  opened.push(socket);
  await Promise.race([
    next(socket, "connect"),
    next(socket, "connect_error").then(([err]) => {
      throw new Error(`connect_error: ${err.message}`);
    }),
  ]);
  return socket;
}

/** Emits with an acknowledgement and resolves with all of the ack's arguments. */
function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(STEP_MS).emit(event, ...args, (err, ...a) => (err ? reject(err) : resolve(a)));
  });
}

/** Emits and waits for the server's echo (`message-back`). */
async function echo(socket, ...args) {
  const back = next(socket, "message-back");
  socket.emit("message", ...args);
  return back;
}

/** Binary values compare as bytes, whatever their class (Buffer, Uint8Array…), and
 * never equal a non-binary value. */
function normalize(value) {
  if (value instanceof ArrayBuffer) return { bytes: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

function sameArgs(actual, expected, what) {
  assert.deepEqual(normalize(actual), normalize(expected), what);
}

function transportOf(socket) {
  return socket.io.engine.transport.name;
}

function expectTransport(socket) {
  if (transports) {
    assert.equal(transportOf(socket), transports[0], "transport in use");
  }
}

const JSON_ARGS = [
  ["hello"],
  [1, 2.5, -3, true, false, null],
  [{ a: 1, b: [1, "two", { c: null }] }],
  ["héllo wörld ✓ 😀 中文"],
  ["quotes \" and \\ and \n newlines and \u001e separators"],
  ["line\u2028and paragraph\u2029separators", "\u0000"],
  ["an emoji cut in half: \ud83d", "\ude00 and its other half"],
  [],
  [[], {}, ""],
];

const scenarios = {
  // Text events and acks over whichever transport was asked for.
  async echo() {
    const socket = await connect();
    expectTransport(socket);
    for (const args of JSON_ARGS) {
      sameArgs(await echo(socket, ...args), args, `echo of ${JSON.stringify(args)}`);
      sameArgs(await emitAck(socket, "message-with-ack", ...args), args, `ack of ${JSON.stringify(args)}`);
    }
    expectTransport(socket);
  },

  // Acknowledgements both ways: client→server and server→client.
  async acks() {
    const socket = await connect();
    const answer = await socket.timeout(STEP_MS).emitWithAck("message-with-ack", { n: 1 }, "x");
    sameArgs(answer, { n: 1 }, "client→server ack (first argument)");

    // Many acks in flight at once, each answered with its own arguments.
    const many = await Promise.all(
      Array.from({ length: 50 }, (_, i) => socket.timeout(STEP_MS).emitWithAck("message-with-ack", i)),
    );
    assert.deepEqual(many, Array.from({ length: 50 }, (_, i) => i), "50 concurrent acks");

    // Server→client: the server emits `question` and waits for our callback.
    socket.on("question", (q, callback) => {
      assert.equal(typeof callback, "function", "the server asked for an ack");
      callback({ youAsked: q, answer: 42 }, "second");
    });
    const reported = next(socket, "client-answered");
    socket.emit("ask-client", "what is the answer?");
    sameArgs(await reported, [{ youAsked: "what is the answer?", answer: 42 }, "second"], "server→client ack");

    // Server→client ack answered with binary.
    socket.off("question");
    socket.on("question", (q, callback) => callback(Buffer.from([9, 8, 7]), { q }));
    const binReported = next(socket, "client-answered");
    socket.emit("ask-client", "bytes please");
    sameArgs(await binReported, [Buffer.from([9, 8, 7]), { q: "bytes please" }], "server→client binary ack");

    // A server that asks and gets no answer gives up and says so.
    socket.off("question");
    socket.on("question", () => {});
    const gaveUp = next(socket, "client-answered-error");
    socket.emit("ask-client", "silence");
    const [why] = await gaveUp;
    assert.match(why, /acknowledgement/, "server-side ack timeout");
  },

  // Binary payloads both ways, alone and mixed with JSON, with and without ack.
  async binary() {
    const socket = await connect();
    expectTransport(socket);
    const big = Buffer.alloc(200_000, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    const cases = [
      [Buffer.from([1, 2, 3])],
      [Uint8Array.of(0, 255, 128, 10, 13, 0x1e)],
      [Buffer.alloc(0)],
      [new Uint8Array([4, 5, 6]).buffer],
      ["text first", Buffer.from("bytes"), 7],
      [{ file: Buffer.from("abc"), name: "a.txt", nested: { more: [Uint8Array.of(1), Uint8Array.of(2)] } }],
      [Buffer.from([1]), Buffer.from([2]), Buffer.from([3]), { four: Buffer.from([4]) }],
      [big],
    ];
    for (const args of cases) {
      const what = `binary case ${JSON.stringify(normalize(args)).slice(0, 80)}`;
      const back = await echo(socket, ...args);
      sameArgs(back, args, `echo of ${what}`);
      sameArgs(await emitAck(socket, "message-with-ack", ...args), args, `ack of ${what}`);
    }
    // Several binary events back to back: attachments must not mix between packets.
    const backs = [];
    socket.on("message-back", (...a) => backs.push(a));
    for (let i = 0; i < 20; i++) socket.emit("message", i, Buffer.from([i, i + 1]), { i });
    const deadline = Date.now() + STEP_MS;
    while (backs.length < 20 && Date.now() < deadline) await sleep(10);
    sameArgs(
      backs,
      Array.from({ length: 20 }, (_, i) => [i, Buffer.from([i, i + 1]), { i }]),
      "20 binary events in a row, in order",
    );
    expectTransport(socket);
  },

  // Default transports: polling first, then the upgrade to WebSocket, with numbered
  // messages flowing both ways around the upgrade; none lost, duplicated or reordered.
  // On a local server the upgrade would be over before the first event, so the
  // client's probe is held back until 100 messages have gone over polling.
  async upgrade() {
    const BEFORE = 100;
    const AFTER = 100;
    const BURST = 200;
    const socket = io(url + "/test", options({ autoConnect: false }));
    opened.push(socket);
    socket.connect();
    const engine = socket.io.engine;
    let releaseProbe;
    const probeAllowed = new Promise((resolve) => (releaseProbe = resolve));
    const probe = engine._probe.bind(engine);
    engine._probe = (name) => probeAllowed.then(() => probe(name));
    const upgraded = next(engine, "upgrade", 2 * STEP_MS);
    upgraded.catch(() => {}); // awaited later; a failure before then is reported there

    // Every fifth message carries bytes, so attachments cross the upgrade too.
    const withBytes = (n) => (n % 5 === 0 ? [n, Buffer.from([n % 256, 1, 2])] : [n]);
    const received = [];
    socket.on("seq-back", (...args) => received.push(args));
    const burst = [];
    socket.on("burst-item", (...args) => burst.push(args));
    await next(socket, "connect");
    assert.equal(transportOf(socket), "polling", "a default client starts with polling");

    const sentOn = { polling: 0, websocket: 0 };
    let sent = 0;
    const send = async () => {
      sentOn[transportOf(socket)] += 1;
      socket.emit("seq", ...withBytes(sent));
      sent += 1;
      if (sent % 4 === 0) await sleep(2);
    };
    while (sent < BEFORE) await send();
    // The server numbers its own messages while the upgrade happens.
    socket.emit("burst", BURST, 2);
    const burstStarted = Date.now() + STEP_MS;
    while (burst.length < 10 && Date.now() < burstStarted) await sleep(2);
    releaseProbe();
    let upgradedAt = null;
    upgraded.then(() => (upgradedAt = sent), () => {});
    while ((upgradedAt === null || sent < upgradedAt + AFTER) && sent < 5_000) await send();
    const [transport] = await upgraded;
    assert.equal(transport.name, "websocket", "upgraded to websocket");
    assert.equal(transportOf(socket), "websocket", "engine transport after the upgrade");
    assert.ok(sentOn.polling >= BEFORE && sentOn.websocket > 0, `sent on ${JSON.stringify(sentOn)}`);

    const deadline = Date.now() + STEP_MS;
    while ((received.length < sent || burst.length < BURST) && Date.now() < deadline) await sleep(10);
    const numbers = (n) => Array.from({ length: n }, (_, i) => i);
    sameArgs(received, numbers(sent).map(withBytes), "client→server→client numbered messages");
    const burstItem = (n) => (n % 5 === 0 ? [n, Buffer.alloc(3, n % 256)] : [n]);
    sameArgs(burst, numbers(BURST).map(burstItem), "server→client numbered messages");
    const report = await socket.timeout(STEP_MS).emitWithAck("seq-report");
    assert.deepEqual(report.received, numbers(sent), "the server got every message once, in order");
    const t = report.transports;
    assert.ok(t.polling > 0 && t.websocket > 0, `server saw seq over ${JSON.stringify(t)}`);
    const bt = report.burstTransports;
    assert.ok(bt.polling > 0 && bt.websocket > 0, `burst queued while on ${JSON.stringify(bt)}`);
    console.log(`client sent ${JSON.stringify(sentOn)}; server saw ${JSON.stringify(t)}; burst ${JSON.stringify(bt)}`);
    // After the upgrade everything still works, binary included.
    sameArgs(await echo(socket, "after", Buffer.from([1])), ["after", Buffer.from([1])], "echo after upgrade");
  },

  // Many clients at once, each with its own numbered messages and acks: nothing is
  // lost or crosses from one session to another.
  async crowd() {
    const CLIENTS = 30;
    const MESSAGES = 20;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect()));
    await Promise.all(
      clients.map(async (socket, c) => {
        const backs = [];
        socket.on("message-back", (who, n) => backs.push([who, n]));
        const acks = await Promise.all(
          Array.from({ length: MESSAGES }, (_, n) => {
            socket.emit("message", c, n);
            return socket.timeout(STEP_MS).emitWithAck("message-with-ack", [c, n]);
          }),
        );
        const expected = Array.from({ length: MESSAGES }, (_, n) => [c, n]);
        assert.deepEqual(acks, expected, `client ${c}'s acks`);
        const deadline = Date.now() + STEP_MS;
        while (backs.length < MESSAGES && Date.now() < deadline) await sleep(10);
        assert.deepEqual(backs, expected, `client ${c}'s echoes`);
      }),
    );
  },

  // Rooms: a broadcast to a room reaches its other members, not the sender, not others.
  async rooms() {
    const [a, b, c] = await Promise.all([connect(), connect(), connect()]);
    const main = await connect("/");
    for (const s of [a, b]) {
      assert.equal(await s.timeout(STEP_MS).emitWithAck("join", "room1"), "room1");
    }
    assert.equal(await main.timeout(STEP_MS).emitWithAck("join", "room1"), "room1");
    assert.equal(await c.timeout(STEP_MS).emitWithAck("join", "room2"), "room2");
    const atB = next(b, "broadcast");
    const quiet = [a, c, main].map((s) => silence(s, "broadcast", 300));
    assert.equal(await a.timeout(STEP_MS).emitWithAck("broadcast", "room1", { from: "a" }), true);
    sameArgs(await atB, [{ from: "a" }], "b got the broadcast");
    await Promise.all(quiet);
    const atA = next(a, "broadcast");
    const atB2 = next(b, "broadcast");
    assert.equal(await c.timeout(STEP_MS).emitWithAck("broadcast", "room1", "from c"), true);
    sameArgs(await atA, ["from c"], "a got c's broadcast");
    sameArgs(await atB2, ["from c"], "b got c's broadcast");
    // Leaving: a socket that disconnected is no longer in the room.
    b.disconnect();
    await sleep(100);
    const atA2 = next(a, "broadcast");
    assert.equal(await c.timeout(STEP_MS).emitWithAck("broadcast", "room1", "again"), true);
    sameArgs(await atA2, ["again"], "a still gets broadcasts");
  },

  // One connection, two namespaces (the client multiplexes them).
  async multiplex() {
    const manager = new Manager(url, options({ forceNew: undefined }));
    const main = manager.socket("/");
    const test = manager.socket("/test");
    opened.push(main, test);
    await Promise.all([next(main, "connect"), next(test, "connect")]);
    assert.notEqual(main.id, test.id, "a socket id per namespace");
    const [m, t] = await Promise.all([echo(main, "to main"), echo(test, "to test")]);
    sameArgs(m, ["to main"], "main namespace echo");
    sameArgs(t, ["to test"], "test namespace echo");
    // The server disconnects /test only: / keeps working on the same connection.
    const disconnected = next(test, "disconnect");
    test.emit("disconnect-me");
    const [reason] = await disconnected;
    assert.equal(reason, "io server disconnect");
    sameArgs(await echo(main, "still here"), ["still here"], "main namespace after /test left");
    assert.equal(manager.engine.readyState, "open", "the connection stays open");
    // Now the server disconnects / and closes the connection: the client is told why.
    const mainGone = next(main, "disconnect");
    const engineClosed = next(manager.engine, "close");
    main.emit("disconnect-me", true);
    assert.equal((await mainGone)[0], "io server disconnect");
    await engineClosed;
  },

  // Connect refusals: a bad auth token, an unknown namespace.
  async "auth-refused"() {
    const refused = io(url + "/test", options({ auth: { token: "wrong" } }));
    opened.push(refused);
    const [err] = await next(refused, "connect_error");
    assert.equal(err.message, "invalid token", "the refusal's message reaches the client");
    assert.deepEqual(err.data, { reason: "the token is not letmein" }, "the refusal's data");
    assert.equal(refused.connected, false);
    assert.equal(refused.active, false, "a refused socket does not retry by itself");

    const unknown = io(url + "/nowhere", options());
    opened.push(unknown);
    const [err2] = await next(unknown, "connect_error");
    assert.equal(err2.message, "Invalid namespace");

    const accepted = await connect("/test", { auth: { token: "letmein" } });
    sameArgs(await echo(accepted, "in"), ["in"], "an accepted client works");
  },

  // The server disconnects the socket: reason `io server disconnect`, no reconnection.
  async "server-disconnect"() {
    const socket = await connect("/test", { reconnection: true, reconnectionDelay: 50 });
    const disconnected = next(socket, "disconnect");
    socket.emit("disconnect-me");
    const [reason] = await disconnected;
    assert.equal(reason, "io server disconnect");
    assert.equal(socket.active, false, "no automatic reconnection after a server disconnect");
    await silence(socket, "connect", 500);
    // The client may come back by itself asking.
    socket.connect();
    await next(socket, "connect");
    sameArgs(await echo(socket, "back"), ["back"], "echo after a manual reconnect");
  },

  // The server's disconnect handler sees why each client left (it tells the room
  // `watchers`), and a server-side disconnect may close the whole connection.
  async "disconnect-reasons"() {
    const watcher = await connect();
    assert.equal(await watcher.timeout(STEP_MS).emitWithAck("join", "watchers"), "watchers");
    const leaves = [];
    watcher.on("left", (left) => leaves.push(left));
    const leaving = async (client, act) => {
      const before = leaves.length;
      const id = client.id;
      act(client);
      const deadline = Date.now() + STEP_MS;
      while (leaves.length === before && Date.now() < deadline) await sleep(5);
      assert.equal(leaves.length, before + 1, `one 'left' for ${id}`);
      assert.equal(leaves[before].id, id, "the socket that left");
      return leaves[before].reason;
    };

    const b = await connect();
    assert.equal(await leaving(b, (s) => s.disconnect()), "client namespace disconnect");

    const c = await connect();
    assert.equal(await leaving(c, (s) => s.io.engine.close()), "transport close");

    const d = await connect();
    const dGone = next(d, "disconnect");
    assert.equal(await leaving(d, (s) => s.emit("disconnect-me")), "server namespace disconnect");
    assert.equal((await dGone)[0], "io server disconnect");

    // Closing the connection too: the client must still hear "io server disconnect"
    // (once), not "transport close", or it would reconnect by itself.
    const e = await connect("/test", { reconnection: true, reconnectionDelay: 50 });
    const eReasons = [];
    e.on("disconnect", (reason) => eReasons.push(reason));
    assert.equal(await leaving(e, (s) => s.emit("disconnect-me", true)), "server namespace disconnect");
    await silence(e, "connect", 500);
    assert.deepEqual(eReasons, ["io server disconnect"], "the client's disconnect reasons");
    assert.equal(e.active, false, "no reconnection after a server disconnect");
  },

  // A message close to maxPayload goes and comes back whole.
  async large() {
    const socket = await connect();
    const maxPayload = socket.io.engine._maxPayload;
    assert.equal(maxPayload, 1_000_000, "maxPayload from the handshake");
    const text = "x".repeat(maxPayload - 100);
    sameArgs(await echo(socket, text), [text], "a string of maxPayload - 100 bytes");
    // Two such messages at once: a polling client must split them into two requests.
    const backs = [];
    socket.on("message-back", (t) => backs.push(t.length));
    socket.emit("message", text);
    socket.emit("message", text.slice(1));
    const deadline = Date.now() + STEP_MS;
    while (backs.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(backs, [text.length, text.length - 1], "two large messages in a row");
    // Polling carries binary as base64: 4 characters for every 3 bytes.
    const room = transportOf(socket) === "polling" ? Math.floor((maxPayload * 3) / 4) : maxPayload;
    const bytes = Buffer.alloc(room - 200, 7);
    sameArgs(await echo(socket, bytes), [bytes], `binary of ${bytes.length} bytes`);
  },

  // A message over maxPayload ends the connection (the server does not buffer it).
  async "too-large"() {
    const socket = await connect();
    const disconnected = next(socket, "disconnect");
    socket.emit("message", "x".repeat(1_100_000));
    const [reason] = await disconnected;
    assert.match(reason, /^transport (close|error)$/, `disconnect reason ${reason}`);
  },

  // The connection stays up across many heartbeats (the server pings often here).
  async heartbeat() {
    const socket = await connect();
    let pings = 0;
    socket.io.engine.on("ping", () => (pings += 1));
    await silence(socket, "disconnect", 1_600);
    assert.ok(pings >= 3, `at least 3 pings in 1.6 s, got ${pings}`);
    sameArgs(await echo(socket, "alive"), ["alive"], "echo after heartbeats");
    expectTransport(socket);
  },

  // tete goes away and comes back on the same port: the client reconnects by itself.
  async restart() {
    const socket = await connect("/test", {
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      reconnectionAttempts: 100,
    });
    sameArgs(await echo(socket, "before"), ["before"], "echo before the restart");
    const firstId = socket.id;
    const disconnected = next(socket, "disconnect", 10_000);
    const reconnected = next(socket.io, "reconnect", 15_000);
    const connectedAgain = disconnected.then(() => next(socket, "connect", 15_000));
    console.log("READY-FOR-RESTART");
    const [reason] = await disconnected;
    console.log(`disconnected: ${reason}`);
    assert.notEqual(reason, "io server disconnect", "a restart is not a deliberate disconnect");
    const [attempts] = await reconnected;
    await connectedAgain;
    console.log(`reconnected after ${attempts} attempt(s)`);
    assert.notEqual(socket.id, firstId, "a new session after the restart");
    expectTransport(socket);
    sameArgs(await echo(socket, "after"), ["after"], "echo after the restart");
    const acked = await socket.timeout(STEP_MS).emitWithAck("message-with-ack", "ack after");
    assert.equal(acked, "ack after");
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.log(`FAIL ${scenario}: did not finish within ${SCENARIO_LIMIT_MS} ms`);
  process.exit(1);
}, SCENARIO_LIMIT_MS);

try {
  await run();
  console.log(`PASS ${scenario}`);
  process.exitCode = 0;
} catch (e) {
  console.log(`FAIL ${scenario}: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  for (const s of opened) s.disconnect();
  // Do not wait for lingering timers or half-closed sockets.
  setTimeout(() => process.exit(process.exitCode), 50);
}
