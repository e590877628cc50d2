/**
 * The TLCP record layer (GB/T 38636-2020 §6.3): framing, size limits, sequence numbers and the two protections,
 * SM4-CBC with HMAC-SM3 (MAC-then-encrypt, explicit per-record IV) and SM4-GCM (TLS 1.2-style AEAD with a 4-byte
 * implicit and 8-byte explicit nonce). Sans-I/O: bytes in with {@link TlcpRecordLayer.push}, records out with
 * {@link TlcpRecordLayer.next}; {@link TlcpRecordLayer.seal} frames (and protects) outgoing data.
 *
 * @module
 */

import { type HmacKey, hmacSm3Key, Sm4Cbc, Sm4CbcWasm, Sm4Simd } from "../../../crypto/mod.ts";
import { LazySm4Aead } from "../_lazy_aead.ts";
import { TlcpFatal } from "./_codec.ts";
import { TLCP_VERSION } from "./suites.ts";

/** Record content types. */
export const ContentType = { ccs: 20, alert: 21, handshake: 22, applicationData: 23 } as const;

/** The largest plaintext fragment, 2^14. */
export const MAX_PLAINTEXT = 1 << 14;

/** The largest protected fragment we accept: 2^14 + 2048 (RFC 5246 §6.2.3). */
export const MAX_CIPHERTEXT = MAX_PLAINTEXT + 2048;

/** Empty records in a row after which a peer is flooding us. */
const MAX_EMPTY_RECORDS = 32;

const MAC_LENGTH = 32;
const BLOCK = 16;

/** Protection of one direction: seals a fragment into a record body, opens a record body into a fragment. */
export interface RecordProtection {
  /** The body length of a record protecting `plaintextLength` bytes. */
  sealedLength(plaintextLength: number): number;
  /**
   * Protects `plaintext` (at most 2^14 bytes) as record `seq` of `type` into `out` at `offset`, which must have
   * {@link RecordProtection.sealedLength} bytes; returns that length. `out` must not overlap `plaintext`.
   */
  sealInto(type: number, seq: number, plaintext: Uint8Array, out: Uint8Array, offset: number): number;
  /** Protects `plaintext` (at most 2^14 bytes) as record `seq` of `type`; returns a new record body. */
  seal(type: number, seq: number, plaintext: Uint8Array): Uint8Array;
  /**
   * Opens a record body; throws a {@link TlcpFatal} (`bad_record_mac`) when it does not authenticate. The result
   * may live in a buffer of the protection's (or in `body`): it is only valid until the next call.
   */
  open(type: number, seq: number, body: Uint8Array): Uint8Array;
}

/** Writes seq_num(8) || type(1) || version(2) || length(2), the MAC / AAD header, into `h` (13 bytes). */
function pseudoHeader(h: Uint8Array, seq: number, type: number, length: number): Uint8Array {
  const hi = Math.floor(seq / 0x1_0000_0000), lo = seq >>> 0;
  h[0] = hi >>> 24;
  h[1] = hi >>> 16;
  h[2] = hi >>> 8;
  h[3] = hi;
  h[4] = lo >>> 24;
  h[5] = lo >>> 16;
  h[6] = lo >>> 8;
  h[7] = lo;
  h[8] = type;
  h[9] = TLCP_VERSION >>> 8;
  h[10] = TLCP_VERSION & 0xff;
  h[11] = length >>> 8;
  h[12] = length;
  return h;
}

/**
 * Records below this many bytes always go to the TypeScript SM4 (building a WebAssembly instance costs more than
 * it saves on a handshake-sized record).
 */
const CBC_WASM_MIN_BYTES = 512;
/**
 * Bytes a CBC key protects in records of at least {@link CBC_WASM_MIN_BYTES} before it gets its WebAssembly
 * kernels (as `LazySm4Aead` does for GCM): a full handshake installs two keys that mostly protect a Finished and
 * a few short records; only keys that carry bulk data pay for instances.
 */
const CBC_WASM_AFTER_BYTES = 16 * 1024;

/**
 * SM4-CBC for one key, built lazily: TypeScript ({@link Sm4Cbc}) for small records and a key's first
 * {@link CBC_WASM_AFTER_BYTES} of large ones, then the WebAssembly kernels: the scalar one for encryption (CBC
 * encryption is serial) and the SIMD one for decryption, into a reusable buffer, when the runtime has it.
 */
class LazySm4Cbc {
  readonly #key: Uint8Array;
  #small: Sm4Cbc | undefined;
  #enc: Sm4CbcWasm | Sm4Cbc | undefined;
  #dec: Sm4Simd | Sm4CbcWasm | Sm4Cbc | undefined;
  #encBytes = 0;
  #decBytes = 0;
  #decOut = new Uint8Array(0);

  constructor(key: Uint8Array) {
    this.#key = key.slice();
  }

  #js(): Sm4Cbc {
    return (this.#small ??= new Sm4Cbc(this.#key));
  }

  /** CBC-encrypts whole blocks; returns a new array. */
  encrypt(iv: Uint8Array, data: Uint8Array): Uint8Array {
    if (this.#enc === undefined && data.length >= CBC_WASM_MIN_BYTES) {
      this.#encBytes += data.length;
      if (this.#encBytes > CBC_WASM_AFTER_BYTES) this.#enc = wasmCbc(this.#key) ?? this.#js();
    }
    const c = this.#enc !== undefined && data.length >= CBC_WASM_MIN_BYTES ? this.#enc : this.#js();
    return c.encrypt(iv, data, NO_PADDING);
  }

  /** CBC-decrypts whole blocks; the result may be a buffer reused by the next call. */
  decrypt(iv: Uint8Array, data: Uint8Array): Uint8Array {
    if (this.#dec === undefined && data.length >= CBC_WASM_MIN_BYTES) {
      this.#decBytes += data.length;
      if (this.#decBytes > CBC_WASM_AFTER_BYTES) this.#dec = simdCbc(this.#key) ?? wasmCbc(this.#key) ?? this.#js();
    }
    const d = this.#dec !== undefined && data.length >= CBC_WASM_MIN_BYTES ? this.#dec : this.#js();
    if (d instanceof Sm4Simd) {
      if (this.#decOut.length < data.length) this.#decOut = new Uint8Array(Math.max(data.length, 2048));
      return d.decryptCbc(iv, data, this.#decOut).subarray(0, data.length);
    }
    return d.decrypt(iv, data, NO_PADDING);
  }
}

const NO_PADDING = { padding: "none" } as const;

function wasmCbc(key: Uint8Array): Sm4CbcWasm | undefined {
  try {
    return new Sm4CbcWasm(key);
  } catch {
    return undefined;
  }
}

function simdCbc(key: Uint8Array): Sm4Simd | undefined {
  try {
    return Sm4Simd.available() ? new Sm4Simd(key) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SM4-CBC + HMAC-SM3: `IV(16) || SM4-CBC(fragment || MAC(32) || padding || padding_length)`, MAC over the pseudo
 * header and the fragment. Opening does the same work whatever the padding byte says (the padding check scans a
 * fixed window, the MAC hashes the same number of bytes, and the result is one combined flag), so the branch
 * structure leaks nothing about where the padding failed (Lucky Thirteen); SM3's block count still varies by at
 * most one compression, as in most TLS stacks.
 */
export class CbcSm3Protection implements RecordProtection {
  readonly #cbc: LazySm4Cbc;
  readonly #mac: HmacKey;
  readonly #header = GCM_HEADER; // per-call scratch, shared (see GcmProtection)

  constructor(encKey: Uint8Array, macKey: Uint8Array) {
    this.#cbc = new LazySm4Cbc(encKey);
    this.#mac = hmacSm3Key(macKey);
  }

  sealedLength(plaintextLength: number): number {
    const inner = plaintextLength + MAC_LENGTH + 1;
    return BLOCK + inner + (BLOCK - (inner % BLOCK)) % BLOCK;
  }

  sealInto(type: number, seq: number, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    const len = this.sealedLength(plaintext.length);
    const mac = this.#mac.mac(pseudoHeader(this.#header, seq, type, plaintext.length), plaintext);
    const body = out.subarray(offset, offset + len);
    const iv = body.subarray(0, BLOCK);
    crypto.getRandomValues(iv);
    body.set(plaintext, BLOCK);
    body.set(mac, BLOCK + plaintext.length);
    body.fill(len - BLOCK - plaintext.length - MAC_LENGTH - 1, BLOCK + plaintext.length + MAC_LENGTH);
    body.set(this.#cbc.encrypt(iv, body.subarray(BLOCK)), BLOCK);
    return len;
  }

  seal(type: number, seq: number, plaintext: Uint8Array): Uint8Array {
    const body = new Uint8Array(this.sealedLength(plaintext.length));
    this.sealInto(type, seq, plaintext, body, 0);
    return body;
  }

  open(type: number, seq: number, body: Uint8Array): Uint8Array {
    const n = body.length - BLOCK;
    if (n < MAC_LENGTH + BLOCK || n % BLOCK !== 0) {
      throw new TlcpFatal("bad_record_mac", "tlcp: CBC record has an impossible length");
    }
    const pt = this.#cbc.decrypt(body.subarray(0, BLOCK), body.subarray(BLOCK));
    const padLen = pt[n - 1]!;
    const maxPad = Math.min(255, n - MAC_LENGTH - 1); // public
    // padOk is all ones (−1) when padLen <= maxPad, else 0.
    const padOk = ~((maxPad - padLen) >> 31);
    const eff = padLen & padOk;
    let bad = ~padOk & 1;
    for (let i = 1; i <= maxPad; i++) {
      const inPad = ~((eff - i) >> 31); // −1 when i <= eff
      bad |= inPad & (pt[n - 1 - i]! ^ eff);
    }
    const dataLen = n - MAC_LENGTH - 1 - eff;
    const mac = this.#mac.mac(pseudoHeader(this.#header, seq, type, dataLen), pt.subarray(0, dataLen));
    // Hash as many bytes again as the padding took, so the MAC work does not depend on it.
    this.#mac.mac(pt.subarray(dataLen, dataLen + eff));
    for (let i = 0; i < MAC_LENGTH; i++) bad |= mac[i]! ^ pt[dataLen + i]!;
    if (bad !== 0) throw new TlcpFatal("bad_record_mac", "tlcp: bad record MAC");
    return pt.subarray(0, dataLen);
  }
}

const GCM_NONCE = new Uint8Array(12);
const GCM_HEADER = new Uint8Array(13);
const EMPTY = new Uint8Array(0);

/**
 * SM4-GCM: `explicit_nonce(8) || ciphertext || tag(16)`, nonce = implicit IV(4) || explicit, AAD = header. The
 * AEAD is a {@link LazySm4Aead}: TypeScript for handshake-sized records, WebAssembly once the key carries bulk data.
 */
export class GcmProtection implements RecordProtection {
  readonly #aead: LazySm4Aead;
  /** The implicit IV (4 bytes, big-endian): copied into the shared nonce scratch per record. */
  readonly #iv: number;
  // Per-call scratch shared by every instance (a call never runs inside another): two typed arrays fewer per
  // direction and connection, at ~0.5 µs each on Deno.
  readonly #nonce = GCM_NONCE;
  readonly #header = GCM_HEADER;
  #openOut = EMPTY;

  constructor(key: Uint8Array, implicitIv: Uint8Array) {
    this.#aead = new LazySm4Aead("gcm", key);
    this.#iv = ((implicitIv[0]! << 24) | (implicitIv[1]! << 16) | (implicitIv[2]! << 8) | implicitIv[3]!) >>> 0;
  }

  #setIv(): void {
    const n = this.#nonce, v = this.#iv;
    n[0] = v >>> 24, n[1] = v >>> 16, n[2] = v >>> 8, n[3] = v;
  }

  sealedLength(plaintextLength: number): number {
    return 8 + plaintextLength + 16;
  }

  sealInto(type: number, seq: number, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    const aad = pseudoHeader(this.#header, seq, type, plaintext.length);
    const len = 8 + plaintext.length + 16;
    this.#setIv();
    for (let i = 0; i < 8; i++) out[offset + i] = this.#nonce[4 + i] = aad[i]!; // the explicit nonce is the seq
    this.#aead.sealInto(this.#nonce, plaintext, aad, out.subarray(offset + 8, offset + len));
    return len;
  }

  seal(type: number, seq: number, plaintext: Uint8Array): Uint8Array {
    const body = new Uint8Array(this.sealedLength(plaintext.length));
    this.sealInto(type, seq, plaintext, body, 0);
    return body;
  }

  open(type: number, seq: number, body: Uint8Array): Uint8Array {
    if (body.length < 8 + 16) throw new TlcpFatal("bad_record_mac", "tlcp: GCM record is too short");
    const len = body.length - 24;
    this.#setIv();
    for (let i = 0; i < 8; i++) this.#nonce[4 + i] = body[i]!;
    // One output buffer per direction, grown to the largest record seen (the result is valid until the next call).
    if (this.#openOut.length < len + 16) this.#openOut = new Uint8Array(Math.max(len + 16, 1024));
    const out = this.#openOut;
    const n = this.#aead.openInto(this.#nonce, body.subarray(8), pseudoHeader(this.#header, seq, type, len), out);
    if (n < 0) throw new TlcpFatal("bad_record_mac", "tlcp: bad record MAC");
    return out.subarray(0, n);
  }
}

/** A decoded record. `payload` is only valid until the next call into the layer. */
export interface TlcpRecord {
  readonly type: number;
  readonly payload: Uint8Array;
}

/**
 * Frames and protects records. Incoming bytes may arrive in any split; `next` yields whole records, checks
 * version, type and size limits, decrypts, and counts empty records (a flood of them is `unexpected_message`).
 */
export class TlcpRecordLayer {
  /** What `next` parses, `#buf[#start..#end)`: the owned buffer, or the caller's bytes (see `pushBorrowed`). */
  #buf: Uint8Array = EMPTY;
  #own: Uint8Array = this.#buf;
  #borrowed = false;
  #start = 0;
  #end = 0;
  #read: RecordProtection | undefined;
  #readSeq = 0;
  #write: RecordProtection | undefined;
  #writeSeq = 0;
  #empties = 0;
  #first = true;

  /** True once outgoing records are protected. */
  get writeProtected(): boolean {
    return this.#write !== undefined;
  }

  /** True once incoming records are protected. */
  get readProtected(): boolean {
    return this.#read !== undefined;
  }

  /** Starts protecting incoming records (after the peer's ChangeCipherSpec); the sequence number restarts. */
  setReadProtection(p: RecordProtection): void {
    this.#read = p;
    this.#readSeq = 0;
  }

  /** Starts protecting outgoing records (after our ChangeCipherSpec); the sequence number restarts. */
  setWriteProtection(p: RecordProtection): void {
    this.#write = p;
    this.#writeSeq = 0;
  }

  /** Bytes buffered but not yet a whole record. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Appends ciphertext from the peer (copied). */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.#borrowed) this.release();
    if (this.#end + data.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(live + data.length, Math.min(this.#buf.length * 2, 5 + MAX_CIPHERTEXT + data.length));
      const next = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = this.#own = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(data, this.#end);
    this.#end += data.length;
  }

  /**
   * Like {@link TlcpRecordLayer.push}, but when nothing is buffered the layer parses `data` in place instead of
   * copying it (whole records in one read, the common case); the caller must call
   * {@link TlcpRecordLayer.release} before `data` stops being valid.
   */
  pushBorrowed(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.#borrowed || this.#end > this.#start) return this.push(data);
    this.#buf = data;
    this.#borrowed = true;
    this.#start = 0;
    this.#end = data.length;
  }

  /** Copies what is left of borrowed bytes (a partial record) into the layer's own buffer. */
  release(): void {
    if (!this.#borrowed) return;
    const live = this.#buf.subarray(this.#start, this.#end);
    this.#borrowed = false;
    this.#buf = this.#own;
    this.#start = this.#end = 0;
    if (live.length > 0) this.push(live);
  }

  /** The next whole record, or undefined when more bytes are needed. Throws {@link TlcpFatal}. */
  next(): TlcpRecord | undefined {
    const avail = this.#end - this.#start;
    if (avail < 5) return undefined;
    const b = this.#buf, s = this.#start;
    const type = b[s]!;
    const version = (b[s + 1]! << 8) | b[s + 2]!;
    const length = (b[s + 3]! << 8) | b[s + 4]!;
    if (type < ContentType.ccs || type > ContentType.applicationData) {
      throw new TlcpFatal("unexpected_message", `tlcp: unknown record type ${type}`);
    }
    if (version !== TLCP_VERSION) {
      // The first record may carry another version (a TLS ClientHello): the handshake answers that one.
      if (!this.#first || (version >>> 8 !== 0x03 && version >>> 8 !== 0x01)) {
        throw new TlcpFatal("protocol_version", `tlcp: record version 0x${version.toString(16)}`);
      }
    }
    if (length > (this.#read ? MAX_CIPHERTEXT : MAX_PLAINTEXT)) {
      throw new TlcpFatal("record_overflow", `tlcp: record of ${length} bytes`);
    }
    if (avail < 5 + length) return undefined;
    this.#first = false;
    const body = b.subarray(s + 5, s + 5 + length);
    this.#start += 5 + length;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      if (this.#borrowed) {
        this.#borrowed = false;
        this.#buf = this.#own;
      }
    }
    let payload: Uint8Array = body;
    if (this.#read) {
      payload = this.#read.open(type, this.#readSeq, body);
      this.#readSeq++;
      if (payload.length > MAX_PLAINTEXT) throw new TlcpFatal("record_overflow", "tlcp: plaintext over 2^14");
    } else {
      payload = body.slice();
    }
    if (payload.length === 0) {
      if (type !== ContentType.applicationData) {
        throw new TlcpFatal("unexpected_message", `tlcp: empty record of type ${type}`);
      }
      if (++this.#empties > MAX_EMPTY_RECORDS) {
        throw new TlcpFatal("unexpected_message", "tlcp: too many empty records");
      }
    } else {
      this.#empties = 0;
    }
    return { type, payload };
  }

  /** Bytes {@link TlcpRecordLayer.seal} produces for `length` bytes of data. */
  sealedSize(length: number): number {
    const w = this.#write;
    const full = Math.floor(length / MAX_PLAINTEXT), rest = length % MAX_PLAINTEXT;
    const one = (n: number) => 5 + (w ? w.sealedLength(n) : n);
    return full * one(MAX_PLAINTEXT) + (rest > 0 || length === 0 ? one(rest) : 0);
  }

  /**
   * Frames `data` as records of `type` (fragmented at 2^14, protected if a write protection is set), each sealed
   * in place into one output buffer: `out` when given (at least {@link TlcpRecordLayer.sealedSize} bytes; the
   * result is a view of it), else a new one.
   */
  seal(type: number, data: Uint8Array, out?: Uint8Array): Uint8Array {
    const size = this.sealedSize(data.length);
    const buf = out ? out.subarray(0, size) : new Uint8Array(size);
    const w = this.#write;
    let o = 0;
    for (let off = 0; off < data.length || (off === 0 && data.length === 0); off += MAX_PLAINTEXT) {
      const frag = data.subarray(off, Math.min(data.length, off + MAX_PLAINTEXT));
      let len: number;
      if (w) len = w.sealInto(type, this.#writeSeq++, frag, buf, o + 5);
      else {
        buf.set(frag, o + 5);
        len = frag.length;
      }
      buf[o] = type;
      buf[o + 1] = TLCP_VERSION >>> 8;
      buf[o + 2] = TLCP_VERSION & 0xff;
      buf[o + 3] = len >>> 8;
      buf[o + 4] = len & 0xff;
      o += 5 + len;
      if (data.length === 0) break;
    }
    return buf;
  }
}

/**
 * Builds the two protections from a key block (GB/T 38636 §6.5.2: client MAC key, server MAC key, client key,
 * server key, then IVs; GCM suites have no MAC keys and 4-byte implicit IVs).
 *
 * @param mode the suite's record mode
 * @param keyBlock the PRF output, at least {@link keyBlockLength} bytes
 * @param client true for the client's side
 */
export function protectionsFromKeyBlock(
  mode: "cbc" | "gcm",
  keyBlock: Uint8Array,
  client: boolean,
): { read: RecordProtection; write: RecordProtection } {
  if (mode === "cbc") {
    const cm = keyBlock.subarray(0, 32), sm = keyBlock.subarray(32, 64);
    const ck = keyBlock.subarray(64, 80), sk = keyBlock.subarray(80, 96);
    const c = new CbcSm3Protection(ck, cm), s = new CbcSm3Protection(sk, sm);
    return client ? { read: s, write: c } : { read: c, write: s };
  }
  const ck = keyBlock.subarray(0, 16), sk = keyBlock.subarray(16, 32);
  const civ = keyBlock.subarray(32, 36), siv = keyBlock.subarray(36, 40);
  const c = new GcmProtection(ck, civ), s = new GcmProtection(sk, siv);
  return client ? { read: s, write: c } : { read: c, write: s };
}

/** Key-block bytes a mode needs (CBC: 2×32 MAC + 2×16 key + 2×16 IV; GCM: 2×16 key + 2×4 IV). */
export function keyBlockLength(mode: "cbc" | "gcm"): number {
  return mode === "cbc" ? 128 : 40;
}
