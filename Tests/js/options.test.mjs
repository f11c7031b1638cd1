import { test } from "node:test";
import assert from "node:assert/strict";
import { Philote } from "../../web/philote.js";
import { FakeClock, FakeNetwork, fakeWebSocket, flush } from "./fakes.mjs";

const { FakeWebSocket } = fakeWebSocket();
const base = { url: "ws://127.0.0.1:6380/", token: "t", WebSocket: FakeWebSocket, network: null };

test("construction validates every option and throws TypeError", () => {
  const bad = [
    undefined,
    "ws://x/",
    { ...base, extra: 1 },
    { ...base, url: undefined },
    { ...base, url: "http://127.0.0.1/" },
    { ...base, url: "ws://127.0.0.1/#frag" },
    { ...base, url: "not a url" },
    { ...base, token: undefined },
    { ...base, token: 42 },
    { ...base, history: "yes" },
    { ...base, backoff: 5 },
    { ...base, backoff: null },
    { ...base, backoff: { initial: -1 } },
    { ...base, backoff: { max: Infinity } },
    { ...base, backoff: { stable: "10" } },
    { ...base, backoff: { jitter: true } },
    { ...base, refreshMargin: NaN },
    { ...base, queueLimit: 1.5 },
    { ...base, queueLimit: -1 },
    { ...base, WebSocket: {} },
    { ...base, fetch: "fetch" },
    { ...base, random: 0.5 },
    { ...base, clock: { now: () => 0 } },
    { ...base, network: {} },
    { ...base, network: "online" },
  ];
  for (const options of bad) {
    assert.throws(() => new Philote(options), TypeError, JSON.stringify(options));
  }
});

test("Node 20 has no global WebSocket: the option is then required", { skip: typeof WebSocket === "function" }, () => {
  assert.throws(() => new Philote({ url: "ws://x/", token: "t", network: null }), /WebSocket/);
});

test("accepted options: partial backoff, null fetch and network, token function, wss with a query", () => {
  const clock = new FakeClock();
  const client = new Philote({
    url: "wss://example.org/ws?app=1", token: async () => "t", WebSocket: FakeWebSocket, backoff: { max: 1000 },
    fetch: null, network: new FakeNetwork(), clock, random: () => 0, history: false, refreshMargin: 0, queueLimit: 0,
  });
  assert.ok(client instanceof EventTarget);
  assert.equal(client.state, "closed");
  assert.deepEqual(client.positions, {});
});

test("connect() returns the client, is idempotent, and the first connection has no delay", async () => {
  const { FakeWebSocket: WS, sockets } = fakeWebSocket();
  const clock = new FakeClock();
  const client = new Philote({ ...base, WebSocket: WS, clock });
  assert.equal(client.connect(), client);
  assert.equal(client.connect(), client);
  await flush();
  assert.equal(sockets.length, 1);
  assert.deepEqual(clock.pending, []);
  client.close();
});

test("subscribe and publish check their arguments", () => {
  const client = new Philote(base);
  assert.throws(() => client.subscribe(1, () => {}), TypeError);
  assert.throws(() => client.subscribe("a", "handler"), TypeError);
  assert.throws(() => client.publish("a", { text: 1 }), TypeError);
  assert.throws(() => client.publish(undefined, "x"), TypeError);
});
