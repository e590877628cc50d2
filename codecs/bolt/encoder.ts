/**
 * Bolt frame encoding: {@link encodeFrame} writes one command (v1 or v2, with the CRC32 when the switch asks for
 * it), {@link crc32} is the IEEE CRC the v2 frame carries.
 *
 * @module
 */
import { PROTO_V1, TYPE_RESPONSE } from "./types.ts";
import type { BoltFrame } from "./types.ts";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib), unsigned. */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const UTF8 = new TextEncoder();

/** UTF-8 length of `s` without allocating for ASCII. */
function byteLength(s: string): number {
  const n = s.length;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return UTF8.encode(s).length;
  }
  return n;
}

function writeString(out: Uint8Array, at: number, s: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    out[at + i] = c;
  }
  if (ascii) return at + s.length;
  const r = UTF8.encodeInto(s, out.subarray(at));
  return at + r.written;
}

/** The size of a header map (flat `[key, value, ...]`) in sofa's `SimpleMapSerializer` form. */
export function headerMapSize(header: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < header.length; i++) n += 4 + byteLength(header[i]!);
  return n;
}

/** The frame fields {@link encodeFrame} reads; `content` may be several chunks. */
export type FrameFields = Omit<BoltFrame, "content">;

/** A buffer reused by {@link encodeFrame} with `scratch`: most frames are small, and a write copies them anyway. */
let shared = new Uint8Array(4096);

/**
 * Encodes one Bolt command into a new buffer, or with `scratch` into a view of a module-wide buffer that is valid
 * only until the next such call (for a write function that copies, which `WriteFn` does).
 */
export function encodeFrame(
  f: FrameFields,
  content: Uint8Array | readonly Uint8Array[],
  scratch = false,
): Uint8Array {
  const isResponse = f.type === TYPE_RESPONSE;
  const v1 = f.proto === PROTO_V1;
  const fixed = v1 ? (isResponse ? 20 : 22) : (isResponse ? 22 : 24);
  const classLen = byteLength(f.className);
  const headerLen = headerMapSize(f.header);
  const chunks = content instanceof Uint8Array ? [content] : content;
  let contentLen = 0;
  for (const c of chunks) contentLen += c.length;
  const crc = !v1 && (f.switchCode & 1) === 1 ? 4 : 0;
  const total = fixed + classLen + headerLen + contentLen + crc;
  let out: Uint8Array;
  if (scratch && total <= 1 << 20) {
    if (shared.length < total) shared = new Uint8Array(Math.max(total, shared.length * 2));
    out = shared.subarray(0, total);
  } else out = new Uint8Array(total);
  const dv = new DataView(out.buffer, out.byteOffset, total);
  let p = 0;
  out[p++] = f.proto;
  if (!v1) out[p++] = f.ver1;
  out[p++] = f.type;
  dv.setUint16(p, f.cmdCode);
  p += 2;
  out[p++] = f.ver2;
  dv.setUint32(p, f.requestId >>> 0);
  p += 4;
  out[p++] = f.codec;
  if (!v1) out[p++] = f.switchCode;
  if (isResponse) {
    dv.setUint16(p, f.status);
    p += 2;
  } else {
    dv.setInt32(p, f.timeout | 0);
    p += 4;
  }
  dv.setUint16(p, classLen);
  dv.setUint16(p + 2, headerLen);
  dv.setInt32(p + 4, contentLen);
  p += 8;
  p = writeString(out, p, f.className);
  const h = f.header;
  for (let i = 0; i < h.length; i++) {
    const s = h[i]!;
    const at = p + 4;
    p = writeString(out, at, s);
    dv.setInt32(at - 4, p - at);
  }
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  if (crc) dv.setUint32(p, crc32(out.subarray(0, p)));
  return out;
}
