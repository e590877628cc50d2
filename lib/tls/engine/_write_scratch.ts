/**
 * One scratch buffer per thread for sealing application data when the transport copies what it is given
 * (`TlsEngineCallbacks.writeCopies`): a bulk write then costs no allocation and no zero-fill of its records. Both
 * engines seal a piece of at most {@link SCRATCH_PLAINTEXT} plaintext bytes into it and hand the records over before
 * sealing the next, so the buffer stays at ~256 KiB whatever the size of a write.
 *
 * @module
 */

/** Plaintext sealed into the scratch per piece: 16 full records. */
export const SCRATCH_PLAINTEXT = 16 * 16384;

let scratch = new Uint8Array(0);
let lent = false;

/**
 * Lends the scratch (at least `size` bytes) to `fn`, which must be done with it when it returns. Returns false
 * without calling `fn` when the scratch is already lent (a send re-entered from a write callback): the caller
 * allocates instead.
 */
export function withWriteScratch(size: number, fn: (buf: Uint8Array) => void): boolean {
  if (lent) return false;
  if (scratch.length < size) scratch = new Uint8Array(size);
  lent = true;
  try {
    fn(scratch);
  } finally {
    lent = false;
  }
  return true;
}
