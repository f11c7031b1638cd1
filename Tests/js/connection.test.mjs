import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, flush, harness, jwt } from "./fakes.mjs";

const strip = ({ type, ...rest }) => rest;

test("state events: connecting, open, reconnecting (with cause, attempt, delay), connecting, open, closed", async () => {
  const h = await connected();
  h.last.serverClose(1001, "server shutting down");
  await h.clock.advance(250); // random 0.5 * initial 500
  h.last.open();
  h.client.close();
  assert.deepEqual(h.of("state").map(strip), [
    { state: "connecting", previous: "closed" },
    { state: "open", previous: "connecting" },
    { state: "reconnecting", previous: "open", code: 1001, reason: "server shutting down", attempt: 0, delay: 250 },
    { state: "connecting", previous: "reconnecting" },
    { state: "open", previous: "connecting" },
    { state: "closed", previous: "open" },
  ]);
  assert.equal(h.client.state, "closed");
  assert.equal(h.of("error").length, 0, "1000/1001 are not errors");
});

test("back-off: full jitter up to min(max, initial * 2^n), waited exactly", async () => {
  const h = harness({ backoff: { initial: 100, max: 1000, stable: 5000 } });
  h.client.connect();
  await flush();
  h.probe = new Error("offline"); // pre-open failures take the ordinary back-off
  const caps = [100, 200, 400, 800, 1000, 1000];
  for (const [n, cap] of caps.entries()) {
    h.random = [0.999, 0, 0.25][n % 3];
    const sockets = h.sockets.length;
    h.last.fail();
    await flush();
    const event = h.of("state").at(-1);
    assert.equal(event.state, "reconnecting");
    assert.equal(event.attempt, n);
    assert.equal(event.delay, h.random * cap);
    assert.ok(event.delay >= 0 && event.delay < cap);
    if (event.delay > 0) {
      await h.clock.advance(event.delay - 1);
      assert.equal(h.sockets.length, sockets, `attempt ${n} came early`);
      await h.clock.advance(1);
    } else {
      await h.clock.advance(0);
    }
    assert.equal(h.sockets.length, sockets + 1, `attempt ${n} did not come`);
  }
  h.client.close();
});

test("back-off: the attempt counter resets once a connection stayed open `stable` ms, not before", async () => {
  const h = harness({ backoff: { initial: 100, max: 10000, stable: 5000 } });
  h.random = 1 - 2 ** -20;
  h.client.connect();
  await flush();
  for (let n = 0; n < 3; n++) {
    h.last.fail();
    await flush();
    await h.clock.advance(h.of("state").at(-1).delay);
  }
  h.last.open();
  await h.clock.advance(4999);
  h.last.serverClose(1011, "internal error");
  assert.equal(h.of("state").at(-1).attempt, 3, "open for less than stable: the count goes on");
  await h.clock.advance(h.of("state").at(-1).delay);
  h.last.open();
  await h.clock.advance(5000);
  h.last.serverClose(1000);
  const event = h.of("state").at(-1);
  assert.equal(event.attempt, 0);
  assert.ok(event.delay < 100);
  h.client.close();
});

test("URL: auth percent-encoded, an existing query kept", async () => {
  for (const [url, prefix] of [
    ["ws://h:1/", "ws://h:1/?auth="],
    ["wss://h/path?app=x", "wss://h/path?app=x&auth="],
    ["ws://h/?", "ws://h/?auth="],
    ["ws://h/?a=1&", "ws://h/?a=1&auth="],
  ]) {
    const h = harness({ url, token: "a+b/c=", history: false });
    h.client.connect();
    await flush();
    assert.equal(h.last.url, `${prefix}a%2Bb%2Fc%3D`);
    h.client.close();
  }
});

test("since: one per subscribed channel the token reads, whole value percent-encoded, colons in names kept", async () => {
  const odd = "team:a/b c&d%";
  const h = harness({}, { read: ["room-1", odd, "room-3"] });
  h.client.subscribe("room-1", () => {});
  h.client.subscribe(odd, () => {});
  h.client.subscribe("not-readable", () => {});
  h.client.connect();
  await flush();
  const query = h.last.url.split("?")[1];
  assert.equal(query, `auth=${h.tokens[0]}&since=%3A%3Aroom-1&since=%3A%3Ateam%3Aa%2Fb%20c%26d%25`);
  assert.deepEqual(h.last.params.getAll("since"), ["::room-1", `::${odd}`]);

  h.last.open();
  h.last.receive({ channel: "room-1", recovery: "new", epoch: "3f9a0c21b7d4", offset: 41 });
  h.last.receive({ issuer: "u", channel: odd, data: "x", epoch: "00aa", offset: 7 });
  h.last.serverClose(1000);
  await h.clock.advance(h.of("state").at(-1).delay);
  assert.deepEqual(h.last.params.getAll("since"), ["3f9a0c21b7d4:41:room-1", `00aa:7:${odd}`]);
  assert.match(h.last.url, /&since=3f9a0c21b7d4%3A41%3Aroom-1&since=00aa%3A7%3Ateam%3Aa%2Fb%20c%26d%25$/);
  h.client.close();
});

test("since: none without a subscriber, with history off, or with a token that is not a JWT", async () => {
  const cases = [
    [{}, false],
    [{ history: false }, true],
    [{ token: "opaque-token" }, true],
  ];
  for (const [options, subscribe] of cases) {
    const h = harness(options);
    if (subscribe) h.client.subscribe("room-1", () => {});
    h.client.connect();
    await flush();
    assert.deepEqual(h.last.params.getAll("since"), [], JSON.stringify(options));
    h.client.close();
  }
  const h = harness();
  const unsubscribe = h.client.subscribe("room-1", () => {});
  unsubscribe();
  h.client.connect();
  await flush();
  assert.deepEqual(h.last.params.getAll("since"), []);
  h.client.close();
});

test("4001: a new token and a new connection at once, not counted as a back-off attempt", async () => {
  const h = await connected();
  h.last.serverClose(4001, "token expired");
  await flush();
  assert.equal(h.sockets.length, 2, "no timer was needed");
  assert.equal(h.tokens.length, 2);
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  const reconnecting = h.of("state").find((event) => event.state === "reconnecting");
  assert.deepEqual(strip(reconnecting), { state: "reconnecting", previous: "open", code: 4001, reason: "token expired", attempt: 0, delay: 0 });
  assert.equal(h.of("error").length, 0);
  h.last.open();
  h.last.serverClose(1000);
  assert.equal(h.of("state").at(-1).attempt, 0, "the 4001 did not use up attempt 0");
  h.client.close();
});

test("4001 with a string token: error kind auth, state closed, nothing pending", async () => {
  const h = await connected({ token: jwt({ read: [] }) });
  h.last.serverClose(4001, "token expired");
  await h.clock.advance(60000);
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "auth", message: "token expired", code: 4001 }]);
  assert.deepEqual(strip(h.of("state").at(-1)), { state: "closed", previous: "open", code: 4001, reason: "token expired" });
  assert.deepEqual(h.clock.pending, []);
  assert.equal(h.network.listeners, 0);
});

test("401 before open: probe /api/token, one retry at once with a new token, then error auth and closed", async () => {
  const h = harness({ url: "wss://chat.example:8443/some/path?x=1" });
  h.client.connect();
  await flush();
  h.probe = { status: 401, body: { error: "invalid signature" } };
  h.last.fail();
  await flush();
  assert.deepEqual(h.fetches, [`https://chat.example:8443/api/token?auth=${h.tokens[0]}`]);
  assert.equal(h.sockets.length, 2, "retried at once");
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  assert.deepEqual(h.clock.pending, []);
  h.last.fail();
  await flush();
  assert.equal(h.fetches.length, 2);
  assert.equal(h.sockets.length, 2);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "auth", message: "invalid signature", code: 1006 }]);
  assert.deepEqual(h.states(), ["connecting", "reconnecting", "connecting", "closed"]);
  assert.deepEqual(h.clock.pending, []);
  await h.clock.advance(120000);
  assert.equal(h.sockets.length, 2);
});

test("401 with a string token: closed at the first refusal; ws: probes over http:", async () => {
  const h = harness({ url: "ws://10.0.0.1:6380/", token: "expired.jwt.here" });
  h.client.connect();
  await flush();
  h.probe = { status: 401, body: { error: "token expired" } };
  h.last.fail();
  await flush();
  assert.deepEqual(h.fetches, ["http://10.0.0.1:6380/api/token?auth=expired.jwt.here"]);
  assert.deepEqual(h.of("error").map((event) => [event.kind, event.message]), [["auth", "token expired"]]);
  assert.equal(h.client.state, "closed");
  assert.equal(h.sockets.length, 1);
});

test("401 counts only in a row: a probe that says the token is fine resets it", async () => {
  const h = harness();
  h.client.connect();
  await flush();
  h.probe = { status: 401, body: { error: "token expired" } };
  h.last.fail();
  await flush();
  h.probe = { status: 200, body: {} };
  h.last.fail();
  await flush();
  assert.equal(h.of("state").at(-1).state, "reconnecting");
  await h.clock.advance(h.of("state").at(-1).delay);
  h.probe = { status: 401, body: {} };
  h.last.fail();
  await flush();
  assert.equal(h.sockets.length, 4, "a fresh 401 gets its one retry again");
  assert.equal(h.tokens.length, 3);
  assert.equal(h.of("error").length, 0);
  h.client.close();
});

test("probe failures and other statuses take the normal back-off; a hanging probe times out after 10 s", async () => {
  for (const probe of [new TypeError("fetch failed"), { status: 500, body: null }, { status: 403, body: {} }]) {
    const h = harness();
    h.client.connect();
    await flush();
    h.probe = probe;
    h.last.fail();
    await flush();
    assert.equal(h.of("state").at(-1).state, "reconnecting");
    assert.equal(h.of("state").at(-1).delay, 250);
    assert.equal(h.of("error").length, 0, "a failed attempt is not an error event");
    assert.equal(h.tokens.length, 1);
    h.client.close();
  }
  const h = harness();
  h.client.connect();
  await flush();
  h.probe = "hang";
  h.last.fail();
  await h.clock.advance(9999);
  assert.equal(h.client.state, "connecting");
  await h.clock.advance(1);
  assert.equal(h.client.state, "reconnecting");
  h.client.close();
});

test("fetch is called unbound, as a browser's window.fetch requires", async () => {
  const calls = [];
  const h = harness({
    fetch: function (url) {
      if (this !== undefined) throw new TypeError("Illegal invocation");
      calls.push(url);
      return Promise.resolve({ status: 401, json: async () => ({ error: "token expired" }) });
    },
  });
  h.client.connect();
  await flush();
  h.last.fail();
  await flush();
  assert.equal(calls.length, 1);
  assert.equal(h.sockets.length, 2, "the 401 was seen: a new token at once");
  h.client.close();
});

test("without fetch there is no probe: the normal back-off", async () => {
  const h = harness({ fetch: null });
  h.client.connect();
  await flush();
  h.last.fail();
  await flush();
  assert.equal(h.client.state, "reconnecting");
  h.client.close();
});

test("close codes 1008, 1009, 1002, 1007, 1011: error kind closed with code and reason, then back-off", async () => {
  for (const [code, reason] of [[1008, "slow consumer"], [1009, "message too big"], [1002, "protocol error"],
    [1007, "invalid UTF-8"], [1011, ""]]) {
    const h = await connected();
    h.last.serverClose(code, reason);
    assert.deepEqual(h.of("error").map(strip), [{ kind: "closed", message: reason || `connection closed with code ${code}`, code }]);
    assert.deepEqual(strip(h.of("state").at(-1)), { state: "reconnecting", previous: "open", code, reason, attempt: 0, delay: 250 });
    await h.clock.advance(250);
    assert.equal(h.sockets.length, 2);
    h.client.close();
  }
});

test("a throwing token function: error kind token, then back-off, then a working token", async () => {
  const h = harness();
  h.tokenError = new Error("login server down");
  h.client.connect();
  await flush();
  assert.equal(h.sockets.length, 0);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "token", message: "token function failed: login server down" }]);
  assert.equal(h.client.state, "reconnecting");
  h.tokenError = null;
  await h.clock.advance(250);
  assert.equal(h.sockets.length, 1);
  h.client.close();
});

test("a token function returning a non-string is a token error too", async () => {
  const h = harness({ token: () => 17 });
  h.client.connect();
  await flush();
  assert.equal(h.of("error")[0].kind, "token");
  h.client.close();
});

test("offline: a scheduled retry is cancelled, no attempt while offline, online connects at once", async () => {
  const h = await connected();
  h.last.serverClose(1006, "");
  assert.equal(h.clock.pending.length, 1);
  h.network.goOffline();
  assert.deepEqual(h.clock.pending, []);
  await h.clock.advance(600000);
  assert.equal(h.sockets.length, 1);
  h.network.goOnline();
  await flush();
  assert.equal(h.sockets.length, 2);
  assert.equal(h.client.state, "connecting");
  h.client.close();
});

test("offline: an open socket is left alone; a close while offline waits for online without a timer", async () => {
  const h = await connected();
  h.network.goOffline();
  assert.equal(h.last.readyState, 1);
  assert.equal(h.client.state, "open");
  h.last.serverClose(1006, "");
  assert.deepEqual(strip(h.of("state").at(-1)), { state: "reconnecting", previous: "open", code: 1006, reason: "" });
  assert.deepEqual(h.clock.pending.filter((timer) => timer.ms !== 10000), []);
  await h.clock.advance(600000);
  assert.equal(h.sockets.length, 1);
  h.network.goOnline();
  await flush();
  assert.equal(h.sockets.length, 2);
  h.client.close();
});

test("4001 while offline: reconnecting without a delay, the new connection waits for online", async () => {
  const h = await connected();
  h.network.goOffline();
  h.last.serverClose(4001, "token expired");
  await flush();
  assert.deepEqual(strip(h.of("state").at(-1)), { state: "reconnecting", previous: "open", code: 4001, reason: "token expired" });
  assert.equal(h.sockets.length, 1);
  h.network.goOnline();
  await flush();
  assert.equal(h.sockets.length, 2);
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  h.client.close();
});

test("network defaults to globalThis where it has addEventListener and navigator.onLine, read from navigator", async () => {
  const saved = Object.getOwnPropertyDescriptors(globalThis);
  const listeners = new Map();
  Object.defineProperty(globalThis, "navigator", { value: { onLine: false }, configurable: true, writable: true });
  globalThis.addEventListener = (type, fn) => listeners.set(type, fn);
  globalThis.removeEventListener = (type) => listeners.delete(type);
  try {
    const h = harness({ network: undefined });
    h.client.connect();
    await flush();
    assert.equal(h.sockets.length, 0, "navigator says offline");
    assert.deepEqual([...listeners.keys()].sort(), ["offline", "online"]);
    globalThis.navigator.onLine = true;
    listeners.get("online")(new Event("online"));
    await flush();
    assert.equal(h.sockets.length, 1);
    h.client.close();
    assert.equal(listeners.size, 0);
  } finally {
    for (const key of ["navigator", "addEventListener", "removeEventListener"]) {
      if (saved[key]) Object.defineProperty(globalThis, key, saved[key]);
      else delete globalThis[key];
    }
  }
});

test("offline at connect(): state connecting, the socket waits for online", async () => {
  const h = harness();
  h.network.onLine = false;
  h.client.connect();
  await flush();
  assert.equal(h.sockets.length, 0);
  assert.equal(h.client.state, "connecting");
  h.network.goOnline();
  await flush();
  assert.equal(h.sockets.length, 1);
  h.client.close();
});

test("going offline while the token is fetched: no socket until online", async () => {
  let release;
  const h = harness({ token: () => new Promise((resolve) => (release = resolve)) });
  h.client.connect();
  h.network.goOffline();
  release(jwt({ read: [] }));
  await flush();
  assert.equal(h.sockets.length, 0);
  h.network.goOnline();
  await flush();
  assert.equal(h.sockets.length, 1);
  h.client.close();
});

test("close(): code 1000, state closed, no reconnect, no timers, network listeners removed", async () => {
  const h = await connected();
  assert.equal(h.network.listeners, 2);
  const socket = h.last;
  h.client.close();
  assert.deepEqual(socket.closedWith, { code: 1000, reason: "" });
  assert.equal(h.client.state, "closed");
  assert.deepEqual(h.clock.pending, []);
  assert.equal(h.network.listeners, 0);
  await flush(); // the socket's own close event arrives now and must change nothing
  h.client.close();
  await h.clock.advance(600000);
  assert.equal(h.sockets.length, 1);
  assert.deepEqual(h.states(), ["connecting", "open", "closed"]);
  assert.equal(h.of("error").length, 0, "nothing queued, nothing to report");
});

test("close() while reconnecting, while the token is fetched, and while probing: nothing happens afterwards", async () => {
  let h = await connected();
  h.last.serverClose(1000);
  h.client.close();
  assert.deepEqual(h.clock.pending, []);
  await h.clock.advance(600000);
  assert.equal(h.sockets.length, 1);

  let release;
  let calls = 0;
  h = harness({ token: () => new Promise((resolve) => { calls++; release = resolve; }) });
  h.client.connect();
  h.client.close();
  release(jwt({ n: 1 }));
  await flush();
  assert.equal(h.sockets.length, 0);
  assert.deepEqual(h.states(), ["connecting", "closed"]);
  h.client.connect();
  assert.equal(calls, 2, "the token that arrived after close() is not kept");
  h.client.close();

  h = harness();
  h.client.connect();
  await flush();
  h.probe = "hang";
  h.last.fail();
  await flush();
  h.client.close();
  assert.deepEqual(h.clock.pending, [], "the probe timeout is cleared too");
  assert.deepEqual(h.states(), ["connecting", "closed"]);
});

test("close() from inside an event listener stops everything that listener interrupted", async () => {
  const h = await connected();
  h.client.addEventListener("error", () => h.client.close(), { once: true });
  h.last.serverClose(1008, "slow consumer");
  assert.deepEqual(h.clock.pending, []);
  assert.deepEqual(h.states(), ["connecting", "open", "closed"]);
  await h.clock.advance(600000);
  assert.equal(h.sockets.length, 1);
});

test("connect() after close() starts again, with a new token", async () => {
  const h = await connected();
  h.client.close();
  h.client.connect();
  await flush();
  assert.equal(h.sockets.length, 2);
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  h.last.open();
  assert.deepEqual(h.states(), ["connecting", "open", "closed", "connecting", "open"]);
  h.client.close();
});

test("socket callbacks never throw, whatever arrives, and stale sockets are ignored", async () => {
  const h = await connected();
  const old = h.last;
  assert.doesNotThrow(() => old.onmessage({ data: "not json" }));
  assert.doesNotThrow(() => old.onmessage({ data: "[1,2]" }));
  assert.doesNotThrow(() => old.onmessage({ data: null }));
  assert.doesNotThrow(() => old.onmessage({ data: {} }));
  assert.equal(h.of("error").filter((event) => event.kind === "server").length, 4);
  old.serverClose(1000);
  await h.clock.advance(250);
  const errors = h.events.length;
  assert.doesNotThrow(() => old.onmessage({ data: '{"issuer":"x","channel":"room-1","data":"late"}' }));
  assert.doesNotThrow(() => old.onopen({}));
  assert.doesNotThrow(() => old.onclose({ code: 1000, reason: "" }));
  assert.equal(h.events.length, errors, "a replaced socket's events are ignored");
  h.client.close();
});
