/**
 * TLCP sessions for session-ID resumption: what a client keeps to resume, and the bounded server-side cache.
 *
 * @module
 */

import type { TlcpCipherSuite } from "./suites.ts";

/** The map key for a session ID: its bytes as a Latin-1 string (no hex formatting per lookup). */
function idKey(id: Uint8Array): string {
  return String.fromCharCode.apply(null, id as unknown as number[]);
}

/** A resumable TLCP session. The master secret is secret: keep sessions in memory only. */
export interface TlcpSession {
  /** The session ID the server assigned (1..32 bytes). */
  readonly id: Uint8Array;
  /** The 48-byte master secret. */
  readonly masterSecret: Uint8Array;
  /** The suite the session was established with. */
  readonly cipher: TlcpCipherSuite;
  /** The peer's certificates (DER) from the full handshake: sign, then enc, then the rest. */
  readonly peerCertificates: readonly Uint8Array[];
  /** When the full handshake completed (ms since the epoch). */
  readonly createdAt: number;
}

/** Options for {@link TlcpSessionCache}. */
export interface TlcpSessionCacheOptions {
  /**
   * Sessions kept at most (least recently used out); default 20480, OpenSSL's and BoringSSL's default cache size (at
   * 1024 an edge that saw more new clients than that between two visits of one client never resumed it).
   */
  readonly maxSize?: number;
  /** How long a session may be resumed, in ms; default one hour. */
  readonly lifetimeMs?: number;
  /** The clock, for tests; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * A server's session cache: bounded in size (LRU) and in age. One instance may be shared by all the engines of a
 * listener; it is synchronous and holds no timers.
 */
export class TlcpSessionCache {
  readonly #map = new Map<string, TlcpSession>();
  readonly #max: number;
  readonly #lifetime: number;
  readonly #now: () => number;

  constructor(options: TlcpSessionCacheOptions = {}) {
    this.#max = Math.max(1, options.maxSize ?? 20480);
    this.#lifetime = options.lifetimeMs ?? 3600_000;
    this.#now = options.now ?? Date.now;
  }

  /** Sessions currently held. */
  get size(): number {
    return this.#map.size;
  }

  /** The clock this cache uses. */
  now(): number {
    return this.#now();
  }

  /** The live session with `id`, or undefined (expired ones are dropped). */
  get(id: Uint8Array): TlcpSession | undefined {
    const key = idKey(id);
    const s = this.#map.get(key);
    if (!s) return undefined;
    this.#map.delete(key);
    if (this.#now() - s.createdAt > this.#lifetime) return undefined;
    this.#map.set(key, s);
    return s;
  }

  /** Stores `session`, evicting the least recently used one when full. */
  set(session: TlcpSession): void {
    const key = idKey(session.id);
    this.#map.delete(key);
    this.#map.set(key, session);
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  /** Forgets the session with `id`. */
  delete(id: Uint8Array): void {
    this.#map.delete(idKey(id));
  }
}
