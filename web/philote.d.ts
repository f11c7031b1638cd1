// Type declarations for philote.js, the Philote client module (served by the server as /philote.js).

export type PhiloteState = "connecting" | "open" | "reconnecting" | "closed";

/** A message as the server relays it; `epoch` and `offset` only on channels that asked for recovery. */
export interface PhiloteMessage {
  channel: string;
  data: string;
  issuer: string;
  epoch?: string;
  offset?: number;
}

export interface PhilotePosition {
  epoch: string;
  offset: number;
}

export interface PhiloteClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: any): void;
}

/** What the client needs of a WebSocket: the browser's, Node's `ws`, or a test double. */
export interface PhiloteSocket {
  readonly readyState: number;
  binaryType?: string;
  // `any` events, so that the DOM's WebSocket (MessageEvent, CloseEvent) and Node's `ws` both fit; the client
  // reads `data` of a message event and `code` and `reason` of a close event.
  onopen: ((event: any) => any) | null;
  onmessage: ((event: any) => any) | null;
  onerror: ((event: any) => any) | null;
  onclose: ((event: any) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Fires "online" and "offline"; `onLine`, when present, replaces `navigator.onLine`. */
export interface PhiloteNetwork {
  addEventListener(type: "online" | "offline", listener: () => void): void;
  removeEventListener(type: "online" | "offline", listener: () => void): void;
  readonly onLine?: boolean;
}

export interface PhiloteBackoff {
  /** ms before reconnect attempt 0 at most (default 500) */
  initial?: number;
  /** cap in ms (default 30000) */
  max?: number;
  /** ms a connection must stay open for the attempt count to start again at 0 (default 10000) */
  stable?: number;
}

export interface PhiloteOptions {
  /** ws:// or wss:// URL; any path, an existing query is kept */
  url: string;
  /** a JWT, or a function giving one (called for each connection that needs a new token, and for refreshes) */
  token: string | (() => string | Promise<string>);
  /** send `since` for subscribed channels the token reads, to recover what was missed (default true) */
  history?: boolean;
  backoff?: PhiloteBackoff;
  /** with a function token whose JWT has exp: refresh in place this many ms before exp, at most halfway (default 30000) */
  refreshMargin?: number;
  /** publishes kept while not open (default 100) */
  queueLimit?: number;
  /** default globalThis.WebSocket */
  WebSocket?: new (url: string) => PhiloteSocket;
  /** for GET /api/token after a connection failed before opening (default globalThis.fetch; null: no probe) */
  fetch?: ((url: string, init?: { signal?: AbortSignal }) => Promise<{ status: number; json(): Promise<any> }>) | null;
  /** default Math.random */
  random?: () => number;
  /** default Date.now and the global timers */
  clock?: PhiloteClock;
  /** default globalThis in browsers (window's online/offline events); null: always online */
  network?: PhiloteNetwork | null;
}

export interface PhiloteStateDetail {
  state: PhiloteState;
  previous: PhiloteState;
  /** the close code that caused this state (reconnecting, or closed after an auth failure) */
  code?: number;
  reason?: string;
  /** reconnecting: the back-off attempt (0-based); immediate reconnects after 4001 or 401 do not count one */
  attempt?: number;
  /** reconnecting: ms until the next attempt; absent while waiting for the network to come back */
  delay?: number;
}

export interface PhiloteRecoveryDetail {
  channel: string;
  outcome: "ok" | "new" | "failed";
  reason?: string;
  epoch?: string;
  /** absent only with reason "history off" */
  offset?: number;
}

export interface PhiloteRefreshDetail {
  /** the new token's expiry (NumericDate seconds), null when it has none */
  exp: number | null;
}

export type PhiloteErrorKind = "server" | "auth" | "closed" | "queue-full" | "token";

export interface PhiloteErrorDetail {
  kind: PhiloteErrorKind;
  message: string;
  channel?: string;
  code?: number;
  /** kind "closed" from close(): the queued publishes that were not sent */
  dropped?: Array<{ channel: string; data: string }>;
}

export interface PhiloteEventMap {
  state: CustomEvent<PhiloteStateDetail>;
  message: CustomEvent<PhiloteMessage>;
  recovery: CustomEvent<PhiloteRecoveryDetail>;
  refresh: CustomEvent<PhiloteRefreshDetail>;
  error: CustomEvent<PhiloteErrorDetail>;
}

export declare class Philote extends EventTarget {
  /** @throws {TypeError} for unknown options or options of the wrong type */
  constructor(options: PhiloteOptions);
  readonly state: PhiloteState;
  /** a fresh copy: the last position received on each subscribed channel */
  readonly positions: Record<string, PhilotePosition>;
  /** starts connecting; does nothing while started; restarts a closed client */
  connect(): this;
  /** closes with 1000 and stops for good: no reconnect, timers cleared, queued publishes reported dropped */
  close(): void;
  /** @returns unsubscribe */
  subscribe(channel: string, handler: (data: string, message: PhiloteMessage) => void): () => void;
  /** sends now when open, else queues; false when the queue is full */
  publish(channel: string, data: string): boolean;
  /** refreshes the token in place now: resolves when accepted, rejects on refusal, timeout, close, or when not open */
  refresh(): Promise<void>;

  addEventListener<K extends keyof PhiloteEventMap>(
    type: K, listener: (this: Philote, event: PhiloteEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(
    type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof PhiloteEventMap>(
    type: K, listener: (this: Philote, event: PhiloteEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(
    type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
