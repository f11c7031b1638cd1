// Philote client for browsers and Node 20: one WebSocket to a Philote server, kept alive across network loss,
// token expiry and server restarts, recovering missed messages from the server's history. No dependencies, no
// build step: the server serves this file as /philote.js.

/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} PhiloteState */
/** @typedef {{ channel: string, data: string, issuer: string, epoch?: string, offset?: number }} PhiloteMessage */
/** @typedef {{ epoch: string, offset: number }} PhilotePosition */
/** @typedef {{ now(): number, setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void }} PhiloteClock */
/**
 * @typedef {object} PhiloteOptions
 * @property {string} url ws:// or wss:// URL of the server (any path; a query is kept)
 * @property {string | (() => string | Promise<string>)} token a JWT, or a function that fetches a fresh one
 * @property {boolean} [history] recover subscribed channels after a reconnect (default true)
 * @property {{ initial?: number, max?: number, stable?: number }} [backoff] reconnect back-off in ms
 * @property {number} [refreshMargin] refresh a function token this many ms before its exp (default 30000)
 * @property {number} [queueLimit] publishes kept while not open (default 100)
 * @property {any} [WebSocket] WebSocket constructor (default globalThis.WebSocket)
 * @property {((url: string, init?: object) => Promise<any>) | null} [fetch] used for the /api/token probe
 * @property {() => number} [random] uniform in [0, 1), for the back-off jitter
 * @property {PhiloteClock} [clock]
 * @property {EventTarget & { onLine?: boolean } | null} [network] fires "online"/"offline"
 */

const OPTIONS = ["url", "token", "history", "backoff", "refreshMargin", "queueLimit", "WebSocket", "fetch", "random",
  "clock", "network"];
const REFRESH_TIMEOUT = 10000;
// A probe that hangs must not stall reconnection forever.
const PROBE_TIMEOUT = 10000;
const OPEN = 1;

const noop = () => {};
const describe = (err) => (err instanceof Error ? err.message : String(err));
// Errors of application callbacks are reported the way an EventTarget listener's are (reported, not thrown), so
// one bad handler never breaks the connection or the handlers after it.
const report = (err) => {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else queueMicrotask(() => { throw err; });
};
const guard = (fn) => (...args) => {
  try {
    const result = fn(...args);
    if (result && typeof result.catch === "function") result.catch(report);
  } catch (err) {
    report(err);
  }
};

/** The JWT payload, unverified: only read to learn `exp` and `read`; the server does the checking. */
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    const value = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function validate(options) {
  const fail = (what) => { throw new TypeError(`Philote: ${what}`); };
  if (!options || typeof options !== "object") fail("options must be an object");
  for (const key of Object.keys(options)) if (!OPTIONS.includes(key)) fail(`unknown option "${key}"`);
  const o = { ...options };
  let parsed = null;
  try { parsed = new URL(o.url); } catch { /* reported below */ }
  if (typeof o.url !== "string" || !parsed || !/^wss?:$/.test(parsed.protocol) || parsed.hash) {
    fail("url must be a ws:// or wss:// URL without a fragment");
  }
  if (typeof o.token !== "string" && typeof o.token !== "function") fail("token must be a string or a function");
  o.history ??= true;
  if (typeof o.history !== "boolean") fail("history must be a boolean");
  const backoff = { initial: 500, max: 30000, stable: 10000 };
  if (o.backoff !== undefined && (o.backoff === null || typeof o.backoff !== "object")) fail("backoff must be an object");
  for (const [key, value] of Object.entries(o.backoff ?? {})) {
    if (!(key in backoff)) fail(`unknown backoff option "${key}"`);
    if (value !== undefined) backoff[key] = value;
  }
  o.backoff = backoff;
  o.refreshMargin ??= 30000;
  o.queueLimit ??= 100;
  for (const [name, value] of [...Object.entries(backoff).map(([k, v]) => [`backoff.${k}`, v]),
    ["refreshMargin", o.refreshMargin], ["queueLimit", o.queueLimit]]) {
    if (typeof value !== "number" || !(value >= 0) || value === Infinity) fail(`${name} must be a finite number >= 0`);
  }
  if (!Number.isInteger(o.queueLimit)) fail("queueLimit must be an integer");
  o.WebSocket ??= globalThis.WebSocket;
  if (typeof o.WebSocket !== "function") fail("no WebSocket implementation: pass the WebSocket option");
  // Without fetch the 401 probe is skipped: a refused token then looks like any other failed connection.
  if (o.fetch === undefined) o.fetch = typeof globalThis.fetch === "function" ? globalThis.fetch : null;
  if (o.fetch !== null && typeof o.fetch !== "function") fail("fetch must be a function");
  o.random ??= Math.random;
  if (typeof o.random !== "function") fail("random must be a function");
  o.clock ??= { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id) };
  if (!o.clock || ["now", "setTimeout", "clearTimeout"].some((k) => typeof o.clock[k] !== "function")) {
    fail("clock must have now, setTimeout and clearTimeout functions");
  }
  if (o.network === undefined) {
    const g = globalThis;
    o.network = typeof g.addEventListener === "function" && typeof g.navigator?.onLine === "boolean" ? g : null;
  }
  if (o.network !== null && (typeof o.network !== "object" || typeof o.network.addEventListener !== "function" ||
      typeof o.network.removeEventListener !== "function")) {
    fail("network must be an EventTarget or null");
  }
  return o;
}

export class Philote extends EventTarget {
  /** @type {ReturnType<typeof validate>} */ #o;
  /** @type {PhiloteState} */ #state = "closed";
  // Where the connection loop is: "idle" (not started or stopped), "waiting" (for a retry timer or the network),
  // "dialing" (token, socket handshake, probe) or "open". #state is what the application sees.
  #phase = "idle";
  // Bumped whenever the loop stops or restarts, so that continuations of an abandoned attempt do nothing.
  #run = 0;
  #ws = null;
  #token = null;
  #attempt = 0;
  #unauthorized = 0;
  #subs = new Map();
  #positions = new Map();
  #queue = [];
  #refreshing = null;
  #refreshAttempt = 0;
  #timers = new Set();
  #retryTimer;
  #stableTimer;
  #refreshTimer;
  #listening = false;
  // Channels subscribed while some earlier connection was open: only those can have missed messages.
  #heard = new Set();

  /** @param {PhiloteOptions} options */
  constructor(options) {
    super();
    this.#o = validate(options);
  }

  /** @returns {PhiloteState} */
  get state() { return this.#state; }

  /** @returns {Record<string, PhilotePosition>} a copy: the last position received of each subscribed channel */
  get positions() {
    return Object.fromEntries([...this.#positions].map(([channel, { epoch, offset }]) => [channel, { epoch, offset }]));
  }

  /** Starts connecting; does nothing while already started. Also restarts a client that is closed. */
  connect() {
    if (this.#phase !== "idle") return this;
    this.#run++;
    this.#attempt = 0;
    this.#unauthorized = 0;
    this.#listenNetwork(true);
    this.#phase = "waiting";
    const run = this.#run;
    this.#setState("connecting");
    if (run === this.#run) this.#dial();
    return this;
  }

  /** Stops for good: closes with 1000, cancels every timer, reports queued publishes as dropped. */
  close() {
    const previous = this.#state;
    const dropped = this.#queue.splice(0);
    this.#halt();
    const run = this.#run;
    if (previous !== "closed") this.#emit("state", { state: "closed", previous });
    if (dropped.length && run === this.#run) {
      this.#error("closed", `closed with ${dropped.length} queued publish(es) not sent`, { dropped });
    }
  }

  /**
   * @param {string} channel
   * @param {(data: string, message: PhiloteMessage) => void} handler
   * @returns {() => void} unsubscribe
   */
  subscribe(channel, handler) {
    if (typeof channel !== "string") throw new TypeError("Philote: channel must be a string");
    if (typeof handler !== "function") throw new TypeError("Philote: handler must be a function");
    // An entry per call, so that the same function subscribed twice is called twice and unsubscribed once each.
    const entry = { handler, active: true };
    let entries = this.#subs.get(channel);
    if (!entries) this.#subs.set(channel, (entries = new Set()));
    entries.add(entry);
    return () => {
      if (!entry.active) return;
      entry.active = false;
      entries.delete(entry);
      if (entries.size === 0 && this.#subs.get(channel) === entries) {
        this.#subs.delete(channel);
        this.#positions.delete(channel);
      }
    };
  }

  /**
   * Sends now when open, else queues for the next open.
   * @param {string} channel
   * @param {string} data
   * @returns {boolean} false when the queue is full (an "error" event of kind "queue-full" says so too)
   */
  publish(channel, data) {
    if (typeof channel !== "string" || typeof data !== "string") {
      throw new TypeError("Philote: publish(channel, data) takes two strings");
    }
    if (this.#phase === "open" && this.#send({ channel, data })) return true;
    if (this.#queue.length >= this.#o.queueLimit) {
      this.#error("queue-full", `publish queue full (${this.#o.queueLimit}): message to "${channel}" not sent`, { channel });
      return false;
    }
    this.#queue.push({ channel, data });
    return true;
  }

  /**
   * Replaces the connection's token in place with a fresh one from the token option.
   * @returns {Promise<void>} resolves when the server accepted it; rejects on refusal, timeout or close
   */
  refresh() {
    if (this.#refreshing) return this.#refreshing.promise;
    if (this.#phase !== "open") return Promise.reject(new Error("Philote: not connected"));
    this.#clear(this.#refreshTimer);
    const pending = { token: null, timer: undefined };
    pending.promise = new Promise((resolve, reject) => Object.assign(pending, { resolve, reject }));
    this.#refreshing = pending;
    this.#obtain().then((value) => {
      if (this.#refreshing !== pending) return;
      pending.token = this.#makeToken(value);
      pending.timer = this.#after(REFRESH_TIMEOUT,
        () => this.#refreshDone(pending, "auth", new Error("token refresh timed out")));
      this.#send({ auth: value });
    }, (err) => this.#refreshDone(pending, "token", err)).catch(report);
    return pending.promise;
  }

  // ---- connection loop ----

  #dial = guard(async () => {
    if (!this.#online()) return void (this.#phase = "waiting"); // #onOnline resumes
    const run = this.#run;
    this.#phase = "dialing";
    this.#setState("connecting");
    if (run !== this.#run) return;
    let token;
    try {
      token = await this.#currentToken();
    } catch (err) {
      if (run !== this.#run) return;
      this.#error("token", `token function failed: ${describe(err)}`);
      if (run === this.#run) this.#retry({});
      return;
    }
    if (run !== this.#run) return;
    this.#token = token;
    if (!this.#online()) return void (this.#phase = "waiting");
    let ws;
    try {
      ws = new this.#o.WebSocket(this.#socketUrl(token));
    } catch (err) {
      this.#error("closed", `cannot create the WebSocket: ${describe(err)}`);
      if (run === this.#run) this.#retry({});
      return;
    }
    this.#ws = ws;
    let opened = false;
    try { ws.binaryType = "arraybuffer"; } catch { /* not every implementation lets it be set */ }
    ws.onopen = guard(() => { if (ws === this.#ws) { opened = true; this.#opened(); } });
    ws.onmessage = guard((event) => { if (ws === this.#ws) this.#receive(event.data); });
    // Node's ws throws an "error" nobody listens to; the close event that always follows says what happened.
    ws.onerror = noop;
    ws.onclose = guard((event) => { if (ws === this.#ws) return this.#closed(event.code, event.reason, opened, token); });
  });

  #opened() {
    this.#phase = "open";
    this.#unauthorized = 0;
    this.#stableTimer = this.#after(this.#o.backoff.stable, () => { this.#attempt = 0; });
    this.#scheduleRefresh();
    // Before the "open" event, so that a listener's publish cannot overtake the queued ones.
    for (const { channel, data } of this.#queue.splice(0)) this.#send({ channel, data });
    this.#setState("open");
  }

  async #closed(code, reason, opened, token) {
    const run = this.#run;
    this.#ws = null;
    this.#phase = "dialing";
    this.#clear(this.#stableTimer);
    this.#endRefresh();
    const cause = { code, reason };
    if (opened) {
      for (const channel of this.#subs.keys()) this.#heard.add(channel);
      if (code === 4001) return this.#renew(token, cause, reason || "token expired");
      if (code !== 1000 && code !== 1001) {
        this.#error("closed", reason || `connection closed with code ${code}`, { code });
        if (run !== this.#run) return;
      }
      return this.#retry(cause);
    }
    // Browsers hide the HTTP status of a refused upgrade, so ask the server whether the token was the reason.
    const refusal = await this.#probe(token);
    if (run !== this.#run) return;
    if (refusal === null) {
      this.#unauthorized = 0;
      return this.#retry(cause);
    }
    if (this.#unauthorized++ === 0) return this.#renew(token, cause, refusal);
    this.#stop("auth", refusal, cause);
  }

  /** A rejected or expired token: try a new one at once (not a back-off attempt); a string cannot be renewed. */
  #renew(token, cause, reason) {
    if (typeof this.#o.token !== "function") return this.#stop("auth", reason, cause);
    token.stale = true;
    const run = this.#run;
    this.#setState("reconnecting", this.#online() ? { ...cause, attempt: this.#attempt, delay: 0 } : cause);
    if (run === this.#run) this.#dial();
  }

  #retry(cause) {
    this.#phase = "waiting";
    if (!this.#online()) return this.#setState("reconnecting", cause);
    const n = this.#attempt++;
    const { initial, max } = this.#o.backoff;
    // Full jitter; the exponent is capped so that initial 0 cannot make 0 * Infinity.
    const delay = this.#o.random() * Math.min(max, initial * 2 ** Math.min(n, 60));
    this.#retryTimer = this.#after(delay, () => this.#dial());
    this.#setState("reconnecting", { ...cause, attempt: n, delay });
  }

  #stop(kind, message, cause = {}) {
    const previous = this.#state;
    this.#halt();
    const run = this.#run;
    this.#error(kind, message, cause.code === undefined ? {} : { code: cause.code });
    if (run === this.#run) this.#emit("state", { state: "closed", previous, ...cause });
  }

  #halt() {
    this.#run++;
    this.#token = null; // a later connect() starts afresh, e.g. as another user
    this.#phase = "idle";
    this.#state = "closed";
    for (const id of this.#timers) this.#o.clock.clearTimeout(id);
    this.#timers.clear();
    this.#endRefresh();
    this.#listenNetwork(false);
    const ws = this.#ws;
    this.#ws = null;
    try { ws?.close(1000); } catch { /* already closing */ }
  }

  /** @returns {Promise<string | null>} the server's reason when it refuses the token, else null */
  async #probe(token) {
    const fetch = this.#o.fetch; // called unbound: a browser's fetch refuses any `this` but the window
    if (!fetch) return null;
    const url = new URL(this.#o.url);
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    url.pathname = "/api/token";
    url.search = `?auth=${encodeURIComponent(token.value)}`;
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    let timer;
    try {
      return await new Promise((resolve, reject) => {
        timer = this.#after(PROBE_TIMEOUT, () => { abort?.abort(); reject(new Error("probe timed out")); });
        (async () => {
          const response = await fetch(url.href, abort ? { signal: abort.signal } : {});
          if (response.status !== 401) return null;
          let body = null;
          try { body = await response.json(); } catch { /* a 401 all the same */ }
          return typeof body?.error === "string" ? body.error : "token refused";
        })().then(resolve, reject);
      });
    } catch {
      return null; // the network or the server: the ordinary back-off copes with both
    } finally {
      this.#clear(timer);
    }
  }

  #online() {
    const network = this.#o.network;
    if (!network) return true;
    return ("onLine" in network ? network.onLine : globalThis.navigator?.onLine) !== false;
  }

  #onOnline = guard(() => {
    if (this.#phase !== "waiting") return;
    this.#clear(this.#retryTimer);
    this.#dial();
  });

  #onOffline = guard(() => { if (this.#phase === "waiting") this.#clear(this.#retryTimer); });

  #listenNetwork(on) {
    const network = this.#o.network;
    if (!network || this.#listening === on) return;
    this.#listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    network[method]("online", this.#onOnline);
    network[method]("offline", this.#onOffline);
  }

  // ---- tokens ----

  async #currentToken() {
    const token = this.#token;
    if (token && (typeof this.#o.token === "string" ||
        (!token.stale && this.#o.clock.now() < token.refreshAt))) return token;
    return this.#makeToken(await this.#obtain());
  }

  async #obtain() {
    const source = this.#o.token;
    const value = typeof source === "function" ? await source() : source;
    if (typeof value !== "string" || value === "") throw new TypeError("the token must be a non-empty string");
    return value;
  }

  #makeToken(value) {
    const { exp, read } = claims(value);
    const token = { value, exp: null, read: [], refreshAt: Infinity, stale: false };
    if (Array.isArray(read)) token.read = read.filter((channel) => typeof channel === "string");
    if (typeof exp === "number" && Number.isFinite(exp)) {
      token.exp = exp;
      const end = exp * 1000;
      token.refreshAt = end - Math.min(this.#o.refreshMargin, Math.max(0, end - this.#o.clock.now()) / 2);
    }
    return token;
  }

  #scheduleRefresh() {
    this.#clear(this.#refreshTimer);
    const token = this.#token;
    if (typeof this.#o.token !== "function" || !token || token.refreshAt === Infinity) return;
    this.#refreshTimer = this.#after(Math.max(0, token.refreshAt - this.#o.clock.now()), () => this.refresh().catch(noop));
  }

  #refreshDone(pending, kind, err, exp) {
    if (this.#refreshing !== pending) return;
    this.#refreshing = null;
    this.#clear(pending.timer);
    if (!err) {
      this.#refreshAttempt = 0;
      this.#token = pending.token;
      this.#scheduleRefresh();
      pending.resolve();
      return this.#emit("refresh", { exp: typeof exp === "number" ? exp : pending.token.exp });
    }
    if (typeof this.#o.token === "function") {
      const { initial, max } = this.#o.backoff;
      const delay = this.#o.random() * Math.min(max, initial * 2 ** Math.min(this.#refreshAttempt++, 60));
      this.#refreshTimer = this.#after(delay, () => this.refresh().catch(noop));
    }
    pending.reject(err);
    this.#error(kind, describe(err));
  }

  /** The connection is gone: so is the refresh in flight (the next connection uses a fresh token anyway). */
  #endRefresh() {
    this.#clear(this.#refreshTimer);
    this.#refreshAttempt = 0;
    const pending = this.#refreshing;
    if (!pending) return;
    this.#refreshing = null;
    this.#clear(pending.timer);
    pending.reject(new Error("Philote: connection closed before the refresh was answered"));
  }

  // ---- frames ----

  #socketUrl(token) {
    const url = this.#o.url;
    let out = url + (!url.includes("?") ? "?" : /[?&]$/.test(url) ? "" : "&") + `auth=${encodeURIComponent(token.value)}`;
    if (!this.#o.history) return out;
    for (const channel of this.#subs.keys()) {
      if (!token.read.includes(channel)) continue; // the server would answer "read not permitted"
      const p = this.#positions.get(channel);
      out += `&since=${encodeURIComponent(p ? `${p.epoch}:${p.offset}:${channel}` : `::${channel}`)}`;
    }
    return out;
  }

  #send(frame) {
    try {
      if (this.#ws?.readyState !== OPEN) return false;
      this.#ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  #receive(raw) {
    let msg = null;
    try {
      msg = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
    } catch { /* reported below */ }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
      return this.#error("server", "unreadable message from the server");
    }
    if ("error" in msg) {
      if (msg.auth === "failed") {
        const pending = this.#refreshing;
        if (pending?.token) return this.#refreshDone(pending, "auth", new Error(String(msg.error)));
        return this.#error("auth", String(msg.error));
      }
      return this.#error("server", String(msg.error), "channel" in msg ? { channel: msg.channel } : {});
    }
    if ("recovery" in msg) return this.#recovery(msg);
    if ("auth" in msg) {
      const pending = this.#refreshing;
      if (msg.auth === "ok" && pending?.token) this.#refreshDone(pending, "auth", null, msg.exp);
      return;
    }
    this.#message(msg);
  }

  #recovery(msg) {
    const channel = typeof msg.channel === "string" ? msg.channel : "";
    // A "failed" for a channel that nothing can have been missed on yet (history off, or Redis unavailable, at the
    // first connection) is no gap: the app is told "new", with the server's reason, and reloads nothing.
    const outcome = msg.recovery === "failed" && !this.#heard.has(channel) ? "new" : msg.recovery;
    const detail = { channel, outcome };
    for (const key of ["reason", "epoch", "offset"]) if (msg[key] !== undefined) detail[key] = msg[key];
    // "ok": the replay that follows moves the position. "new"/"failed": the answer is where live messages resume.
    if (msg.recovery !== "ok" && this.#subs.has(channel)) {
      if (typeof msg.epoch === "string" && typeof msg.offset === "number") {
        this.#positions.set(channel, { epoch: msg.epoch, offset: msg.offset });
      } else if (msg.recovery === "failed") {
        // No position to resume from: the old one is known to be useless, so ask afresh ("::") next time.
        this.#positions.delete(channel);
      }
    }
    this.#emit("recovery", detail);
  }

  #message(msg) {
    const channel = typeof msg.channel === "string" ? msg.channel : "";
    /** @type {PhiloteMessage} */
    const message = { channel, data: typeof msg.data === "string" ? msg.data : "", issuer: String(msg.issuer ?? "") };
    if (typeof msg.epoch === "string" && typeof msg.offset === "number") {
      message.epoch = msg.epoch;
      message.offset = msg.offset;
      const known = this.#positions.get(channel);
      if (known && known.epoch === msg.epoch && msg.offset <= known.offset) return; // already delivered
      if (this.#subs.has(channel)) this.#positions.set(channel, { epoch: msg.epoch, offset: msg.offset });
    }
    this.#emit("message", message);
    for (const entry of [...(this.#subs.get(channel) ?? [])]) {
      if (!entry.active) continue;
      try { entry.handler(message.data, message); } catch (err) { report(err); }
    }
  }

  // ---- plumbing ----

  #setState(state, extra = {}) {
    const previous = this.#state;
    if (previous === state && state !== "reconnecting") return;
    this.#state = state;
    this.#emit("state", { state, previous, ...extra });
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #error(kind, message, extra = {}) { this.#emit("error", { kind, message, ...extra }); }

  #after(ms, fn) {
    const id = this.#o.clock.setTimeout(() => { this.#timers.delete(id); guard(fn)(); }, ms);
    this.#timers.add(id);
    return id;
  }

  #clear(id) {
    if (id !== undefined && this.#timers.delete(id)) this.#o.clock.clearTimeout(id);
  }
}
