import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, flush, harness } from "./fakes.mjs";

const strip = ({ type, ...rest }) => rest;
const EPOCH = "3f9a0c21b7d4";

test("messages: the message event sees all, subscribe handlers their channel; omitted keys mean empty", async () => {
  const h = await connected();
  const got = [];
  h.client.subscribe("room-1", (data, message) => got.push(["a", data, message]));
  h.client.subscribe("", (data, message) => got.push(["empty", data, message]));
  h.last.receive('{"issuer":"11111111-2222-4333-8444-555555555555","channel":"room-1","data":"hello"}\n');
  h.last.receive({ issuer: "u2", channel: "room-2", data: "elsewhere" });
  h.last.receive({ issuer: "u3", data: "no channel" });
  h.last.receive({ issuer: "u4", channel: "room-1" });
  assert.deepEqual(h.of("message").map(strip), [
    { channel: "room-1", data: "hello", issuer: "11111111-2222-4333-8444-555555555555" },
    { channel: "room-2", data: "elsewhere", issuer: "u2" },
    { channel: "", data: "no channel", issuer: "u3" },
    { channel: "room-1", data: "", issuer: "u4" },
  ]);
  assert.deepEqual(got.map(([who, data]) => [who, data]), [["a", "hello"], ["empty", "no channel"], ["a", ""]]);
  assert.deepEqual(got[0][2], { channel: "room-1", data: "hello", issuer: "11111111-2222-4333-8444-555555555555" });
  h.client.close();
});

test("binary frames are decoded as UTF-8 text", async () => {
  const h = await connected();
  h.last.onmessage({ data: new TextEncoder().encode('{"issuer":"u","channel":"room-1","data":"h\u00e9"}\n') });
  assert.equal(h.of("message")[0].data, "h\u00e9");
  h.client.close();
});

test("unsubscribe: that handler only, idempotent; the same function twice is two subscriptions", async () => {
  const h = await connected();
  const calls = [];
  const handler = (data) => calls.push(data);
  const first = h.client.subscribe("room-1", handler);
  h.client.subscribe("room-1", handler);
  h.last.receive({ issuer: "u", channel: "room-1", data: "1" });
  first();
  first();
  h.last.receive({ issuer: "u", channel: "room-1", data: "2" });
  assert.deepEqual(calls, ["1", "1", "2"]);
  h.client.close();
});

test("a handler unsubscribed by an earlier one is not called; a throwing handler is reported, not thrown", async () => {
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(err.message);
  try {
    const h = await connected();
    const calls = [];
    let second;
    h.client.subscribe("room-1", () => { calls.push("first"); second(); throw new Error("app bug"); });
    second = h.client.subscribe("room-1", () => calls.push("second"));
    h.client.subscribe("room-1", () => calls.push("third"));
    assert.doesNotThrow(() => h.last.receive({ issuer: "u", channel: "room-1", data: "x" }));
    assert.deepEqual(calls, ["first", "third"]);
    assert.deepEqual(reported, ["app bug"]);
    h.client.close();
  } finally {
    globalThis.reportError = saved;
  }
});

test("positions: set by positioned messages of subscribed channels; the getter returns a fresh copy", async () => {
  const h = await connected();
  h.client.subscribe("room-1", () => {});
  h.last.receive({ issuer: "u", channel: "room-1", data: "a", epoch: EPOCH, offset: 58 });
  h.last.receive({ issuer: "u", channel: "room-2", data: "b", epoch: EPOCH, offset: 3 });
  const positions = h.client.positions;
  assert.deepEqual(positions, { "room-1": { epoch: EPOCH, offset: 58 } });
  positions["room-1"].offset = 1;
  positions.other = { epoch: "x", offset: 1 };
  assert.deepEqual(h.client.positions, { "room-1": { epoch: EPOCH, offset: 58 } });
  assert.notEqual(h.client.positions, h.client.positions);
  assert.deepEqual(strip(h.of("message")[0]), { channel: "room-1", data: "a", issuer: "u", epoch: EPOCH, offset: 58 });
  h.client.close();
});

test("duplicates: same epoch and offset <= known are dropped; a new epoch starts over", async () => {
  const h = await connected();
  const got = [];
  h.client.subscribe("room-1", (data) => got.push(data));
  for (const [offset, epoch] of [[5, EPOCH], [6, EPOCH], [6, EPOCH], [4, EPOCH], [7, EPOCH], [1, "0123456789ab"], [2, "0123456789ab"]]) {
    h.last.receive({ issuer: "u", channel: "room-1", data: `${epoch}/${offset}`, epoch, offset });
  }
  assert.deepEqual(got, [`${EPOCH}/5`, `${EPOCH}/6`, `${EPOCH}/7`, "0123456789ab/1", "0123456789ab/2"]);
  assert.equal(h.of("message").length, 5, "dropped ones dispatch nothing");
  assert.deepEqual(h.client.positions, { "room-1": { epoch: "0123456789ab", offset: 2 } });
  h.client.close();
});

/** Connected a second time with `channels` subscribed: messages of those could have been missed meanwhile. */
async function reconnected(channels) {
  const h = await connected();
  for (const channel of channels) h.client.subscribe(channel, () => {});
  h.last.serverClose(1001);
  await h.clock.advance(250);
  h.last.open();
  await flush();
  return h;
}

test("recovery: new and failed set the answer's position, ok does not; the replay that follows moves it", async () => {
  const h = await reconnected(["room-1", "room-2", "room-3"]);
  h.last.receive({ channel: "room-1", recovery: "new", epoch: EPOCH, offset: 41 });
  h.last.receive({ channel: "room-2", recovery: "failed", reason: "offset too old", epoch: EPOCH, offset: 57 });
  h.last.receive({ channel: "room-3", recovery: "new", offset: 0 });
  assert.deepEqual(h.client.positions, {
    "room-1": { epoch: EPOCH, offset: 41 },
    "room-2": { epoch: EPOCH, offset: 57 },
  });
  h.last.receive({ channel: "room-1", recovery: "ok", epoch: EPOCH, offset: 63 });
  assert.deepEqual(h.client.positions["room-1"], { epoch: EPOCH, offset: 41 });
  h.last.receive({ issuer: "u", channel: "room-1", data: "42", epoch: EPOCH, offset: 42 });
  assert.deepEqual(h.client.positions["room-1"], { epoch: EPOCH, offset: 42 });
  assert.deepEqual(h.of("recovery").map(strip), [
    { channel: "room-1", outcome: "new", epoch: EPOCH, offset: 41 },
    { channel: "room-2", outcome: "failed", reason: "offset too old", epoch: EPOCH, offset: 57 },
    { channel: "room-3", outcome: "new", offset: 0 },
    { channel: "room-1", outcome: "ok", epoch: EPOCH, offset: 63 },
  ]);
  h.client.close();
});

test("recovery failed without a position (history off, channel emptied) forgets the old one: :: next time", async () => {
  const h = await reconnected(["room-1", "room-2"]);
  h.last.receive({ issuer: "u", channel: "room-1", data: "a", epoch: EPOCH, offset: 9 });
  h.last.receive({ issuer: "u", channel: "room-2", data: "a", epoch: EPOCH, offset: 9 });
  h.last.receive({ channel: "room-1", recovery: "failed", reason: "history off" });
  h.last.receive({ channel: "room-2", recovery: "failed", reason: "epoch changed", offset: 0 });
  assert.deepEqual(h.client.positions, {});
  assert.deepEqual(strip(h.of("recovery")[0]), { channel: "room-1", outcome: "failed", reason: "history off" });
  h.last.serverClose(1000);
  await h.clock.advance(250);
  assert.deepEqual(h.last.params.getAll("since"), ["::room-1", "::room-2"]);
  h.client.close();
});

test("unsubscribing a channel's last handler forgets its position", async () => {
  const h = await connected();
  const off = h.client.subscribe("room-1", () => {});
  h.last.receive({ issuer: "u", channel: "room-1", data: "a", epoch: EPOCH, offset: 9 });
  off();
  assert.deepEqual(h.client.positions, {});
  h.client.close();
});

test("error replies route to error events of kind server, with the channel when given", async () => {
  const h = await connected();
  h.last.receive({ error: "write not permitted", channel: "room-9" });
  h.last.receive({ error: "invalid JSON" });
  h.last.receive({ error: "read not permitted", channel: "" });
  h.last.receive({ error: "invalid since: channel given twice", channel: "room-1", recovery: "x" });
  assert.deepEqual(h.of("error").map(strip), [
    { kind: "server", message: "write not permitted", channel: "room-9" },
    { kind: "server", message: "invalid JSON" },
    { kind: "server", message: "read not permitted", channel: "" },
    { kind: "server", message: "invalid since: channel given twice", channel: "room-1" },
  ]);
  assert.equal(h.of("recovery").length + h.of("message").length, 0);
  assert.equal(h.client.state, "open");
  h.client.close();
});

test("publish while open is sent at once as {channel, data}", async () => {
  const h = await connected();
  assert.equal(h.client.publish("room-1", "hi"), true);
  assert.deepEqual(h.last.frames, [{ channel: "room-1", data: "hi" }]);
  h.client.close();
});

test("queue: publishes while not open are flushed in order on open, before an open listener's publish", async () => {
  const h = harness();
  assert.equal(h.client.publish("room-1", "before connect"), true);
  h.client.connect();
  await flush();
  h.client.publish("room-2", "while connecting");
  h.client.addEventListener("state", (event) => {
    if (event.detail.state === "open") h.client.publish("room-1", "from the open listener");
  });
  assert.deepEqual(h.last.sent, []);
  h.last.open();
  h.client.publish("room-1", "after open");
  assert.deepEqual(h.last.frames.map((frame) => frame.data),
    ["before connect", "while connecting", "from the open listener", "after open"]);

  h.last.serverClose(1000);
  h.client.publish("room-1", "while reconnecting");
  await h.clock.advance(250);
  h.last.open();
  assert.deepEqual(h.last.frames.map((frame) => frame.data), ["while reconnecting", "from the open listener"]);
  h.client.close();
});

test("queue bound: past queueLimit publish returns false with a queue-full error; nothing queued is lost", async () => {
  const h = harness({ queueLimit: 2 });
  h.client.connect();
  await flush();
  assert.equal(h.client.publish("room-1", "1"), true);
  assert.equal(h.client.publish("room-1", "2"), true);
  assert.equal(h.client.publish("room-2", "3"), false);
  assert.deepEqual(h.of("error").map(({ kind, channel }) => [kind, channel]), [["queue-full", "room-2"]]);
  h.last.open();
  assert.deepEqual(h.last.frames, [{ channel: "room-1", data: "1" }, { channel: "room-1", data: "2" }]);
  assert.equal(h.client.publish("room-2", "3"), true, "the queue is empty again");
  h.client.close();
});

test("queueLimit 0: nothing waits, every publish while not open is refused", async () => {
  const h = harness({ queueLimit: 0 });
  assert.equal(h.client.publish("room-1", "x"), false);
  assert.equal(h.of("error")[0].kind, "queue-full");
});

test("close() reports queued publishes as dropped in one error event of kind closed", async () => {
  const h = harness();
  h.client.connect();
  await flush();
  h.client.publish("room-1", "a");
  h.client.publish("room-2", "b");
  h.client.close();
  const errors = h.of("error");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].kind, "closed");
  assert.deepEqual(errors[0].dropped, [{ channel: "room-1", data: "a" }, { channel: "room-2", data: "b" }]);
  assert.match(errors[0].message, /2 queued/);
  assert.deepEqual(h.states(), ["connecting", "closed"]);
  h.client.connect();
  await flush();
  h.last.open();
  assert.deepEqual(h.last.sent, [], "dropped means dropped");
  h.client.close();
});

test("a failed answer on a channel nothing can have been missed on yet is told as new, with the reason", async () => {
  const h = await connected();
  h.client.subscribe("room-1", () => {});
  h.last.receive({ channel: "room-1", recovery: "failed", reason: "history off" });
  h.last.serverClose(1001);
  await h.clock.advance(250);
  h.last.open();
  await flush();
  // Subscribed during the first connection: the second one may have missed messages, and says so.
  h.client.subscribe("room-2", () => {});
  h.last.receive({ channel: "room-1", recovery: "failed", reason: "history off" });
  h.last.receive({ channel: "room-2", recovery: "failed", reason: "history unavailable", offset: 0 });
  assert.deepEqual(h.of("recovery").map(strip), [
    { channel: "room-1", outcome: "new", reason: "history off" },
    { channel: "room-1", outcome: "failed", reason: "history off" },
    { channel: "room-2", outcome: "new", reason: "history unavailable", offset: 0 },
  ]);
  h.client.close();
});
