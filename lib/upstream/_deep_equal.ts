/**
 * {@link deepEqual}: structural equality of parsed config objects, for deciding whether a cluster update changes
 * anything (replacing `JSON.stringify` comparison, which drops functions, throws on bigints and depends on key
 * order).
 *
 * @module
 */

/**
 * True if `a` and `b` are structurally equal: primitives by `Object.is`, functions by identity, arrays and typed
 * arrays element by element, Maps and Sets by entries (keys by identity), Dates by time, other objects by prototype
 * and own enumerable keys (in any order). An object of a class with no own keys (a `CryptoKey`, say) equals only
 * itself. A key whose value is `undefined` counts as absent (as in JSON). Keys named in `ignore` are skipped at
 * every depth: use it only for keys that mean the same everywhere in the compared objects.
 */
export function deepEqual(a: unknown, b: unknown, ignore?: ReadonlySet<string>): boolean {
  return eq(a, b, ignore, new Map());
}

function keysOf(o: object, ignore: ReadonlySet<string> | undefined): string[] {
  const r = o as Record<string, unknown>;
  return Object.keys(o).filter((k) => r[k] !== undefined && (ignore === undefined || !ignore.has(k)));
}

function eq(a: unknown, b: unknown, ignore: ReadonlySet<string> | undefined, seen: Map<object, object>): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  // Parsed config has no cycles, but a pair already under comparison is assumed equal so that one cannot loop.
  if (seen.get(a) === b) return true;
  seen.set(a, b);
  const proto = Object.getPrototypeOf(a);
  if (proto !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!eq(a[i], bb[i], ignore, seen)) return false;
    return true;
  }
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const bv = b as ArrayBufferView;
    const y = new Uint8Array(bv.buffer, bv.byteOffset, bv.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof Map) {
    const bm = b as Map<unknown, unknown>;
    if (a.size !== bm.size) return false;
    for (const [k, v] of a) if (!bm.has(k) || !eq(v, bm.get(k), ignore, seen)) return false;
    return true;
  }
  if (a instanceof Set) {
    const bs = b as Set<unknown>;
    if (a.size !== bs.size) return false;
    for (const v of a) if (!bs.has(v)) return false;
    return true;
  }
  const ka = keysOf(a, ignore);
  const kb = keysOf(b, ignore);
  if (ka.length !== kb.length) return false;
  if (ka.length === 0 && proto !== Object.prototype && proto !== null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of ka) {
    if (rb[k] === undefined || !Object.hasOwn(rb, k)) return false;
    if (!eq(ra[k], rb[k], ignore, seen)) return false;
  }
  return true;
}
