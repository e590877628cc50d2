/**
 * TLS 1.3 session tickets (RFC 8446 §4.6.1) for stateless resumption, in the format Envoy and BoringSSL use:
 *
 * - {@link SessionTicketKeys}: the server's ticket keys, each 80 bytes = 16-byte key name, 32-byte HMAC-SHA256
 *   key, 32-byte AES-256 key (Envoy's `session_ticket_keys`). The first key seals new tickets; every key opens
 *   them, so keys can be rotated by prepending a new one. A ticket is `key name ‖ IV ‖ AES-256-CBC(state) ‖
 *   HMAC-SHA256(key name ‖ IV ‖ ciphertext)`; it opens only if the MAC verifies under the named key.
 * - {@link TicketState}: what a ticket carries: the suite, the resumption PSK, when it was issued, its lifetime and
 *   `ticket_age_add`, the SNI and ALPN of the original handshake and the client's certificate chain.
 * - {@link Tls13SessionCache}: the client's bounded store of tickets by server (Envoy's `max_session_keys`).
 *
 * The PSK in a ticket is secret: tickets are encrypted, and the client keeps its cache in memory only.
 *
 * @module
 */

import { createCipheriv, createDecipheriv, type Decipheriv, timingSafeEqual } from "node:crypto";
import { Reader, Writer } from "./_codec.ts";

/** The length of one ticket key: 16 name + 32 HMAC + 32 AES bytes (Envoy's `session_ticket_keys` entry). */
export const SESSION_TICKET_KEY_LENGTH = 80;

const NAME = 16;
const IV = 16;
const MAC = 32;
/** Format version of the sealed state; a ticket of another version is not opened. */
const STATE_VERSION = 1;

/**
 * One parsed ticket key, with what each ticket would otherwise rebuild: the HMAC-SHA256 key's inner and outer
 * states (its pads already compressed), and an AES-256-ECB decipher that CBC decryption runs all blocks through at
 * once (CBC decryption is ECB plus an XOR with the previous ciphertext block). `createHmac` and
 * `createDecipheriv` per ticket were most of sealing and opening one (~20 µs each, through node:crypto's stream
 * objects); a full TLS 1.3 handshake seals two tickets and a resumed one opens one too. AES stays in
 * node:crypto's native code (AES-NI, constant time); SHA-256 has no secret-dependent branches or lookups, so the
 * TypeScript compression below is as constant-time as the native one.
 */
interface TicketKey {
  readonly name: Uint8Array;
  readonly aes: Uint8Array;
  readonly inner: Int32Array;
  readonly outer: Int32Array;
  ecb: Decipheriv | undefined;
}

function splitKey(bytes: Uint8Array): TicketKey {
  const pad = new Uint8Array(64);
  const inner = SHA256_IV.slice(), outer = SHA256_IV.slice();
  pad.fill(0x36);
  for (let i = 0; i < 32; i++) pad[i]! ^= bytes[NAME + i]!;
  sha256Compress(inner, pad, 0, SHA256_W);
  pad.fill(0x5c);
  for (let i = 0; i < 32; i++) pad[i]! ^= bytes[NAME + i]!;
  sha256Compress(outer, pad, 0, SHA256_W);
  return {
    name: bytes.slice(0, NAME),
    aes: bytes.slice(NAME + 32, SESSION_TICKET_KEY_LENGTH),
    inner,
    outer,
    ecb: undefined,
  };
}

const SHA256_IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);
const SHA256_K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);
const SHA256_W = new Int32Array(64);

/** One SHA-256 compression (FIPS 180-4 §6.2.2) of `b[off, off + 64)` into `st`. */
function sha256Compress(st: Int32Array, b: Uint8Array, off: number, w: Int32Array): void {
  for (let i = 0; i < 16; i++, off += 4) {
    w[i] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!, y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = st[0]!, bb = st[1]!, c = st[2]!, d = st[3]!, e = st[4]!, f = st[5]!, g = st[6]!, h = st[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + SHA256_K[i]! + w[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
    h = g, g = f, f = e, e = (d + t1) | 0, d = c, c = bb, bb = a, a = (t1 + t2) | 0;
  }
  st[0] = (st[0]! + a) | 0, st[1] = (st[1]! + bb) | 0, st[2] = (st[2]! + c) | 0, st[3] = (st[3]! + d) | 0;
  st[4] = (st[4]! + e) | 0, st[5] = (st[5]! + f) | 0, st[6] = (st[6]! + g) | 0, st[7] = (st[7]! + h) | 0;
}

/** SHA-256 from state `st` (which already absorbed `done` bytes) over `data`, padded: the 32-byte digest. */
function sha256Finish(st: Int32Array, done: number, data: Uint8Array): Uint8Array {
  const n = data.length;
  let off = 0;
  for (; off + 64 <= n; off += 64) sha256Compress(st, data, off, SHA256_W);
  const rest = n - off;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(data.subarray(off));
  tail[rest] = 0x80;
  const bits = (done + n) * 8;
  const end = tail.length;
  tail[end - 5] = bits / 0x100000000; // lengths here are far below 2^32 bytes
  tail[end - 4] = bits >>> 24, tail[end - 3] = bits >>> 16, tail[end - 2] = bits >>> 8, tail[end - 1] = bits;
  for (let i = 0; i < end; i += 64) sha256Compress(st, tail, i, SHA256_W);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = st[i]!;
    out[4 * i] = v >>> 24, out[4 * i + 1] = v >>> 16, out[4 * i + 2] = v >>> 8, out[4 * i + 3] = v;
  }
  return out;
}

/** HMAC-SHA256 (RFC 2104) of `data` under `key`. Exported for tests (checked against node:crypto). */
export function ticketHmac(
  key: { readonly inner: Int32Array; readonly outer: Int32Array },
  data: Uint8Array,
): Uint8Array {
  const inner = sha256Finish(key.inner.slice(), 64, data);
  return sha256Finish(key.outer.slice(), 64, inner);
}

/** The HMAC states of an 80-byte ticket key (tests). */
export function ticketHmacKey(bytes: Uint8Array): { readonly inner: Int32Array; readonly outer: Int32Array } {
  return splitKey(bytes);
}

/** AES-256-CBC decryption of `ct` (whole blocks) with PKCS#7 padding removed; undefined when the padding is bad. */
function cbcDecrypt(key: TicketKey, iv: Uint8Array, ct: Uint8Array): Uint8Array | undefined {
  if (key.ecb === undefined) {
    key.ecb = createDecipheriv("aes-256-ecb", key.aes, null);
    key.ecb.setAutoPadding(false);
  }
  const d = key.ecb.update(ct);
  if (d.length !== ct.length) {
    key.ecb = undefined; // out of step: never reuse it
    return undefined;
  }
  const out = new Uint8Array(d.buffer, d.byteOffset, d.length);
  for (let i = 0; i < 16; i++) out[i]! ^= iv[i]!;
  for (let i = 16; i < out.length; i++) out[i]! ^= ct[i - 16]!;
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > 16) return undefined;
  let bad = 0;
  for (let i = out.length - pad; i < out.length; i++) bad |= out[i]! ^ pad;
  return bad === 0 ? out.slice(0, out.length - pad) : undefined;
}

/**
 * A server's ticket keys. Construct with 80-byte keys (a `RangeError` names the index of a key of another length),
 * or {@link SessionTicketKeys.random} for one random key (Envoy's behaviour with no keys configured: tickets then
 * resume only on this process).
 */
export class SessionTicketKeys {
  readonly #keys: readonly TicketKey[];

  /** `keys[0]` seals; all open. */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new RangeError("session ticket keys: at least one key is required");
    keys.forEach((k, i) => {
      if (k.length !== SESSION_TICKET_KEY_LENGTH) {
        throw new RangeError(
          `session ticket key ${i} is ${k.length} bytes, expected ${SESSION_TICKET_KEY_LENGTH}`,
        );
      }
    });
    this.#keys = keys.map(splitKey);
  }

  /** One random key. */
  static random(): SessionTicketKeys {
    return new SessionTicketKeys([crypto.getRandomValues(new Uint8Array(SESSION_TICKET_KEY_LENGTH))]);
  }

  /** How many keys open tickets. */
  get size(): number {
    return this.#keys.length;
  }

  /** Encrypts and authenticates `plaintext` under the first key. */
  seal(plaintext: Uint8Array): Uint8Array {
    const key = this.#keys[0]!;
    const iv = crypto.getRandomValues(new Uint8Array(IV));
    const cipher = createCipheriv("aes-256-cbc", key.aes, iv);
    const a = cipher.update(plaintext);
    const b = cipher.final();
    const out = new Uint8Array(NAME + IV + a.length + b.length + MAC);
    out.set(key.name, 0);
    out.set(iv, NAME);
    out.set(a, NAME + IV);
    out.set(b, NAME + IV + a.length);
    const macEnd = out.length - MAC;
    out.set(ticketHmac(key, out.subarray(0, macEnd)), macEnd);
    return out;
  }

  /** The plaintext of `ticket`, or undefined when no key names it, the MAC fails, or it does not decrypt. */
  open(ticket: Uint8Array): Uint8Array | undefined {
    // Name, IV, at least one AES block, MAC.
    if (ticket.length < NAME + IV + 16 + MAC || (ticket.length - NAME - IV - MAC) % 16 !== 0) return undefined;
    const name = ticket.subarray(0, NAME);
    const key = this.#keys.find((k) => timingSafeEqual(k.name, name));
    if (!key) return undefined;
    const macEnd = ticket.length - MAC;
    const mac = ticketHmac(key, ticket.subarray(0, macEnd));
    if (!timingSafeEqual(mac, ticket.subarray(macEnd))) return undefined;
    try {
      return cbcDecrypt(key, ticket.subarray(NAME, NAME + IV), ticket.subarray(NAME + IV, macEnd));
    } catch {
      return undefined;
    }
  }
}

/** The resumption state a server seals into a ticket. */
export interface TicketState {
  /** The cipher suite code point of the original handshake. */
  readonly suite: number;
  /** The resumption PSK (HKDF-Expand-Label(resumption_master_secret, "resumption", nonce)). */
  readonly psk: Uint8Array;
  /** When the ticket was issued, ms since the epoch. */
  readonly issuedAt: number;
  /** Ticket lifetime in seconds. */
  readonly lifetime: number;
  /** The `ticket_age_add` sent with the ticket. */
  readonly ageAdd: number;
  /** SNI of the original handshake ("" for none). */
  readonly sni: string;
  /** ALPN of the original handshake ("" for none). */
  readonly alpn: string;
  /** The client's certificate chain (DER, leaf first), empty if it sent none. */
  readonly peerCertificates: readonly Uint8Array[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serialises a {@link TicketState} (before sealing). */
export function encodeTicketState(s: TicketState): Uint8Array {
  const w = new Writer(128 + s.peerCertificates.reduce((n, c) => n + c.length + 3, 0));
  w.u8(STATE_VERSION).u16(s.suite).u32(Math.floor(s.issuedAt / 0x100000000)).u32(s.issuedAt >>> 0);
  w.u32(s.lifetime).u32(s.ageAdd >>> 0);
  w.vec8(s.psk).vec8(encoder.encode(s.sni)).vec8(encoder.encode(s.alpn));
  w.vec(3, (w) => {
    for (const c of s.peerCertificates) w.vec24(c);
  });
  return w.finish();
}

/** Parses what {@link encodeTicketState} wrote; undefined if it is not a state of this version. */
export function decodeTicketState(bytes: Uint8Array): TicketState | undefined {
  try {
    const r = new Reader(bytes, "session ticket");
    if (r.u8() !== STATE_VERSION) return undefined;
    const suite = r.u16();
    const issuedAt = r.u32() * 0x100000000 + r.u32();
    const lifetime = r.u32();
    const ageAdd = r.u32();
    const psk = r.vec8(1).slice();
    const sni = decoder.decode(r.vec8());
    const alpn = decoder.decode(r.vec8());
    const lr = new Reader(r.vec24(), "session ticket certificates");
    r.end();
    const peerCertificates: Uint8Array[] = [];
    while (lr.remaining > 0) peerCertificates.push(lr.vec24(1).slice());
    return { suite, psk, issuedAt, lifetime, ageAdd, sni, alpn, peerCertificates };
  } catch {
    return undefined;
  }
}

/** A ticket the client holds, with what it needs to resume. */
export interface Tls13ClientSession {
  /** The opaque ticket from NewSessionTicket. */
  readonly ticket: Uint8Array;
  /** The cipher suite code point of the handshake that issued it (its hash must match on resumption). */
  readonly suite: number;
  /** The resumption PSK. */
  readonly psk: Uint8Array;
  /** When the ticket arrived, ms since the epoch. */
  readonly receivedAt: number;
  /** Lifetime in seconds (at most 7 days, RFC 8446 §4.6.1). */
  readonly lifetime: number;
  /** `ticket_age_add`. */
  readonly ageAdd: number;
  /** ALPN of the handshake that issued it. */
  readonly alpn: string | undefined;
  /** The server's certificate chain from the full handshake (DER, leaf first). */
  readonly peerCertificates: readonly Uint8Array[];
}

/** Options of {@link Tls13SessionCache}. */
export interface Tls13SessionCacheOptions {
  /** Servers (cache keys) remembered at most, least recently used out (Envoy `max_session_keys`, default 1). */
  readonly maxKeys?: number | undefined;
  /** Tickets kept per server (default 4; the newest is used first). */
  readonly ticketsPerKey?: number | undefined;
  /** Clock, ms since the epoch (tests). */
  readonly now?: (() => number) | undefined;
}

/**
 * The client's ticket store: a few tickets per server, a bounded number of servers. A ticket is taken out when it
 * is offered (single use, RFC 8446 §C.4), and the server's next NewSessionTicket refills the slot. Synchronous,
 * no timers; one per cluster transport socket.
 */
export class Tls13SessionCache {
  readonly #map = new Map<string, Tls13ClientSession[]>();
  readonly #maxKeys: number;
  readonly #perKey: number;
  readonly #now: () => number;

  constructor(options: Tls13SessionCacheOptions = {}) {
    this.#maxKeys = Math.max(0, options.maxKeys ?? 1);
    this.#perKey = Math.max(1, options.ticketsPerKey ?? 4);
    this.#now = options.now ?? Date.now;
  }

  /** The clock this cache uses. */
  now(): number {
    return this.#now();
  }

  /** Servers with at least one ticket. */
  get size(): number {
    return this.#map.size;
  }

  /** Removes and returns the newest live ticket for `key`; expired ones are dropped. */
  take(key: string): Tls13ClientSession | undefined {
    const list = this.#map.get(key);
    if (!list) return undefined;
    const now = this.#now();
    let s: Tls13ClientSession | undefined;
    while ((s = list.pop()) !== undefined) {
      if (now - s.receivedAt < s.lifetime * 1000) break;
    }
    if (list.length === 0) this.#map.delete(key);
    return s;
  }

  /** Stores `session` for `key` (most recently used), evicting the oldest ticket or server when full. */
  put(key: string, session: Tls13ClientSession): void {
    if (this.#maxKeys === 0 || session.lifetime === 0) return;
    const list = this.#map.get(key) ?? [];
    this.#map.delete(key);
    list.push(session);
    while (list.length > this.#perKey) list.shift();
    this.#map.set(key, list);
    while (this.#map.size > this.#maxKeys) this.#map.delete(this.#map.keys().next().value!);
  }
}
