/**
 * {@link BoltDecoder}: an incremental, synchronous Bolt frame parser. Complete frames in the input are parsed in
 * place (no copy); only a partial frame at the end of a chunk is copied and held until the rest arrives.
 *
 * @module
 */
import { CodecError } from "../../lib/api/errors.ts";
import {
  CMD_HEARTBEAT,
  CMD_REQUEST,
  CMD_RESPONSE,
  DEFAULT_MAX_FRAME_BYTES,
  fixedHeaderSize,
  PROTO_V1,
  PROTO_V2,
  TYPE_ONEWAY,
  TYPE_REQUEST,
  TYPE_RESPONSE,
} from "./types.ts";
import type { BoltFrame } from "./types.ts";
import { crc32 } from "./encoder.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: false });

/** Decodes bytes `[from, to)` as a string: ASCII by char codes (short keys), otherwise UTF-8. */
export function readString(b: Uint8Array, from: number, to: number): string {
  if (to - from <= 128) {
    for (let i = from; i < to; i++) if (b[i]! >= 0x80) return UTF8.decode(b.subarray(from, to));
    // One call instead of a concatenation per char (header keys, class names and service names are short ASCII).
    return String.fromCharCode.apply(null, b.subarray(from, to) as unknown as number[]);
  }
  return UTF8.decode(b.subarray(from, to));
}

/**
 * Parses the header map (sofa's `SimpleMapSerializer`: int32 key length, key, int32 value length, value; -1 for
 * a null value) into flat `[key, value, ...]`, or throws {@link CodecError}.
 */
export function parseHeaderMap(b: Uint8Array, from: number, to: number): string[] {
  const out: string[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = from;
  while (p < to) {
    if (to - p < 4) throw new CodecError("BadHeader", "bolt: truncated header map", { offset: p });
    const kl = dv.getInt32(p);
    p += 4;
    if (kl < 0 || kl > to - p) throw new CodecError("BadHeader", "bolt: bad header key length", { offset: p });
    const key = readString(b, p, p + kl);
    p += kl;
    if (to - p < 4) throw new CodecError("BadHeader", "bolt: truncated header map", { offset: p });
    const vl = dv.getInt32(p);
    p += 4;
    if (vl < -1 || vl > to - p) throw new CodecError("BadHeader", "bolt: bad header value length", { offset: p });
    const value = vl > 0 ? readString(b, p, p + vl) : "";
    if (vl > 0) p += vl;
    out.push(key, value);
  }
  return out;
}

/**
 * Parses Bolt frames from a byte stream. `onFrame` receives each complete frame; the frame's `content` is a view
 * valid only during the call. Throws {@link CodecError} on a malformed frame (bad proto, type or command, a length
 * over `maxFrameBytes`, a bad header map or CRC); the caller then closes the connection.
 */
export class BoltDecoder {
  readonly #onFrame: (frame: BoltFrame) => void;
  readonly #max: number;
  #held: Uint8Array | undefined;
  /** Bytes consumed over the connection's life (for error offsets). */
  #consumed = 0;
  #dead = false;

  /** `maxFrameBytes` bounds the class, header and content of one frame together. */
  constructor(onFrame: (frame: BoltFrame) => void, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.#onFrame = onFrame;
    this.#max = maxFrameBytes;
  }

  /** True while a partial frame is held. */
  get pending(): boolean {
    return this.#held !== undefined;
  }

  /** Stops parsing (the connection is going): later input is ignored. */
  destroy(): void {
    this.#dead = true;
    this.#held = undefined;
  }

  /** Feeds bytes; calls `onFrame` for each complete frame. */
  push(data: Uint8Array): void {
    if (this.#dead) return;
    let buf = data;
    if (this.#held !== undefined) {
      const h = this.#held;
      buf = new Uint8Array(h.length + data.length);
      buf.set(h);
      buf.set(data, h.length);
      this.#held = undefined;
    }
    let p = 0;
    while (p < buf.length && !this.#dead) {
      const n = this.#frameLength(buf, p);
      if (n === 0 || buf.length - p < n) break;
      this.#parse(buf, p, n);
      p += n;
      this.#consumed += n;
    }
    if (p < buf.length && !this.#dead) this.#held = buf.slice(p);
  }

  /** The whole frame's length at `p`, or 0 if its fixed header is not complete yet; validates what it reads. */
  #frameLength(b: Uint8Array, p: number): number {
    const avail = b.length - p;
    const proto = b[p]!;
    if (proto !== PROTO_V1 && proto !== PROTO_V2) {
      throw new CodecError("BadVersion", `bolt: unknown protocol code 0x${proto.toString(16)}`, {
        offset: this.#consumed,
      });
    }
    const typeAt = proto === PROTO_V1 ? 1 : 2;
    if (avail <= typeAt) return 0;
    const type = b[p + typeAt]!;
    if (type !== TYPE_RESPONSE && type !== TYPE_REQUEST && type !== TYPE_ONEWAY) {
      throw new CodecError("Protocol", `bolt: unknown command type ${type}`, { offset: this.#consumed + typeAt });
    }
    const isResponse = type === TYPE_RESPONSE;
    const fixed = fixedHeaderSize(proto, isResponse);
    if (avail < fixed) return 0;
    const dv = new DataView(b.buffer, b.byteOffset + p, fixed);
    const lens = fixed - 8;
    const classLen = dv.getUint16(lens);
    const headerLen = dv.getUint16(lens + 2);
    const contentLen = dv.getInt32(lens + 4);
    if (contentLen < 0) {
      throw new CodecError("BadContentLength", `bolt: negative content length ${contentLen}`, {
        offset: this.#consumed + lens + 4,
      });
    }
    const body = classLen + headerLen + contentLen;
    if (body > this.#max) {
      throw new CodecError("BodyTooLarge", `bolt: frame of ${body} bytes over the limit of ${this.#max}`, {
        offset: this.#consumed,
        status: 413,
      });
    }
    const crc = proto === PROTO_V2 && (b[p + 11]! & 1) === 1 ? 4 : 0;
    return fixed + body + crc;
  }

  #parse(b: Uint8Array, p: number, n: number): void {
    const proto = b[p]!;
    const v2 = proto === PROTO_V2;
    let q = p + 1;
    const ver1 = v2 ? b[q++]! : 0;
    const type = b[q++]!;
    const dv = new DataView(b.buffer, b.byteOffset + p, n);
    const cmdCode = dv.getUint16(q - p);
    q += 2;
    const ver2 = b[q++]!;
    const requestId = dv.getUint32(q - p);
    q += 4;
    const codec = b[q++]!;
    const switchCode = v2 ? b[q++]! : 0;
    const isResponse = type === TYPE_RESPONSE;
    let timeout = 0;
    let status = 0;
    if (isResponse) {
      status = dv.getUint16(q - p);
      q += 2;
    } else {
      timeout = dv.getInt32(q - p);
      q += 4;
    }
    if (
      cmdCode !== CMD_HEARTBEAT && !(isResponse ? cmdCode === CMD_RESPONSE : cmdCode === CMD_REQUEST)
    ) {
      throw new CodecError("BadMethod", `bolt: command code ${cmdCode} in a ${isResponse ? "response" : "request"}`, {
        offset: this.#consumed + (v2 ? 3 : 2),
      });
    }
    const classLen = dv.getUint16(q - p);
    const headerLen = dv.getUint16(q - p + 2);
    const contentLen = dv.getInt32(q - p + 4);
    q += 8;
    const end = p + n - (v2 && (switchCode & 1) === 1 ? 4 : 0);
    if (end !== q + classLen + headerLen + contentLen) {
      throw new CodecError("Protocol", "bolt: inconsistent frame length", { offset: this.#consumed });
    }
    if (end < p + n) {
      const want = dv.getInt32(n - 4) >>> 0;
      const got = crc32(b.subarray(p, end));
      if (want !== got) throw new CodecError("Protocol", "bolt: CRC32 mismatch", { offset: this.#consumed + n - 4 });
    }
    const className = classLen > 0 ? readString(b, q, q + classLen) : "";
    q += classLen;
    const header = headerLen > 0 ? parseHeaderMap(b, q, q + headerLen) : [];
    q += headerLen;
    const content = b.subarray(q, q + contentLen);
    this.#onFrame({
      proto,
      ver1,
      type,
      cmdCode,
      ver2,
      requestId,
      codec,
      switchCode,
      timeout,
      status,
      className,
      header,
      content,
    });
  }
}
