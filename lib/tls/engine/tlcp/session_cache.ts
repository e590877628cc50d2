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
 * What caches that {@link TlcpSessionCache.shareAs} the same name pass each other: a session one stored, or the ID of
 * one it forgot.
 */
interface ShareMessage {
  readonly name: string;
  readonly session?: TlcpSession;
  readonly id?: Uint8Array;
}

/** The channel between this isolate and the process's other event loops, opened by the first sharing cache. */
let channel: BroadcastChannel | undefined;
/** This isolate's sharing caches by name; a context replaced by a config update drops out with its cache. */
const sharing = new Map<string, WeakRef<TlcpSessionCache>>();

function shareChannel(): BroadcastChannel {
  if (channel) return channel;
  channel = new BroadcastChannel("ferry.tlcp-sessions");
  const onMessage = (e: MessageEvent<ShareMessage>) => sharing.get(e.data.name)?.deref()?.receive(e.data);
  channel.onmessage = onMessage;
  return channel;
}

/**
 * A server's session cache: bounded in size (LRU) and in age. One instance may be shared by all the engines of a
 * listener; it is synchronous and holds no timers.
 *
 * **Across event loops.** With `--concurrency N` every event loop (the main thread and each worker) has its own
 * listener contexts, and `SO_REUSEPORT` hands a client's next connection to any of them: a cache per loop resumed
 * a client only when it came back to the same loop (one time in N). A cache that {@link shareAs} a name posts each
 * session it stores, and each ID it forgets, to the caches of that name in the other loops (a `BroadcastChannel`:
 * one structured clone per full handshake), the way nginx's workers share `ssl_session_cache shared:` and Envoy's
 * threads one `SSL_CTX`. A session arrives a turn of the other loop later; a client that comes back sooner does a
 * full handshake.
 */
export class TlcpSessionCache {
  readonly #map = new Map<string, TlcpSession>();
  readonly #max: number;
  readonly #lifetime: number;
  readonly #now: () => number;
  #shareName: string | undefined;

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
    this.#store(session);
    if (this.#shareName !== undefined) channel!.postMessage({ name: this.#shareName, session });
  }

  /** Forgets the session with `id`. */
  delete(id: Uint8Array): void {
    this.#map.delete(idKey(id));
    if (this.#shareName !== undefined) channel!.postMessage({ name: this.#shareName, id });
  }

  /**
   * Shares this cache's sessions with the caches of `name` in the process's other event loops (see the class doc);
   * `name` says which context it serves (its config path), the same in every loop.
   */
  shareAs(name: string): void {
    this.#shareName = name;
    sharing.set(name, new WeakRef(this));
    shareChannel();
  }

  /** Applies what a cache of the same name in another event loop stored or forgot (from the channel). */
  receive(m: ShareMessage): void {
    if (m.session) this.#store(m.session);
    else if (m.id) this.#map.delete(idKey(m.id));
  }

  #store(session: TlcpSession): void {
    const key = idKey(session.id);
    this.#map.delete(key);
    this.#map.set(key, session);
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }
}
