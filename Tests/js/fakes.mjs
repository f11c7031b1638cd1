// Test doubles for web/philote.js: a manual clock, a scripted WebSocket, fetch and network, and a harness that
// records every event the client dispatches. Not a test file itself (node --test picks *.test.mjs only).
import { Philote } from "../../web/philote.js";

/** Lets every pending promise continuation run (one macrotask turn drains the microtask queue). */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

export class FakeClock {
  t = 1_700_000_000_000;
  #timers = new Map();
  #next = 1;
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), fn, ms });
    return id;
  };
  clearTimeout = (id) => { this.#timers.delete(id); };
  /** Timers not yet run: [{id, at, ms}], soonest first. */
  get pending() {
    return [...this.#timers].map(([id, { at, ms }]) => ({ id, at, ms })).sort((a, b) => a.at - b.at || a.id - b.id);
  }
  /** Moves time forward, running each timer due on the way at its own time, with promise continuations between. */
  async advance(ms) {
    const end = this.t + ms;
    await flush();
    for (;;) {
      const due = this.pending.find((timer) => timer.at <= end);
      if (!due) break;
      const { fn } = this.#timers.get(due.id);
      this.#timers.delete(due.id);
      this.t = due.at;
      fn();
      await flush();
    }
    this.t = end;
  }
}

export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    readyState = 0;
    sent = [];
    closedWith = null;
    constructor(url) {
      this.url = url;
      sockets.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(data);
    }
    close(code, reason = "") {
      if (this.readyState >= 2) return;
      this.closedWith = { code, reason };
      this.readyState = 3;
      // Like a browser: the close event comes later, from the event loop.
      queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason }));
    }
    // What the server (or the network) does:
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    receive(message) {
      this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) + "\n" });
    }
    serverClose(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: true });
    }
    /** The upgrade failed (refused token, server down): browsers say 1006 and nothing more. */
    fail() {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: "", wasClean: false });
    }
    get params() { return new URL(this.url).searchParams; }
    get frames() { return this.sent.map((frame) => JSON.parse(frame)); }
  }
  return { FakeWebSocket, sockets };
}

export class FakeNetwork extends EventTarget {
  onLine = true;
  listeners = 0;
  addEventListener(type, fn, options) { this.listeners++; super.addEventListener(type, fn, options); }
  removeEventListener(type, fn, options) { this.listeners--; super.removeEventListener(type, fn, options); }
  goOffline() { this.onLine = false; this.dispatchEvent(new Event("offline")); }
  goOnline() { this.onLine = true; this.dispatchEvent(new Event("online")); }
}

/** An unsigned JWT with these claims (the client never verifies signatures). */
export function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

/**
 * A client wired to fakes. `h.claims(n)` makes the claims of the n-th token the token function hands out
 * (n from 1); `h.probe` is what GET /api/token answers ({status, body}, or an Error to reject with, or "hang").
 */
export function harness(options = {}, { read = ["room-1", "room-2"] } = {}) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSocket();
  const network = new FakeNetwork();
  const h = {
    clock, sockets, network, events: [], fetches: [], tokens: [],
    random: 0.5,
    probe: { status: 200, body: { exp: null, read, write: read } },
    claims: (n) => ({ sub: `user-${n}`, read, write: read }),
    tokenError: null,
    get last() { return sockets[sockets.length - 1]; },
    of(type) { return this.events.filter((event) => event.type === type); },
    states() { return this.of("state").map((event) => event.state); },
  };
  const token = async () => {
    if (h.tokenError) throw h.tokenError;
    const value = jwt(h.claims(h.tokens.length + 1));
    h.tokens.push(value);
    return value;
  };
  const fetch = (url) => {
    h.fetches.push(url);
    const probe = h.probe;
    if (probe === "hang") return new Promise(() => {});
    if (probe instanceof Error) return Promise.reject(probe);
    return Promise.resolve({ status: probe.status, json: async () => probe.body });
  };
  h.client = new Philote({
    url: "ws://chat.example:6380/", token, WebSocket: FakeWebSocket, fetch, random: () => h.random, clock, network,
    ...options,
  });
  for (const type of ["state", "message", "recovery", "refresh", "error"]) {
    h.client.addEventListener(type, (event) => h.events.push({ type, ...event.detail }));
  }
  return h;
}

/** connect() and open the first socket. */
export async function connected(options, extra) {
  const h = harness(options, extra);
  h.client.connect();
  await flush();
  h.last.open();
  return h;
}
