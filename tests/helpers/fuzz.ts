/**
 * Byte-level mutation for codec fuzz tests (`codecs/bolt/fuzz_test.ts`, `codecs/dubbo/fuzz_test.ts`); seed it
 * with a deterministic PRNG such as `prng` from `tests/helpers/http1.ts`.
 *
 * @module
 */

/**
 * `src` with 1 to 4 random edits: a byte replaced, removed or inserted, the bytes `insert(rnd)` inserted (a
 * protocol's magic or tokens), or a run of up to 19 following bytes repeated.
 */
export function mutateBytes(
  src: Uint8Array,
  rnd: () => number,
  insert: (rnd: () => number) => readonly number[],
): Uint8Array {
  const a = Array.from(src);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (a.length + 1));
    const op = Math.floor(rnd() * 5);
    if (op === 0) a[at] = Math.floor(rnd() * 256);
    else if (op === 1) a.splice(at, 1);
    else if (op === 2) a.splice(at, 0, Math.floor(rnd() * 256));
    else if (op === 3) a.splice(at, 0, ...insert(rnd));
    else a.splice(at, 0, ...a.slice(at, at + Math.floor(rnd() * 20)));
  }
  return new Uint8Array(a);
}
