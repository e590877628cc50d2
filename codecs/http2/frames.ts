/**
 * HTTP/2 frame layer (RFC 9113 §4 and §6): frame types, flags, error codes, setting identifiers, the 9-byte frame
 * header, and serializers that append frames to an {@link OutBuf}.
 *
 * Serializers write into one growable buffer per connection so that every frame produced while handling one
 * input chunk (or one encoder call) leaves in a single `write` call; the buffer is reused after each flush (the
 * connection copies what it is given).
 *
 * @module
 */

/** The 24-byte client connection preface (RFC 9113 §3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame header length. */
export const FRAME_HEADER_LENGTH = 9;

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** The name of an HTTP/2 error code, e.g. `PROTOCOL_ERROR` (unknown codes as `0x..`). */
export function errorCodeName(code: number): string {
  for (const [k, v] of Object.entries(ErrorCode)) if (v === code) return k;
  return `0x${code.toString(16)}`;
}

/** Setting identifiers (RFC 9113 §6.5.2, RFC 8441 §3). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** Largest flow-control window (2^31-1). */
export const MAX_WINDOW = 0x7fffffff;
/** The default (and smallest allowed) SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;
/** The largest SETTINGS_MAX_FRAME_SIZE (2^24-1). */
export const MAX_MAX_FRAME_SIZE = 0xffffff;
/** The initial window of every stream and of the connection before SETTINGS (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65535;

/** A parsed frame header. */
export interface FrameHeader {
  /** Payload length. */
  length: number;
  /** Frame type. */
  type: number;
  /** Flags. */
  flags: number;
  /** Stream identifier (reserved bit cleared). */
  streamId: number;
}

/** Parses the 9-byte frame header at `buf[off]` into `out` (reused by callers to avoid allocation). */
export function parseFrameHeader(buf: Uint8Array, off: number, out: FrameHeader): FrameHeader {
  out.length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
  out.type = buf[off + 3]!;
  out.flags = buf[off + 4]!;
  out.streamId = ((buf[off + 5]! & 0x7f) << 24 | (buf[off + 6]! << 16) | (buf[off + 7]! << 8) | buf[off + 8]!) >>>
    0;
  return out;
}

/** Reads a 31-bit value (reserved bit cleared) at `off`. */
export function readU31(buf: Uint8Array, off: number): number {
  return ((buf[off]! & 0x7f) << 24 | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Reads a 32-bit unsigned value at `off`. */
export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

const EMPTY_BYTES = new Uint8Array(0);

/**
 * A growable output buffer that frames are appended to; `take()` hands out the bytes written so far (a view, valid
 * until the next append) and starts over.
 */
export class OutBuf {
  /** The backing bytes; `len` of them are used. */
  buf: Uint8Array;
  /** The other buffer: `take` swaps, so appends made while a taken view is being written cannot overwrite it. */
  #spare: Uint8Array;
  /** Bytes used. */
  len = 0;

  /**
   * Starts with `initial` bytes of capacity, and no spare until the first `take`: an idle HTTP/2 connection holds
   * about 1 KiB here rather than 32 KiB (bench/http2.sh measured 39.5 KiB per idle connection with two 16 KiB
   * buffers up front); a busy one grows to its burst size by doubling and keeps it.
   */
  constructor(initial = 1024) {
    this.buf = new Uint8Array(initial);
    this.#spare = EMPTY_BYTES;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let size = Math.max(1024, this.buf.length * 2);
    while (size < need) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  /** The bytes written so far (valid until the next `take`); appends go to the other buffer meanwhile. */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.len);
    this.buf = this.#spare;
    this.#spare = new Uint8Array(out.buffer);
    this.len = 0;
    return out;
  }

  /** Drops buffers that a burst grew past 1 MiB, once their contents were written. */
  shrink(): void {
    if (this.len !== 0) return;
    if (this.buf.length > 1024 * 1024) this.buf = new Uint8Array(16 * 1024);
    if (this.#spare.length > 1024 * 1024) this.#spare = EMPTY_BYTES;
  }
}

/** Appends a frame header. */
export function putFrameHeader(o: OutBuf, length: number, type: number, flags: number, streamId: number): void {
  o.ensure(FRAME_HEADER_LENGTH + length);
  const b = o.buf;
  let i = o.len;
  b[i++] = length >>> 16;
  b[i++] = (length >>> 8) & 0xff;
  b[i++] = length & 0xff;
  b[i++] = type;
  b[i++] = flags;
  b[i++] = (streamId >>> 24) & 0x7f;
  b[i++] = (streamId >>> 16) & 0xff;
  b[i++] = (streamId >>> 8) & 0xff;
  b[i++] = streamId & 0xff;
  o.len = i;
}

function putU32(o: OutBuf, v: number): void {
  const b = o.buf;
  let i = o.len;
  b[i++] = (v >>> 24) & 0xff;
  b[i++] = (v >>> 16) & 0xff;
  b[i++] = (v >>> 8) & 0xff;
  b[i++] = v & 0xff;
  o.len = i;
}

/** Appends raw bytes (the caller reserved room with `putFrameHeader` or `ensure`). */
export function putBytes(o: OutBuf, data: Uint8Array): void {
  o.ensure(data.length);
  o.buf.set(data, o.len);
  o.len += data.length;
}

/** Appends a DATA frame carrying `data` (at most the peer's SETTINGS_MAX_FRAME_SIZE; the caller splits). */
export function putData(o: OutBuf, streamId: number, data: Uint8Array, endStream: boolean): void {
  putFrameHeader(o, data.length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  o.buf.set(data, o.len);
  o.len += data.length;
}

/**
 * Appends a header block as HEADERS plus CONTINUATION frames of at most `maxFrame` bytes each (RFC 9113 §4.3: the
 * frames of one block are contiguous, which holds because they are appended together).
 */
export function putHeaderBlock(
  o: OutBuf,
  streamId: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrame: number,
): void {
  let n = block.length;
  let first = true;
  let off = 0;
  do {
    const chunk = Math.min(n, maxFrame);
    const last = chunk === n;
    let flags = last ? Flag.END_HEADERS : 0;
    if (first && endStream) flags |= Flag.END_STREAM;
    putFrameHeader(o, chunk, first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId);
    o.buf.set(block.subarray(off, off + chunk), o.len);
    o.len += chunk;
    off += chunk;
    n -= chunk;
    first = false;
  } while (n > 0);
}

/** Appends a RST_STREAM frame. */
export function putRstStream(o: OutBuf, streamId: number, code: number): void {
  putFrameHeader(o, 4, FrameType.RST_STREAM, 0, streamId);
  putU32(o, code);
}

/** Appends a SETTINGS frame with `[id, value, ...]` pairs. */
export function putSettings(o: OutBuf, pairs: readonly number[]): void {
  const n = pairs.length >> 1;
  putFrameHeader(o, n * 6, FrameType.SETTINGS, 0, 0);
  const b = o.buf;
  for (let k = 0; k < pairs.length; k += 2) {
    const id = pairs[k]!;
    b[o.len++] = id >>> 8;
    b[o.len++] = id & 0xff;
    putU32(o, pairs[k + 1]!);
  }
}

/** Appends a SETTINGS acknowledgement. */
export function putSettingsAck(o: OutBuf): void {
  putFrameHeader(o, 0, FrameType.SETTINGS, Flag.ACK, 0);
}

/** Appends a PING (or its ack) with the 8 opaque bytes at `data[off]`. */
export function putPing(o: OutBuf, data: Uint8Array, off: number, ack: boolean): void {
  putFrameHeader(o, 8, FrameType.PING, ack ? Flag.ACK : 0, 0);
  o.buf.set(data.subarray(off, off + 8), o.len);
  o.len += 8;
}

/** Appends a GOAWAY frame with optional debug data. */
export function putGoAway(o: OutBuf, lastStreamId: number, code: number, debug?: Uint8Array): void {
  const dl = debug?.length ?? 0;
  putFrameHeader(o, 8 + dl, FrameType.GOAWAY, 0, 0);
  putU32(o, lastStreamId & MAX_WINDOW);
  putU32(o, code);
  if (debug !== undefined && dl > 0) {
    o.buf.set(debug, o.len);
    o.len += dl;
  }
}

/** Appends a WINDOW_UPDATE frame. */
export function putWindowUpdate(o: OutBuf, streamId: number, increment: number): void {
  putFrameHeader(o, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  putU32(o, increment & MAX_WINDOW);
}

/** Appends a PRIORITY frame (used by tests and peers; Ferry ignores priorities). */
export function putPriority(o: OutBuf, streamId: number, dependency: number, weight: number, exclusive = false): void {
  putFrameHeader(o, 5, FrameType.PRIORITY, 0, streamId);
  putU32(o, (dependency & MAX_WINDOW) | (exclusive ? 0x80000000 : 0));
  o.buf[o.len++] = weight & 0xff;
}

/** Appends an arbitrary frame (tests: unknown types, malformed payloads). */
export function putFrame(o: OutBuf, type: number, flags: number, streamId: number, payload: Uint8Array): void {
  putFrameHeader(o, payload.length, type, flags, streamId);
  o.buf.set(payload, o.len);
  o.len += payload.length;
}
