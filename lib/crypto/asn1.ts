/**
 * A minimal strict DER reader and writer for the small structures SM2 needs on the hot path (signatures,
 * ciphertexts, keys). Certificates go through `@peculiar/asn1-x509`; this module avoids its overhead where a
 * structure is two integers.
 *
 * @module
 */

/** DER universal tags used here. */
export const Tag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
} as const;

/** A DER decoding failure: the message names the structure and what is wrong. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** One decoded TLV: its tag, content bytes and the offset just past it. */
export interface DerElement {
  /** The identifier octet. */
  readonly tag: number;
  /** The content octets (a view into the input). */
  readonly content: Uint8Array;
  /** Offset of the first byte after this element. */
  readonly end: number;
}

/**
 * Reads one TLV at `offset` with definite minimal length, as DER requires.
 *
 * @param der the input
 * @param offset where the element starts
 * @param what the structure being read, for the error message
 */
export function readElement(der: Uint8Array, offset: number, what: string): DerElement {
  if (offset + 2 > der.length) throw new DerError(`${what}: truncated DER`);
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`${what}: multi-byte tags are not supported`);
  let len = der[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError(`${what}: unsupported DER length form`);
    if (pos + n > der.length) throw new DerError(`${what}: truncated DER length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[pos + i]!;
    if (der[pos] === 0 || len < 0x80) throw new DerError(`${what}: non-minimal DER length`);
    pos += n;
  }
  if (pos + len > der.length) throw new DerError(`${what}: DER length exceeds the input`);
  return { tag, content: der.subarray(pos, pos + len), end: pos + len };
}

/**
 * Reads one TLV at `offset` and checks its tag.
 *
 * @param der the input
 * @param offset where the element starts
 * @param tag the expected tag
 * @param what the structure being read, for the error message
 */
export function expectElement(der: Uint8Array, offset: number, tag: number, what: string): DerElement {
  const el = readElement(der, offset, what);
  if (el.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  }
  return el;
}

/**
 * Decodes the content of a DER INTEGER that must be non-negative and minimally encoded.
 *
 * @param content the INTEGER content octets
 * @param what the structure being read, for the error message
 */
export function decodeUnsignedInteger(content: Uint8Array, what: string): bigint {
  if (content.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (content[0]! & 0x80) throw new DerError(`${what}: negative INTEGER`);
  if (content.length > 1 && content[0] === 0 && !(content[1]! & 0x80)) {
    throw new DerError(`${what}: non-minimal INTEGER`);
  }
  let v = 0n;
  for (const b of content) v = (v << 8n) | BigInt(b);
  return v;
}

/**
 * Encodes a TLV with a minimal definite length.
 *
 * @param tag the identifier octet
 * @param content the content octets
 */
export function encodeElement(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const lenBytes = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [
    0x83,
    n >> 16,
    (n >> 8) & 0xff,
    n & 0xff,
  ];
  const out = new Uint8Array(1 + lenBytes.length + n);
  out[0] = tag;
  out.set(lenBytes, 1);
  out.set(content, 1 + lenBytes.length);
  return out;
}

/** Encodes a non-negative bigint as a DER INTEGER. */
export function encodeUnsignedInteger(v: bigint): Uint8Array {
  if (v < 0n) throw new RangeError("DER INTEGER: negative values are not supported");
  let hex = v.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = "00" + hex;
  const content = new Uint8Array(hex.length / 2);
  for (let i = 0; i < content.length; i++) content[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return encodeElement(Tag.INTEGER, content);
}

/** Encodes a SEQUENCE of already-encoded elements. */
export function encodeSequence(...items: Uint8Array[]): Uint8Array {
  return encodeElement(Tag.SEQUENCE, concatBytes(...items));
}

/** Concatenates byte arrays. */
export function concatBytes(...items: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const i of items) n += i.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const i of items) {
    out.set(i, off);
    off += i.length;
  }
  return out;
}

/**
 * Encodes a dotted object identifier as a DER OID element.
 *
 * @param oid e.g. `"1.2.156.10197.1.301"`
 */
export function encodeOid(oid: string): Uint8Array {
  const arcs = oid.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw new RangeError(`OID "${oid}": needs at least two arcs`);
  const bytes: number[] = [];
  const push = (v: bigint) => {
    const tmp = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) tmp.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...tmp);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return encodeElement(Tag.OID, new Uint8Array(bytes));
}

/**
 * Decodes OID content octets to dotted form.
 *
 * @param content the OID content octets
 */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError("OID: empty");
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (v === 0n && b === 0x80) throw new DerError("OID: non-minimal arc");
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    } else if (i === content.length - 1) throw new DerError("OID: truncated arc");
  }
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}
