import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, flush, harness, jwt } from "./fakes.mjs";

const strip = ({ type, ...rest }) => rest;
const authFrames = (socket) => socket.frames.filter((frame) => "auth" in frame);

/** A connected client whose n-th token expires `lifetimes[n-1]` seconds after it is handed out (the last repeats). */
async function withLifetimes(lifetimes, options) {
  const h = harness(options);
  h.claims = (n) => ({ read: ["room-1"], exp: Math.floor(h.clock.now() / 1000) + lifetimes[Math.min(n, lifetimes.length) - 1] });
  h.client.connect();
  await flush();
  h.last.open();
  return h;
}

const exp = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp;

test("refresh is scheduled refreshMargin before exp, sent as {auth}, and re-scheduled from the new token", async () => {
  const h = await withLifetimes([120, 300]);
  const socket = h.last;
  await h.clock.advance(89999);
  assert.deepEqual(authFrames(socket), []);
  await h.clock.advance(1);
  assert.equal(h.tokens.length, 2);
  assert.deepEqual(socket.sent.map((frame) => JSON.parse(frame)), [{ auth: h.tokens[1] }]);
  socket.receive({ auth: "ok", exp: exp(h.tokens[1]) });
  assert.deepEqual(h.of("refresh").map(strip), [{ exp: exp(h.tokens[1]) }]);
  await h.clock.advance(269999); // 300 s from the new token, less the 30 s margin
  assert.equal(authFrames(socket).length, 1);
  await h.clock.advance(1);
  assert.equal(authFrames(socket).length, 2);
  h.client.close();
});

test("a short-lived token is refreshed halfway when half its life is less than the margin", async () => {
  const h = await withLifetimes([40], { refreshMargin: 30000 });
  await h.clock.advance(19999);
  assert.deepEqual(authFrames(h.last), []);
  await h.clock.advance(1);
  assert.equal(authFrames(h.last).length, 1);
  h.client.close();
});

test("an answer without exp reports the token's own exp", async () => {
  const h = await withLifetimes([120, 600]);
  await h.clock.advance(90000);
  h.last.receive({ auth: "ok" });
  assert.deepEqual(h.of("refresh").map(strip), [{ exp: exp(h.tokens[1]) }]);
  h.client.close();
});

test("a refused refresh: error kind auth, retried with back-off until accepted; nothing else changes", async () => {
  const h = await withLifetimes([120]);
  await h.clock.advance(90000);
  h.last.receive('{"error":"invalid signature","auth":"failed"}\n');
  assert.deepEqual(h.of("error").map(strip), [{ kind: "auth", message: "invalid signature" }]);
  assert.equal(h.client.state, "open");
  await h.clock.advance(249);
  assert.equal(authFrames(h.last).length, 1);
  await h.clock.advance(1); // random 0.5 * initial 500
  assert.equal(authFrames(h.last).length, 2);
  h.last.receive({ error: "token expired", auth: "failed" });
  await h.clock.advance(499); // attempt 1: 0.5 * 1000
  assert.equal(authFrames(h.last).length, 2);
  await h.clock.advance(1);
  assert.equal(authFrames(h.last).length, 3);
  assert.deepEqual(authFrames(h.last).map((frame) => frame.auth), h.tokens.slice(1));
  h.last.receive({ auth: "ok" });
  assert.equal(h.of("refresh").length, 1);
  assert.equal(h.of("message").length + h.of("recovery").length, 0, "refresh answers are not messages");
  h.client.close();
});

test("a refresh not answered within 10 s: error kind auth, then retried", async () => {
  const h = await withLifetimes([120]);
  await h.clock.advance(90000);
  await h.clock.advance(9999);
  assert.equal(h.of("error").length, 0);
  await h.clock.advance(1);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "auth", message: "token refresh timed out" }]);
  await h.clock.advance(250);
  assert.equal(authFrames(h.last).length, 2);
  h.client.close();
});

test("a token function that throws at refresh time: error kind token, then retried", async () => {
  const h = await withLifetimes([120]);
  h.tokenError = new Error("session ended");
  await h.clock.advance(90000);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "token", message: "session ended" }]);
  assert.deepEqual(authFrames(h.last), []);
  h.tokenError = null;
  await h.clock.advance(250);
  assert.equal(authFrames(h.last).length, 1);
  h.client.close();
});

test("refresh(): resolves on auth ok, rejects on refusal, shares one refresh, rejects when not connected", async () => {
  const h = await withLifetimes([3600]);
  const first = h.client.refresh();
  assert.equal(h.client.refresh(), first);
  await flush();
  h.last.receive({ auth: "ok", exp: 1 });
  await first;
  assert.deepEqual(h.of("refresh").map(strip), [{ exp: 1 }]);

  const second = h.client.refresh();
  await flush();
  h.last.receive({ error: "token expired", auth: "failed" });
  await assert.rejects(second, /token expired/);

  h.client.close();
  await assert.rejects(h.client.refresh(), /not connected/);
});

test("the refreshed token is the one the next connection uses", async () => {
  const h = await withLifetimes([3600]);
  const refreshed = h.client.refresh();
  await flush();
  h.last.receive({ auth: "ok" });
  await refreshed;
  h.last.serverClose(1000);
  await h.clock.advance(250);
  assert.equal(h.tokens.length, 2);
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  h.client.close();
});

test("a token past its refresh time when reconnecting is replaced before connecting", async () => {
  const h = await withLifetimes([120]);
  h.network.goOffline();
  h.last.serverClose(1006);
  await h.clock.advance(100000); // no refresh happens without a connection
  assert.equal(h.tokens.length, 1);
  h.network.goOnline();
  await flush();
  assert.equal(h.tokens.length, 2);
  assert.equal(h.last.params.get("auth"), h.tokens[1]);
  h.client.close();
});

test("a close while a refresh is in flight rejects it and stops refreshing on that connection", async () => {
  const h = await withLifetimes([3600]);
  const pending = h.client.refresh();
  await flush();
  h.last.serverClose(1000);
  await assert.rejects(pending, /closed/);
  const socket = h.last;
  await h.clock.advance(250);
  assert.notEqual(h.last, socket);
  assert.equal(authFrames(h.last).length, 0);
  h.client.close();
  assert.deepEqual(h.clock.pending, []);
});

test("close() clears the refresh schedule and a refresh in flight", async () => {
  const h = await withLifetimes([120]);
  assert.ok(h.clock.pending.some((timer) => timer.ms === 90000));
  const pending = h.client.refresh();
  await flush();
  h.client.close();
  await assert.rejects(pending);
  assert.deepEqual(h.clock.pending, []);
});

test("no scheduled refresh for a string token or a token without exp", async () => {
  for (const options of [{ token: jwt({ exp: 1_700_000_100 }) }, {}]) {
    const h = await connected(options);
    assert.deepEqual(h.clock.pending.map((timer) => timer.ms), [10000], "only the stable timer");
    await h.clock.advance(3600_000);
    assert.deepEqual(authFrames(h.last), []);
    h.client.close();
  }
});

test("refresh answers with nothing in flight: a refusal is still reported, an ok is ignored", async () => {
  const h = await connected();
  h.last.receive({ auth: "ok", exp: 5 });
  h.last.receive({ error: "token expired", auth: "failed" });
  assert.equal(h.of("refresh").length, 0);
  assert.deepEqual(h.of("error").map(strip), [{ kind: "auth", message: "token expired" }]);
  h.client.close();
});
