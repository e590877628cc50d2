/**
 * Body-framing header checks shared by both directions (RFC 9112 §6): `Content-Length` and `Transfer-Encoding`.
 *
 * These are where request smuggling hides, so they are strict: a Content-Length is 1-15 decimal digits (so it fits
 * a double exactly); a list or repeated header is accepted only if every member is identical; Transfer-Encoding
 * must be exactly `chunked`, once, as the final (and only) coding.
 *
 * @module
 */
import { TCHAR } from "./_chars.ts";
import { fail } from "./_reader.ts";

function digits(v: string): number {
  const n = v.length;
  if (n === 0 || n > 15) return -1;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

/**
 * Parses a Content-Length value; `prev` is the value of an earlier Content-Length field of the same message
 * (-1 if none). Throws {@link CodecError} 400 for a malformed value or one that differs from `prev`.
 */
export function parseContentLength(v: string, prev: number, offset: number): number {
  let x = digits(v);
  if (x < 0) {
    if (v.indexOf(",") < 0) fail("BadContentLength", "invalid content-length", 400, offset);
    const parts = v.split(",");
    x = -1;
    for (let i = 0; i < parts.length; i++) {
      const d = digits(parts[i]!.trim());
      if (d < 0 || (x >= 0 && d !== x)) fail("BadContentLength", "invalid content-length", 400, offset);
      x = d;
    }
  }
  if (prev >= 0 && prev !== x) fail("BadContentLength", "multiple content-length values", 400, offset);
  return x;
}

/**
 * Checks a (comma-joined) Transfer-Encoding value: returns if it is exactly `chunked`; throws {@link CodecError}
 * 400 for a malformed list or `chunked` repeated or not last, 501 for any other coding (which we do not decode).
 */
export function checkTransferEncoding(v: string, offset: number): void {
  if (v === "chunked") return;
  const lower = v.toLowerCase();
  if (lower === "chunked") return;
  const parts = lower.split(",");
  let unknown = false;
  let chunked = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!.trim();
    let end = p.indexOf(";");
    if (end < 0) end = p.length;
    const name = p.slice(0, end).trimEnd();
    if (name.length === 0) fail("BadTransferEncoding", "malformed transfer-encoding", 400, offset);
    for (let j = 0; j < name.length; j++) {
      const c = name.charCodeAt(j);
      if (c > 255 || TCHAR[c] === 0) fail("BadTransferEncoding", "malformed transfer-encoding", 400, offset);
    }
    if (name === "chunked") {
      if (end !== p.length) fail("BadTransferEncoding", "malformed transfer-encoding", 400, offset);
      chunked++;
    } else {
      unknown = true;
    }
  }
  if (unknown) fail("BadTransferEncoding", "unsupported transfer-encoding", 501, offset);
  fail("BadTransferEncoding", chunked > 1 ? "chunked applied twice" : "malformed transfer-encoding", 400, offset);
}

/**
 * Parses the 8-byte `HTTP/x.y` at `buf[i]`: returns 0 for HTTP/1.0, 1 for HTTP/1.1; throws 505 for another
 * well-formed version and 400 for anything else. `len` is the number of bytes available for the version token.
 */
export function parseVersion(buf: Uint8Array, i: number, len: number): number {
  if (
    len >= 8 && buf[i] === 72 && buf[i + 1] === 84 && buf[i + 2] === 84 && buf[i + 3] === 80 && buf[i + 4] === 47
  ) {
    if (len === 8 && buf[i + 5] === 49 && buf[i + 6] === 46) {
      const m = buf[i + 7];
      if (m === 49) return 1;
      if (m === 48) return 0;
    }
    // Well-formed "HTTP/<digits>.<digits>" we do not speak, e.g. HTTP/2.0 or HTTP/1.2.
    let j = i + 5;
    const end = i + len;
    const d0 = j;
    while (j < end && buf[j]! >= 48 && buf[j]! <= 57) j++;
    if (j > d0 && j < end && buf[j] === 46) {
      const d1 = ++j;
      while (j < end && buf[j]! >= 48 && buf[j]! <= 57) j++;
      if (j === end && j > d1) fail("BadVersion", "unsupported HTTP version", 505, i);
    }
  }
  fail("BadVersion", "malformed HTTP version", 400, i);
}
