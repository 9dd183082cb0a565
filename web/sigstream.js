// sigstream.js: browser client for the sigstream signaling service.
// One dependency-free ES module implementing the client protocol, version 1
// (docs/client.md; the protocol itself is docs/protocol.md). Served by every
// instance at /sigstream.js.

/**
 * Delay before reconnect attempt number `attempt` (0 for the first), with
 * exponential backoff and full jitter: uniformly random in
 * [0, min(maxBackoffMs, minBackoffMs * 2^attempt)], so that the clients of an
 * instance that went away do not all come back at the same moment.
 * @param {number} attempt
 * @param {{minBackoffMs?: number, maxBackoffMs?: number, random?: () => number}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, { minBackoffMs = 250, maxBackoffMs = 10000, random = Math.random } = {}) {
  const cap = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * cap);
}

/** An Error refused by the service (or by the client), with the protocol's `code`. */
export class SigstreamError extends Error {
  /**
   * @param {string} code protocol error code, or `disconnected` / `closed` from the client
   * @param {string} message
   */
  constructor(code, message) {
    super(message || code);
    this.name = 'SigstreamError';
    this.code = code;
  }
}

/**
 * A connection to the signaling service, with automatic reconnection.
 *
 * Events (CustomEvent, `detail` in parentheses): `open` (null), `close`
 * ({code, reason}), `peer-joined`, `peer-left`, `signal`, `error` (the
 * protocol message; `error` only for errors that answer no request),
 * `reconnecting` ({attempt, delayMs}), `reconnected` (the new `joined`
 * message, or null when the client was not in a room).
 */
export class SigstreamClient extends EventTarget {
  #url; #opts; #ws = null; #nextId = 1; #pending = new Map();
  #closedByUser = false; #everOpened = false; #attempt = 0; #timer = null;
  #room = null; // {room, meta} to re-join after a reconnect
  #resume = ''; // last non-empty resume token
  #lastSeq = 0; // seq of the last room event received (joined, peer-joined, peer-left, signal)
  #opening = null; // promise of the current connect()
  #peer = null; // own peer id in the current room
  #rejoining = false; // a re-join after a reconnect is in flight: signals wait for it

  /**
   * @param {string} url WebSocket URL, e.g. `ws://host:8080/ws`
   * @param {{WebSocket?: any, reconnect?: boolean, minBackoffMs?: number, maxBackoffMs?: number, random?: () => number, leaveOnPageHide?: boolean, signalAttempts?: number}} [options]
   *   `leaveOnPageHide` (browsers): when the page goes away, close the WebSocket
   *   cleanly, so the others see this peer leave at once. A connection that just
   *   drops is kept by the service for its resume grace period (30 s by default).
   *   `signalAttempts`: how many times `signal()` sends a request answered
   *   `unavailable` (with the same id, so it is stored at most once) before it
   *   rejects; 1 never sends again.
   */
  constructor(url, { WebSocket = globalThis.WebSocket, reconnect = true, minBackoffMs = 250, maxBackoffMs = 10000, random = Math.random, leaveOnPageHide = true, signalAttempts = 3 } = {}) {
    super();
    // Anything else (0, NaN, '3') would make signal() never send, or send forever.
    if (!Number.isInteger(signalAttempts) || signalAttempts < 1) throw new TypeError('signalAttempts must be an integer of 1 or more');
    this.#url = url;
    this.#opts = { WebSocket, reconnect, minBackoffMs, maxBackoffMs, random, signalAttempts };
    /** The last `joined` message of the current room, or null. */
    this.joined = null;
    if (leaveOnPageHide && typeof globalThis.document !== 'undefined' && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', () => { if (this.#ws && this.#ws.readyState === 1) this.#ws.close(1000, 'page hidden'); });
    }
  }

  /** The own peer id in the current room, or null. */
  get peer() { return this.joined?.peer ?? null; }

  /** True while the WebSocket is open. */
  get connected() { return this.#ws?.readyState === 1; }

  /**
   * Opens the connection. Resolves when it is open; rejects if this first
   * attempt fails (reconnection starts only after a connection was open).
   * @returns {Promise<void>}
   */
  connect() {
    if (this.connected) return Promise.resolve();
    if (this.#opening) return this.#opening;
    this.#closedByUser = false;
    // A reconnect already scheduled gives way to this explicit attempt.
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#opening = new Promise((resolve, reject) => this.#open(resolve, reject))
      .finally(() => { this.#opening = null; });
    return this.#opening;
  }

  /**
   * Joins a room. Resolves with the `joined` message: {room, peer, peers, seq, resume}.
   * @param {string} room
   * @param {object} [meta]
   * @param {{token?: string}} [options] `token`: the join token your backend minted
   *   (needed when the service has join keys); sent again with every re-join.
   */
  async join(room, meta, { token } = {}) {
    const msg = { type: 'join', room };
    if (meta !== undefined) msg.meta = meta;
    if (token !== undefined) msg.token = token;
    const joined = await this.#request(msg);
    this.#onJoined(joined, { room, meta, token });
    return joined;
  }

  /**
   * Sends `data` to peer `to`, or to every other peer of the room when `to`
   * is null or undefined. Resolves with the event's `seq` once acknowledged.
   * @param {string | null | undefined} to
   * @param {any} data
   * @returns {Promise<number>}
   */
  async signal(to, data) {
    if (this.#rejoining) throw new SigstreamError('disconnected', 'reconnecting: the room is being re-joined');
    const msg = { type: 'signal', data };
    if (to != null) msg.to = to;
    // `unavailable` may answer an append the service could not confirm in
    // time, which may still be stored: the same request again, with the
    // same id, is stored at most once (docs/client.md, "Sending again").
    const id = this.#nextId++;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.#request(msg, id)).seq;
      } catch (err) {
        if (err.code !== 'unavailable' || attempt >= this.#opts.signalAttempts) throw err;
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt - 1, this.#opts)));
      }
    }
  }

  /** Leaves the current room; the connection stays open. Resolves with the event's `seq`. */
  async leave() {
    this.#room = null; this.#resume = ''; this.joined = null; this.#lastSeq = 0;
    return (await this.#request({ type: 'leave' })).seq;
  }

  /** Closes the connection for good: no reconnect; pending requests are rejected. */
  close() {
    this.#closedByUser = true;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#room = null;
    this.joined = null;
    this.#rejectAll('closed', 'the client was closed');
    if (this.#ws && this.#ws.readyState <= 1) this.#ws.close(1000);
  }

  #emit(type, detail = null) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // Opens a WebSocket. onOpen runs once it is open; onFail (when given) if it
  // closes before opening, otherwise such a failure schedules a reconnect.
  #open(onOpen, onFail) {
    const ws = new this.#opts.WebSocket(this.#url);
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      opened = true;
      this.#everOpened = true;
      this.#emit('open');
      onOpen();
    };
    ws.onmessage = (ev) => { if (ws === this.#ws) this.#onMessage(ev.data); };
    ws.onerror = () => {}; // a close event always follows
    ws.onclose = (ev) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.joined = null;
      this.#rejectAll('disconnected', 'the connection was lost');
      if (opened) this.#emit('close', { code: ev.code, reason: ev.reason });
      if (!opened && onFail) onFail(new SigstreamError('disconnected', `could not connect to ${this.#url}`));
      else if (!this.#closedByUser && this.#opts.reconnect && this.#everOpened) this.#scheduleReconnect();
    };
  }

  #scheduleReconnect() {
    const delayMs = backoffDelay(this.#attempt, this.#opts);
    this.#emit('reconnecting', { attempt: this.#attempt, delayMs });
    this.#attempt++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#closedByUser) return;
      this.#open(() => this.#rejoin(), null);
    }, delayMs);
  }

  async #rejoin() {
    this.#rejoining = true;
    try { await this.#rejoinOnce(); } finally { this.#rejoining = false; }
  }

  async #rejoinOnce() {
    const want = this.#room;
    if (!want) { this.#attempt = 0; this.#emit('reconnected', null); return; }
    const msg = { type: 'join', room: want.room };
    if (want.meta !== undefined) msg.meta = want.meta;
    if (want.token !== undefined) msg.token = want.token;
    // With the token, the service gives back the same peer id and sends
    // every event after last_seq: nothing is missed, nobody sees us leave.
    const previousPeer = this.#resume ? this.#peer : null;
    if (this.#resume) { msg.resume = this.#resume; msg.last_seq = this.#lastSeq; }
    try {
      const joined = await this.#request(msg);
      joined.resumed = previousPeer !== null && joined.peer === previousPeer;
      this.#onJoined(joined, want);
      this.#attempt = 0;
      this.#emit('reconnected', joined);
    } catch (err) {
      if (err.code === 'disconnected' || err.code === 'closed') return; // the close handler goes on
      if (err.code === 'unavailable' || err.code === 'rate-limited') { this.#ws?.close(4000, 'retry'); return; }
      if (msg.resume) { this.#resume = ''; return this.#rejoinOnce(); } // token refused: join afresh
      this.#room = null; // refused for good (room-full, unauthorized, ...)
      this.#emit('error', { type: 'error', code: err.code, message: err.message });
    }
  }

  #onJoined(joined, want) {
    this.joined = joined;
    this.#room = want;
    this.#peer = joined.peer;
    if (typeof joined.seq === 'number') this.#lastSeq = joined.seq;
    if (typeof joined.resume === 'string' && joined.resume) this.#resume = joined.resume;
  }

  #request(msg, id = this.#nextId++) {
    if (!this.connected) return Promise.reject(new SigstreamError('disconnected', 'not connected'));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ ...msg, id }));
    });
  }

  #rejectAll(code, message) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new SigstreamError(code, message));
  }

  #onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    const p = msg.id != null ? this.#pending.get(msg.id) : undefined;
    if (p) {
      this.#pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new SigstreamError(msg.code, msg.message));
      else p.resolve(msg);
      return;
    }
    if (['peer-joined', 'peer-left', 'signal'].includes(msg.type)) {
      // Room events only grow in seq; one at or below the last is a repeat
      // (a service that replays more than asked on a resume).
      if (typeof msg.seq === 'number') {
        if (msg.seq <= this.#lastSeq) return;
        this.#lastSeq = msg.seq;
      }
      this.#emit(msg.type, msg);
    } else if (msg.type === 'error') {
      this.#emit(msg.type, msg);
    }
  }
}
