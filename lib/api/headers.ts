/**
 * The header model shared by every codec: an ordered multi-map with lower-cased names.
 *
 * Requests carry the pseudo-headers `:method`, `:path`, `:authority` and `:scheme` (HTTP/1 maps `Host` to
 * `:authority`), responses carry `:status`, as in Envoy, so filters and the router see one model whatever the
 * protocol. Names are stored lower-case; callers of `get`/`set`/`add`/`remove` pass lower-case names (the codecs
 * lower-case once at parse time, which is cheaper than folding on every lookup).
 *
 * Storage is one flat array `[name0, value0, name1, value1, ...]`: a request has a dozen headers, so a linear
 * scan beats a hash map and keeps allocation to one array per message.
 *
 * @module
 */

/** An ordered, lower-cased, multi-valued header map. */
export class HeaderMap {
  /** Flat `[name, value, ...]` pairs in wire order. Exposed for codecs' fast paths; treat as read-only elsewhere. */
  readonly kv: string[];

  /** Wraps `kv` (names already lower-case; not copied), or starts empty. Codecs build maps this way. */
  constructor(kv?: string[]) {
    this.kv = kv ?? [];
  }

  /** Builds a map from `[name, value]` pairs; names are lower-cased. */
  static from(pairs: Iterable<readonly [string, string]> | Record<string, string>): HeaderMap {
    const h = new HeaderMap();
    const it = Symbol.iterator in (pairs as object)
      ? pairs as Iterable<readonly [string, string]>
      : Object.entries(pairs as Record<string, string>);
    for (const [k, v] of it) h.kv.push(k.toLowerCase(), v);
    return h;
  }

  /** Number of header fields (pairs). */
  get size(): number {
    return this.kv.length >> 1;
  }

  /** First value of `name`, or undefined. */
  get(name: string): string | undefined {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) return kv[i + 1];
    return undefined;
  }

  /** All values of `name` in order. */
  getAll(name: string): string[] {
    const out: string[] = [];
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) out.push(kv[i + 1]!);
    return out;
  }

  /** All values of `name` joined with `,` (RFC 9110 list semantics), or undefined. */
  getJoined(name: string): string | undefined {
    let out: string | undefined;
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i] === name) out = out === undefined ? kv[i + 1]! : `${out},${kv[i + 1]!}`;
    }
    return out;
  }

  /** True if `name` (lower-case) has at least one value. */
  has(name: string): boolean {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) return true;
    return false;
  }

  /** Appends a value (keeps existing ones). */
  add(name: string, value: string): void {
    this.kv.push(name, value);
  }

  /** Replaces every value of `name` with one value, keeping the position of the first occurrence. */
  set(name: string, value: string): void {
    const kv = this.kv;
    let found = false;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i] === name) {
        if (!found) {
          kv[i + 1] = value;
          found = true;
        } else {
          kv.splice(i, 2);
          i -= 2;
        }
      }
    }
    if (!found) kv.push(name, value);
  }

  /** Removes every value of `name`; returns how many were removed. */
  remove(name: string): number {
    const kv = this.kv;
    let n = 0;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i] === name) {
        kv.splice(i, 2);
        i -= 2;
        n++;
      }
    }
    return n;
  }

  /** Removes every header whose name satisfies `pred`. */
  removeIf(pred: (name: string) => boolean): void {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) {
      if (pred(kv[i]!)) {
        kv.splice(i, 2);
        i -= 2;
      }
    }
  }

  /** Iterates `[name, value]` pairs in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) yield [kv[i]!, kv[i + 1]!];
  }

  /** A copy (values are strings, so a shallow copy of the array is a deep copy). */
  clone(): HeaderMap {
    return new HeaderMap(this.kv.slice());
  }

  /** Plain object for logs and tests; repeated names are joined with `,`. */
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      o[k] = k in o ? `${o[k]},${kv[i + 1]!}` : kv[i + 1]!;
    }
    return o;
  }
}

/**
 * The upgrade an HTTP/1.1-style request asks for: `upgrade: x` with an `upgrade` token in `connection`, lower-cased;
 * undefined when it asks for none. (An HTTP/2 extended CONNECT reaches the proxy in this form too.)
 */
export function requestedUpgrade(h: HeaderMap): string | undefined {
  const up = h.get("upgrade");
  if (up === undefined) return undefined;
  const conn = h.getJoined("connection");
  if (conn === undefined || !/(^|,)\s*upgrade\s*(,|$)/i.test(conn)) return undefined;
  return up.trim().toLowerCase();
}
