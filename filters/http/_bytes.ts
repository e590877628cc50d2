/**
 * Byte helpers the HTTP filters share.
 *
 * @module
 */

/** The chunks joined into one new array; `n`, when the caller tracked it, is their total length. */
export function concatBytes(chunks: readonly Uint8Array[], n?: number): Uint8Array {
  if (n === undefined) {
    n = 0;
    for (const c of chunks) n += c.length;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
