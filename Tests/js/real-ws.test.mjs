// The client on Node's real `ws` (Debian's node-ws) and real fetch, against a small stand-in for the server:
// upgrade refused with 401 for unknown tokens, GET /api/token, recovery answers, positioned messages, 4001.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Philote } from "../../web/philote.js";
import { jwt } from "./fakes.mjs";

const require = createRequire(import.meta.url);
const WebSocket = require("/usr/share/nodejs/ws");

/**
 * Resolves with the detail of the first `type` event that satisfies `accept`. The deadline only turns a missing
 * event into a failure (so that `finally` stops the server); it never decides what happens when.
 */
function next(target, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Error(`no "${type}" event within 5 s`));
    }, 5000);
    const listener = (event) => {
      if (!accept(event.detail)) return;
      clearTimeout(timer);
      target.removeEventListener(type, listener);
      resolve(event.detail);
    };
    target.addEventListener(type, listener);
  });
}

function startServer() {
  const valid = new Set();
  const connections = [];
  const history = new Map(); // channel -> offset
  const EPOCH = "0a1b2c3d4e5f";
  const http = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const ok = url.pathname === "/api/token" && valid.has(url.searchParams.get("auth"));
    res.writeHead(ok ? 200 : 401, { "content-type": "application/json", "access-control-allow-origin": "*" });
    res.end(JSON.stringify(ok ? { exp: null, read: ["room-1"], write: ["room-1"] } : { error: "invalid signature" }));
  });
  const wss = new WebSocket.WebSocketServer({
    server: http,
    verifyClient: (info, done) => done(valid.has(new URL(info.req.url, "http://x").searchParams.get("auth")), 401),
  });
  wss.on("connection", (ws, req) => {
    const params = new URL(req.url, "http://x").searchParams;
    const conn = { ws, params, issuer: `issuer-${connections.length}`, positioned: new Set() };
    connections.push(conn);
    for (const since of params.getAll("since")) {
      const [epoch, offset, channel] = [...since.split(":").slice(0, 2), since.split(":").slice(2).join(":")];
      conn.positioned.add(channel);
      const now = history.get(channel) ?? 0;
      const answer = { channel, recovery: epoch === "" ? "new" : epoch === EPOCH && Number(offset) <= now ? "ok" : "failed" };
      ws.send(JSON.stringify(now ? { ...answer, epoch: EPOCH, offset: now } : { ...answer, offset: 0 }) + "\n");
    }
    ws.on("message", (raw) => {
      const msg = JSON.parse(raw.toString());
      if ("auth" in msg) return ws.send('{"auth":"ok"}\n');
      const offset = (history.get(msg.channel) ?? 0) + 1;
      history.set(msg.channel, offset);
      for (const other of connections) {
        if (other === conn || other.ws.readyState !== WebSocket.OPEN) continue;
        const frame = { issuer: conn.issuer, channel: msg.channel, data: msg.data };
        other.ws.send(JSON.stringify(other.positioned.has(msg.channel) ? { ...frame, epoch: EPOCH, offset } : frame) + "\n");
      }
    });
  });
  return new Promise((resolve) => http.listen(0, "127.0.0.1", () => resolve({
    port: http.address().port, valid, connections, EPOCH,
    stop: () => new Promise((done) => { for (const c of wss.clients) c.terminate(); wss.close(); http.close(done); }),
  })));
}

test("real ws: 401 probe and new token, publish round trip with positions, 4001 and recovery", { timeout: 15000 }, async () => {
  const server = await startServer();
  const claims = { read: ["room-1"], write: ["room-1"] };
  const aToken = jwt({ ...claims, sub: "a" });
  server.valid.add(aToken);
  // B's first token is unknown to the server (a revoked one, say); every later one is good.
  const bTokens = [];
  const bToken = async () => {
    const token = jwt({ ...claims, sub: "b", n: bTokens.length });
    if (bTokens.length > 0) server.valid.add(token);
    bTokens.push(token);
    return token;
  };
  const url = `ws://127.0.0.1:${server.port}/`;
  const a = new Philote({ url, token: aToken, WebSocket, network: null });
  const b = new Philote({ url, token: bToken, WebSocket, network: null });
  const errors = [];
  for (const client of [a, b]) client.addEventListener("error", (event) => errors.push(event.detail));
  try {
    const received = [];
    b.subscribe("room-1", (data, message) => received.push(message));
    const bRecovered = next(b, "recovery");
    const aOpen = next(a, "state", (d) => d.state === "open");
    b.connect();
    a.connect();
    assert.deepEqual(await bRecovered, { channel: "room-1", outcome: "new", offset: 0 });
    assert.equal(bTokens.length, 2, "the refused first token was replaced after the probe");
    await aOpen;

    let got = next(b, "message");
    assert.equal(a.publish("room-1", "hello"), true);
    assert.deepEqual(await got, { issuer: "issuer-0", channel: "room-1", data: "hello", epoch: server.EPOCH, offset: 1 });
    assert.deepEqual(b.positions, { "room-1": { epoch: server.EPOCH, offset: 1 } });

    const bConn = server.connections.find((c) => c.params.get("auth") === bTokens[1]);
    const reopened = next(b, "state", (d) => d.state === "open");
    const reconnecting = next(b, "state", (d) => d.state === "reconnecting");
    bConn.ws.close(4001, "token expired");
    assert.deepEqual(await reconnecting, { state: "reconnecting", previous: "open", code: 4001, reason: "token expired", attempt: 0, delay: 0 });
    const recovered = next(b, "recovery");
    await reopened;
    assert.equal(bTokens.length, 3);
    assert.deepEqual(server.connections.at(-1).params.getAll("since"), [`${server.EPOCH}:1:room-1`]);
    assert.deepEqual(await recovered, { channel: "room-1", outcome: "ok", epoch: server.EPOCH, offset: 1 });

    got = next(b, "message");
    a.publish("room-1", "again");
    assert.equal((await got).offset, 2);
    assert.deepEqual(received.map((m) => m.data), ["hello", "again"]);

    const refreshed = next(b, "refresh");
    await b.refresh();
    assert.deepEqual(await refreshed, { exp: null });
    assert.deepEqual(errors, []);
  } finally {
    a.close();
    b.close();
    await server.stop();
  }
});
