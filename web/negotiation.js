// negotiation.js: optional perfect-negotiation helper for sigstream.js.
// Wires one RTCPeerConnection per remote peer of the room to a
// SigstreamClient: offer/answer/ICE travel as `signal` data
// ({description} or {candidate}), glare is resolved with the polite/impolite
// pattern (the peer whose id sorts lower is polite). See docs/client.md.

/**
 * A mesh of RTCPeerConnections, one per other peer of the client's room.
 *
 * Events (CustomEvent, `detail`): `peer-added` ({peer, meta, pc}),
 * `peer-removed` ({peer, reason}), `track` ({peer, track, streams}),
 * `datachannel` ({peer, channel}), `message` ({peer, data}),
 * `connectionstatechange` ({peer, state}), `error` ({peer, error}).
 */
export class PeerMesh extends EventTarget {
  #client; #opts; #peers = new Map(); #listeners = [];

  /**
   * @param {import('./sigstream.js').SigstreamClient} client
   * @param {{rtcConfig?: RTCConfiguration, stream?: MediaStream | null, dataChannel?: string | null, RTCPeerConnection?: any, acceptCandidate?: (c: RTCIceCandidateInit) => boolean}} [options]
   *   `dataChannel`: label of a negotiated data channel (id 0) opened with every peer, or null for none.
   *   `acceptCandidate`: ICE candidates (ours and theirs) it refuses are neither sent nor added,
   *   e.g. to keep a test's media on the loopback interface (see loopbackOnly).
   */
  constructor(client, { rtcConfig = {}, stream = null, dataChannel = 'chat', RTCPeerConnection = globalThis.RTCPeerConnection, acceptCandidate = () => true } = {}) {
    super();
    this.#client = client;
    this.#opts = { rtcConfig, stream, dataChannel, RTCPeerConnection, acceptCandidate };
    const on = (type, fn) => { client.addEventListener(type, fn); this.#listeners.push([type, fn]); };
    on('peer-joined', ({ detail }) => this.#add(detail.peer, detail.meta, { passive: true }));
    on('peer-left', ({ detail }) => this.#remove(detail.peer, detail.reason));
    on('signal', ({ detail }) => this.#onSignal(detail.from, detail.data));
    // A lost signaling connection does not stop the media between peers:
    // the connections stay up. After a resume (same id, the missed events
    // follow) they carry on; after a fresh join our id changed and everyone
    // is a new peer.
    on('reconnected', ({ detail }) => {
      if (!detail?.resumed) this.#removeAll('reconnect');
      if (detail) this.attach(detail);
    });
  }

  /**
   * Connects to every peer of a `joined` message (call with the result of
   * `client.join`): we offer to the peers already there; peers that join
   * later offer to us.
   */
  attach(joined) {
    for (const { peer, meta } of joined.peers) this.#add(peer, meta);
  }

  /** Map of remote peer id -> {peer, pc, meta, channel, polite}. */
  get peers() { return this.#peers; }

  /** Sends `data` on the data channel of every peer whose channel is open; returns how many. */
  send(data) {
    let n = 0;
    for (const { channel } of this.#peers.values()) if (channel?.readyState === 'open') { channel.send(data); n++; }
    return n;
  }

  /** Closes every connection and stops listening to the client (the client stays open). */
  close() {
    this.#removeAll('close');
    for (const [type, fn] of this.#listeners) this.#client.removeEventListener(type, fn);
    this.#listeners = [];
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // `passive`: a peer that joined after us; it sends the first offer (see
  // attach), and we add our tracks and channel only when answering it, so
  // that the first negotiation never starts with glare.
  #add(peer, meta = {}, { passive = false } = {}) {
    if (this.#peers.has(peer)) return this.#peers.get(peer);
    const pc = new this.#opts.RTCPeerConnection(this.#opts.rtcConfig);
    const st = { peer, pc, meta, channel: null, polite: this.#client.peer < peer, passive, makingOffer: false, ignoreOffer: false, queue: Promise.resolve() };
    this.#peers.set(peer, st);
    const fail = (error) => this.#emit('error', { peer, error });

    pc.onnegotiationneeded = async () => {
      try {
        st.makingOffer = true;
        await pc.setLocalDescription();
        await this.#client.signal(peer, { description: pc.localDescription.toJSON() });
      } catch (error) { fail(error); } finally { st.makingOffer = false; }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.#opts.acceptCandidate(candidate.toJSON()))
        this.#client.signal(peer, { candidate: candidate.toJSON() }).catch(fail);
    };
    pc.ontrack = ({ track, streams }) => this.#emit('track', { peer, track, streams });
    pc.onconnectionstatechange = () => this.#emit('connectionstatechange', { peer, state: pc.connectionState });
    this.#emit('peer-added', { peer, meta, pc });
    if (!passive) this.#setup(st);
    return st;
  }

  // Adds the local tracks and the data channel (this makes the offer, or
  // after a remote offer, fills the answer).
  #setup(st) {
    st.passive = false;
    const { peer, pc } = st;
    if (this.#opts.dataChannel) {
      // Negotiated with a fixed id on both sides: no ondatachannel race.
      const channel = pc.createDataChannel(this.#opts.dataChannel, { negotiated: true, id: 0 });
      channel.onmessage = ({ data }) => this.#emit('message', { peer, data });
      st.channel = channel;
      this.#emit('datachannel', { peer, channel });
    }
    for (const track of this.#opts.stream?.getTracks() ?? []) pc.addTrack(track, this.#opts.stream);
  }

  #remove(peer, reason) {
    const st = this.#peers.get(peer);
    if (!st) return;
    this.#peers.delete(peer);
    st.channel?.close();
    st.pc.close();
    this.#emit('peer-removed', { peer, reason });
  }

  #removeAll(reason) { for (const peer of [...this.#peers.keys()]) this.#remove(peer, reason); }

  // Signals of one peer are handled one after the other, in arrival order.
  #onSignal(from, data) {
    if (!data || typeof data !== 'object' || !(data.description || data.candidate)) return;
    const st = this.#add(from);
    st.queue = st.queue.then(() => this.#handle(st, data)).catch((error) => this.#emit('error', { peer: from, error }));
  }

  async #handle(st, { description, candidate }) {
    const { pc } = st;
    if (pc.signalingState === 'closed') return;
    if (description) {
      const collision = description.type === 'offer' && (st.makingOffer || pc.signalingState !== 'stable');
      st.ignoreOffer = !st.polite && collision;
      if (st.ignoreOffer) return; // impolite: our own offer wins
      await pc.setRemoteDescription(description); // polite: rolls back our offer if needed
      if (st.passive) this.#setup(st); // reuses the offer's transceivers
      if (description.type === 'offer') {
        await pc.setLocalDescription();
        await this.#client.signal(st.peer, { description: pc.localDescription.toJSON() });
      }
    } else {
      if (!this.#opts.acceptCandidate(candidate)) return;
      try { await pc.addIceCandidate(candidate); } catch (err) { if (!st.ignoreOffer) throw err; }
    }
  }
}

/**
 * An `acceptCandidate` filter for tests on one machine: only candidates on
 * the loopback interface (127.0.0.0/8, ::1), so no connectivity check ever
 * leaves it. The end-of-candidates marker (empty candidate) passes.
 * @param {RTCIceCandidateInit} init
 */
export function loopbackOnly(init) {
  const text = init?.candidate ?? '';
  if (text === '') return true;
  const address = text.split(' ')[4] ?? '';
  return address.startsWith('127.') || address === '::1';
}
