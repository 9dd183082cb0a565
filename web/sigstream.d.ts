// Type declarations for sigstream.js, the browser client of the sigstream
// signaling service (client protocol version 1; see docs/client.md).

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A peer already in the room, as listed by `joined`. */
export interface PeerInfo {
  peer: string;
  meta: { [key: string]: Json };
}

/** Reply to `join`. */
export interface JoinedMessage {
  type: 'joined';
  id?: string | number;
  room: string;
  /** Own peer id: opaque, unique across the cluster, never reused. */
  peer: string;
  /** Every other peer already in the room, oldest first. */
  peers: PeerInfo[];
  seq: number;
  /** Opaque resume token (empty if the service runs with resume off). The client sends it by itself after a reconnect. */
  resume: string;
  /** Set by the client on a re-join after a reconnect: true if the service took the resume (same peer id, missed events follow). */
  resumed?: boolean;
}

export interface PeerJoinedMessage {
  type: 'peer-joined';
  peer: string;
  meta: { [key: string]: Json };
  seq: number;
}

export interface PeerLeftMessage {
  type: 'peer-left';
  peer: string;
  reason: 'leave' | 'disconnect' | 'expired';
  seq: number;
}

export interface SignalMessage {
  type: 'signal';
  from: string;
  /** Present when the signal was sent to this peer only. */
  to?: string;
  data: Json;
  seq: number;
}

/** Error codes of the protocol, plus `disconnected` and `closed` from the client itself. */
export type ErrorCode =
  | 'bad-request' | 'too-large' | 'invalid-room' | 'not-in-room' | 'already-in-room'
  | 'unknown-peer' | 'unauthorized' | 'room-full' | 'rate-limited' | 'unavailable'
  | 'disconnected' | 'closed';

export interface ErrorMessage {
  type: 'error';
  code: ErrorCode | string;
  message: string;
}

export interface CloseDetail { code: number; reason: string; }
export interface ReconnectingDetail { attempt: number; delayMs: number; }

export interface SigstreamEventMap {
  open: CustomEvent<null>;
  close: CustomEvent<CloseDetail>;
  'peer-joined': CustomEvent<PeerJoinedMessage>;
  'peer-left': CustomEvent<PeerLeftMessage>;
  signal: CustomEvent<SignalMessage>;
  /** Errors that answer no request (and a re-join refused after a reconnect). */
  error: CustomEvent<ErrorMessage>;
  reconnecting: CustomEvent<ReconnectingDetail>;
  /** The new `joined` after a reconnect, or null when the client was in no room. */
  reconnected: CustomEvent<JoinedMessage | null>;
}

export interface BackoffOptions {
  /** Base delay, doubled per attempt (default 250). */
  minBackoffMs?: number;
  /** Upper bound of any delay (default 10000). */
  maxBackoffMs?: number;
  /** Browsers: close the WebSocket cleanly on `pagehide`, so the others see this peer leave at once (default true). */
  leaveOnPageHide?: boolean;
  /** Uniform random in [0, 1) (default Math.random). */
  random?: () => number;
  /** How many times `signal()` sends a request answered `unavailable`, with the same id (stored at most once), before it rejects (default 3; 1: never again). */
  signalAttempts?: number;
}

export interface SigstreamClientOptions extends BackoffOptions {
  /** WebSocket constructor (default globalThis.WebSocket; in Node pass the `ws` package's). */
  WebSocket?: { new (url: string): WebSocket } | any;
  /** Reconnect by itself after a connection that was open drops (default true). */
  reconnect?: boolean;
}

/** Full-jitter backoff: uniform in [0, min(maxBackoffMs, minBackoffMs * 2^attempt)]. */
export declare function backoffDelay(attempt: number, options?: BackoffOptions): number;

/** A refused request; `code` is the protocol's error code. */
export declare class SigstreamError extends Error {
  constructor(code: string, message?: string);
  readonly name: 'SigstreamError';
  code: ErrorCode | string;
}

export declare class SigstreamClient extends EventTarget {
  constructor(url: string, options?: SigstreamClientOptions);
  /** The last `joined` of the current room, or null. */
  joined: JoinedMessage | null;
  /** Own peer id in the current room, or null. */
  readonly peer: string | null;
  /** True while the WebSocket is open. */
  readonly connected: boolean;
  /** Opens the connection; rejects (code `disconnected`) if this first attempt fails. */
  connect(): Promise<void>;
  /** `options.token`: the join token your backend minted (needed when the service has join keys); sent again with every re-join. */
  join(room: string, meta?: { [key: string]: Json }, options?: { token?: string }): Promise<JoinedMessage>;
  /** Resolves with the event's seq once acknowledged; `to` null/undefined broadcasts. Sent again with the same id (stored at most once) when answered `unavailable`, up to `signalAttempts` times. */
  signal(to: string | null | undefined, data: Json): Promise<number>;
  /** Resolves with the leave event's seq. */
  leave(): Promise<number>;
  /** Closes for good: no reconnect; pending requests reject with code `closed`. */
  close(): void;

  addEventListener<K extends keyof SigstreamEventMap>(
    type: K, listener: (ev: SigstreamEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SigstreamEventMap>(
    type: K, listener: (ev: SigstreamEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}
