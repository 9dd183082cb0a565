// Type declarations for negotiation.js, the optional perfect-negotiation
// helper of sigstream.js (see docs/client.md).
import type { SigstreamClient, JoinedMessage, Json } from './sigstream.js';

export interface MeshPeer {
  peer: string;
  pc: RTCPeerConnection;
  meta: { [key: string]: Json };
  /** The negotiated data channel, or null (none configured, or not set up yet). */
  channel: RTCDataChannel | null;
  /** True when our own peer id sorts lower than this peer's. */
  polite: boolean;
}

export interface PeerMeshOptions {
  rtcConfig?: RTCConfiguration;
  stream?: MediaStream | null;
  /** Label of a negotiated data channel (id 0) opened with every peer; null for none. Default 'chat'. */
  dataChannel?: string | null;
  RTCPeerConnection?: typeof RTCPeerConnection;
  /** ICE candidates (ours and the remote's) for which this returns false are neither sent nor added. */
  acceptCandidate?: (candidate: RTCIceCandidateInit) => boolean;
}

/** acceptCandidate filter keeping only loopback candidates (127.0.0.0/8, ::1): for tests on one machine. */
export function loopbackOnly(candidate: RTCIceCandidateInit): boolean;

export interface PeerMeshEventMap {
  'peer-added': CustomEvent<{ peer: string; meta: { [key: string]: Json }; pc: RTCPeerConnection }>;
  'peer-removed': CustomEvent<{ peer: string; reason: 'leave' | 'disconnect' | 'expired' | 'reconnect' | 'close' }>;
  'track': CustomEvent<{ peer: string; track: MediaStreamTrack; streams: readonly MediaStream[] }>;
  'datachannel': CustomEvent<{ peer: string; channel: RTCDataChannel }>;
  'message': CustomEvent<{ peer: string; data: any }>;
  'connectionstatechange': CustomEvent<{ peer: string; state: RTCPeerConnectionState }>;
  'error': CustomEvent<{ peer: string; error: Error }>;
}

export class PeerMesh extends EventTarget {
  constructor(client: SigstreamClient, options?: PeerMeshOptions);
  /** Connects to every peer of a `joined` message (the result of `client.join`). */
  attach(joined: JoinedMessage): void;
  readonly peers: Map<string, MeshPeer>;
  /** Sends on every open data channel; returns how many. */
  send(data: string | Blob | ArrayBuffer | ArrayBufferView): number;
  /** Closes every connection and stops listening to the client. */
  close(): void;
  addEventListener<K extends keyof PeerMeshEventMap>(type: K, listener: (ev: PeerMeshEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof PeerMeshEventMap>(type: K, listener: (ev: PeerMeshEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
