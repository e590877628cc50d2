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

import { type Cipheriv, createCipheriv, createDecipheriv, type Decipheriv, timingSafeEqual } from "node:crypto";
import { HmacKey, SHA256 } from "../../../crypto/mod.ts";
import { Reader, Writer } from "./_codec.ts";

/** The length of one ticket key: 16 name + 32 HMAC + 32 AES bytes (Envoy's `session_ticket_keys` entry). */
export const SESSION_TICKET_KEY_LENGTH = 80;

const NAME = 16;
const IV = 16;
const MAC = 32;
/** Format version of the sealed state; a ticket of another version is not opened. */
const STATE_VERSION = 1;

/**
 * One parsed ticket key, with what each ticket would otherwise rebuild: its HMAC-SHA256 key (pads hashed once) and
 * an AES-256-ECB decipher that CBC decryption runs all blocks through at once (CBC decryption is ECB plus an XOR
 * with the previous ciphertext block). `createHmac` and `createDecipheriv` per ticket were most of sealing and
 * opening one (~20 µs each, through node:crypto's stream objects); a full TLS 1.3 handshake seals two tickets and
 * a resumed one also opens one. AES stays in node:crypto's native code; the HMAC is TypeScript (`SHA256`'s).
 */
interface TicketKey {
  readonly name: Uint8Array;
  readonly aes: Uint8Array;
  readonly mac: HmacKey;
  ecb: Decipheriv | undefined;
  /** A long-lived AES-256-CBC cipher for sealing (see {@link cbcEncrypt}), and the last block it output. */
  cbc: Cipheriv | undefined;
  readonly last: Uint8Array;
}

function splitKey(bytes: Uint8Array): TicketKey {
  return {
    name: bytes.slice(0, NAME),
    aes: bytes.slice(NAME + 32, SESSION_TICKET_KEY_LENGTH),
    mac: new HmacKey(SHA256, bytes.subarray(NAME, NAME + 32)),
    ecb: undefined,
    cbc: undefined,
    last: new Uint8Array(16),
  };
}

/**
 * AES-256-CBC encryption of `plaintext` with PKCS#7 padding under `iv`, through one cipher object per key for all
 * tickets (a `createCipheriv` per ticket built a stream object and ~6 arrays, ~6 µs). The object keeps chaining
 * from the last block it output, so the first block goes in as P1 ⊕ IV ⊕ last: the cipher XORs `last` back
 * out, and the ciphertext is exactly CBC(key, IV, plaintext).
 */
function cbcEncrypt(key: TicketKey, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const pad = 16 - (plaintext.length % 16);
  const input = new Uint8Array(plaintext.length + pad);
  input.set(plaintext);
  input.fill(pad, plaintext.length);
  if (key.cbc === undefined) {
    key.cbc = createCipheriv("aes-256-cbc", key.aes, new Uint8Array(16));
    key.cbc.setAutoPadding(false);
    key.last.fill(0);
  }
  const last = key.last;
  for (let i = 0; i < 16; i++) input[i]! ^= iv[i]! ^ last[i]!;
  const c = key.cbc.update(input);
  if (c.length !== input.length) {
    // Out of step (never seen): drop the object and encrypt this one on its own.
    key.cbc = undefined;
    for (let i = 0; i < 16; i++) input[i]! ^= last[i]!;
    const one = createCipheriv("aes-256-cbc", key.aes, new Uint8Array(16));
    one.setAutoPadding(false);
    return new Uint8Array(one.update(input));
  }
  const ct = new Uint8Array(c.buffer, c.byteOffset, c.length);
  last.set(ct.subarray(ct.length - 16));
  return ct;
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
    const ctLength = plaintext.length + 16 - (plaintext.length % 16);
    const out = new Uint8Array(NAME + IV + ctLength + MAC);
    out.set(key.name, 0);
    const iv = crypto.getRandomValues(out.subarray(NAME, NAME + IV));
    out.set(cbcEncrypt(key, iv, plaintext), NAME + IV);
    const macEnd = out.length - MAC;
    out.set(key.mac.mac(out.subarray(0, macEnd)), macEnd);
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
    const mac = key.mac.mac(ticket.subarray(0, macEnd));
    if (!timingSafeEqual(mac, ticket.subarray(macEnd))) return undefined;
    try {
      return cbcDecrypt(key, ticket.subarray(NAME, NAME + IV), ticket.subarray(NAME + IV, macEnd));
    } catch {
      key.ecb = undefined; // a decipher that threw is not reused
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
