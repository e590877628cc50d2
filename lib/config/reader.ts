/**
 * Strict readers for the proto3-JSON mapping of Envoy's v3 API.
 *
 * Every parser of a config resource (bootstrap, listener, route, cluster, filter configs) reads its raw value
 * through an {@link ObjReader}: each accessor consumes a key, and {@link ObjReader.done} rejects whatever was not
 * consumed, so an unknown or unsupported field is always an error naming its path, never silently ignored.
 * A reader told which Envoy message it reads ({@link ObjReader.envoyMessage}) tells the two apart: a leftover key
 * that is a real field of that message is reported as `is not supported`, any other as `unknown field`.
 *
 * The leniencies of protobuf's JSON parser as Envoy uses it are kept, so real Envoy configs load unchanged:
 * field names in snake_case (Envoy's YAML) or lowerCamelCase (proto3 JSON), enum names in any case
 * (`round_robin`, `Strict_Dns`), and a single value where a list is expected (`domains: "*"`).
 *
 * @example
 * ```ts
 * const o = new ObjReader(raw, "static_resources.clusters[0]");
 * const name = o.str("name", { required: true });
 * const timeoutMs = o.durationMs("connect_timeout") ?? 5000;
 * o.done();
 * ```
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { ENVOY_FIELDS, type EnvoyMessage } from "./_envoy_fields.ts";

export type { EnvoyMessage } from "./_envoy_fields.ts";

/** Appends a key to a path: `a.b`, or `a[3]` for indices. */
export function joinPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** Field names seen so far and their camelCase spelling (bounded: keys of maps are names too). */
const camelCache = new Map<string, string>();

/**
 * snake_case → lowerCamelCase (the reader accepts both spellings of every field). Memoized: every field read asks
 * for it, and the regex made it most of the parse time of an EDS assignment (416 → ~20 ns a call).
 */
export function camel(key: string): string {
  let c = camelCache.get(key);
  if (c === undefined) {
    c = key.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
    if (camelCache.size < 4096) camelCache.set(key, c);
  }
  return c;
}

/** JSON-ish description of a value for error messages: strings quoted, objects abbreviated. */
export function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return String(v);
}

/**
 * A repeated field's raw value as a list: a list as is, any other value as a one-element list (protobuf's JSON
 * parser, as Envoy uses it, accepts a single value for a repeated field).
 */
export function asList(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** Parses a proto3-JSON Duration (`"1.5s"`, or `{seconds, nanos}`) into milliseconds. */
export function parseDurationMs(v: unknown, path: string): number {
  if (typeof v === "string") {
    const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
    if (!m) throw new ConfigError(path, `${describe(v)} is not a duration (expected e.g. "5s" or "0.250s")`);
    if (m[1]) throw new ConfigError(path, `${describe(v)} must not be negative`);
    const frac = m[3] ? Number(`0.${m[3]}`) : 0;
    return Number(m[2]) * 1000 + frac * 1000;
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = new ObjReader(v, path);
    const s = o.int("seconds") ?? 0;
    const n = o.int("nanos") ?? 0;
    o.done();
    if (s < 0 || n < 0) throw new ConfigError(path, "must not be negative");
    return s * 1000 + n / 1e6;
  }
  throw new ConfigError(path, `${describe(v)} is not a duration (expected e.g. "5s")`);
}

/** Both spellings (snake_case, lowerCamelCase) of each message's Envoy fields, built on first use. */
const fieldSets = new Map<EnvoyMessage, ReadonlySet<string>>();

function envoyFieldSet(message: EnvoyMessage): ReadonlySet<string> {
  let set = fieldSets.get(message);
  if (set === undefined) {
    set = new Set(ENVOY_FIELDS[message].flatMap((f) => [f, camel(f)]));
    fieldSets.set(message, set);
  }
  return set;
}

/** True if `key` (either spelling) is a field of Envoy's `message`. */
export function isEnvoyField(message: EnvoyMessage, key: string): boolean {
  return envoyFieldSet(message).has(key);
}

/**
 * Matches an enum name as protobuf's JSON parser does for Envoy: case-insensitively. Returns the canonical
 * spelling from `names`, or undefined.
 */
export function matchEnum<T extends string>(v: string, names: readonly T[]): T | undefined {
  const exact = names.find((n) => n === v);
  if (exact !== undefined) return exact;
  const upper = v.toUpperCase();
  return names.find((n) => n.toUpperCase() === upper);
}

/** Options shared by the scalar accessors. */
export interface ReadOptions {
  /** The field must be present. */
  required?: boolean;
}

/** A strict reader over one JSON object. See the module doc. */
export class ObjReader {
  readonly path: string;
  readonly raw: Record<string, unknown>;
  #seen = new Set<string>();
  #message: EnvoyMessage | undefined;

  constructor(raw: unknown, path: string) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new ConfigError(path, `expected an object, got ${describe(raw)}`);
    }
    this.raw = raw as Record<string, unknown>;
    this.path = path;
  }

  /**
   * Declares the Envoy message this object is (its full proto name), so that {@link done} reports a leftover
   * field of that message as `is not supported` rather than `unknown field`. Returns the reader.
   */
  envoyMessage(message: EnvoyMessage): this {
    this.#message = message;
    return this;
  }

  /** The path of a field of this object. */
  at(key: string): string {
    return joinPath(this.path, key);
  }

  /** True if the field is present (in either spelling) and not null. */
  has(key: string): boolean {
    return this.#lookup(key, false) !== undefined;
  }

  /** Keys of the object as written (for maps such as `typed_per_filter_config`). */
  keys(): string[] {
    return Object.keys(this.raw);
  }

  #lookup(key: string, mark: boolean): unknown {
    let v = this.raw[key];
    if (v === undefined) {
      const c = camel(key);
      if (c !== key) v = this.raw[c];
    }
    if (mark) {
      this.#seen.add(key);
      this.#seen.add(camel(key));
    }
    return v === null ? undefined : v;
  }

  /** Consumes a field and returns its raw value (undefined if absent). */
  value(key: string, opts: ReadOptions = {}): unknown {
    const v = this.#lookup(key, true);
    if (v === undefined && opts.required) throw new ConfigError(this.at(key), "is required");
    return v;
  }

  str(key: string, opts: ReadOptions & { required: true }): string;
  str(key: string, opts?: ReadOptions): string | undefined;
  /** A string field. */
  str(key: string, opts: ReadOptions = {}): string | undefined {
    const v = this.value(key, opts);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new ConfigError(this.at(key), `expected a string, got ${describe(v)}`);
    if (opts.required && v === "") throw new ConfigError(this.at(key), "must not be empty");
    return v;
  }

  /** A boolean field (also accepts BoolValue wrappers `{value: true}`). */
  bool(key: string, opts: ReadOptions = {}): boolean | undefined {
    let v = this.value(key, opts);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const o = new ObjReader(v, this.at(key));
      v = o.value("value");
      o.done();
    }
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw new ConfigError(this.at(key), `expected true or false, got ${describe(v)}`);
    return v;
  }

  /** A number field; int64 may be written as a string. Accepts `{value: n}` wrappers. */
  num(key: string, opts: ReadOptions & { min?: number; max?: number } = {}): number | undefined {
    let v = this.value(key, opts);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const o = new ObjReader(v, this.at(key));
      v = o.value("value");
      o.done();
    }
    if (v === undefined) return undefined;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw new ConfigError(this.at(key), `expected a number, got ${describe(v)}`);
    }
    if (opts.min !== undefined && n < opts.min) {
      throw new ConfigError(this.at(key), `${n} is below the minimum ${opts.min}`);
    }
    if (opts.max !== undefined && n > opts.max) {
      throw new ConfigError(this.at(key), `${n} is above the maximum ${opts.max}`);
    }
    return n;
  }

  /** An integer field (uint32/int64 and their wrappers). */
  int(key: string, opts: ReadOptions & { min?: number; max?: number } = {}): number | undefined {
    const n = this.num(key, opts);
    if (n !== undefined && !Number.isInteger(n)) throw new ConfigError(this.at(key), `${n} is not an integer`);
    return n;
  }

  /** A Duration field in milliseconds. */
  durationMs(key: string, opts: ReadOptions = {}): number | undefined {
    const v = this.value(key, opts);
    return v === undefined ? undefined : parseDurationMs(v, this.at(key));
  }

  /**
   * An enum field written by name, in any case (normalised to the spelling in `supported`); `supported` lists
   * what Ferry implements, `known` the rest Envoy has.
   */
  enumOf<T extends string>(
    key: string,
    supported: readonly T[],
    opts: ReadOptions & { known?: readonly string[] } = {},
  ): T | undefined {
    const v = this.value(key, opts);
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      throw new ConfigError(this.at(key), `expected one of ${supported.join(", ")}, got ${describe(v)}`);
    }
    const name = matchEnum(v, supported);
    if (name !== undefined) return name;
    if (opts.known && matchEnum(v, opts.known) !== undefined) {
      throw new ConfigError(this.at(key), `${describe(v)} is not supported`);
    }
    throw new ConfigError(this.at(key), `${describe(v)} is not one of ${supported.join(", ")}`);
  }

  /** A nested object, as a reader (undefined if absent). */
  obj(key: string, opts: ReadOptions = {}): ObjReader | undefined {
    const v = this.value(key, opts);
    return v === undefined ? undefined : new ObjReader(v, this.at(key));
  }

  /**
   * A repeated field: calls `each` with each item's raw value and path. A single value where the list belongs is
   * read as a one-element list (`field[0]` in messages), as protobuf's JSON parser does.
   */
  arr<T>(
    key: string,
    each: (item: unknown, path: string, index: number) => T,
    opts: ReadOptions & { nonEmpty?: boolean } = {},
  ): T[] {
    const v = this.value(key, opts);
    if (v === undefined) {
      if (opts.nonEmpty) throw new ConfigError(this.at(key), "must have at least one entry");
      return [];
    }
    const list = asList(v);
    if (opts.nonEmpty && list.length === 0) throw new ConfigError(this.at(key), "must have at least one entry");
    return list.map((item, i) => each(item, joinPath(this.at(key), i), i));
  }

  /** A repeated field of objects, each as a reader that is checked with `done()` after `each`. */
  objs<T>(key: string, each: (o: ObjReader, index: number) => T, opts: ReadOptions & { nonEmpty?: boolean } = {}): T[] {
    return this.arr(key, (item, path, i) => {
      const o = new ObjReader(item, path);
      const r = each(o, i);
      o.done();
      return r;
    }, opts);
  }

  /** A repeated string field. */
  strs(key: string, opts: ReadOptions & { nonEmpty?: boolean } = {}): string[] {
    return this.arr(key, (item, path) => {
      if (typeof item !== "string") throw new ConfigError(path, `expected a string, got ${describe(item)}`);
      return item;
    }, opts);
  }

  /**
   * Rejects a field Envoy has but Ferry does not implement, if it is present, now. A reader with
   * {@link envoyMessage} does this for every such field in {@link done}; call this for a message with more to say
   * (`is not supported yet (...)`) or to name the field before a later check fails (a oneof alternative).
   */
  unsupported(key: string, why = "is not supported"): void {
    const v = this.value(key);
    if (v !== undefined) throw new ConfigError(this.at(key), why);
  }

  /** Marks a field as consumed without reading it (for fields read elsewhere). */
  skip(...keys: string[]): void {
    for (const k of keys) this.value(k);
  }

  /** Requires at most one of the given fields (a proto `oneof`); returns the one present. */
  oneOf<K extends string>(keys: readonly K[], opts: ReadOptions = {}): K | undefined {
    const present = keys.filter((k) => this.has(k));
    if (present.length > 1) {
      throw new ConfigError(this.path, `only one of ${present.join(", ")} may be set`);
    }
    if (present.length === 0 && opts.required) {
      throw new ConfigError(this.path, `one of ${keys.join(", ")} is required`);
    }
    return present[0];
  }

  /**
   * Throws for the first field that no accessor consumed: `is not supported` for a field of the declared Envoy
   * message (null, proto3's "unset", is accepted for those), `unknown field` for anything else.
   */
  done(): void {
    for (const k of Object.keys(this.raw)) {
      if (this.#seen.has(k)) continue;
      if (this.#message !== undefined && isEnvoyField(this.#message, k)) {
        if (this.raw[k] === null) continue;
        throw new ConfigError(this.at(k), "is not supported");
      }
      throw new ConfigError(this.at(k), "unknown field");
    }
  }
}

/**
 * Reads an `Any`-typed config (`typed_config`): checks `@type` against the accepted URLs and returns a reader
 * over the remaining fields (with `@type` consumed).
 */
export function typedConfig(raw: unknown, path: string, accepted: readonly string[]): ObjReader {
  const o = new ObjReader(raw, path);
  const t = o.str("@type", { required: true });
  if (!accepted.includes(t)) {
    throw new ConfigError(
      joinPath(path, "@type"),
      `${describe(t)} is not ${
        accepted.length === 1 ? describe(accepted[0]) : `one of ${accepted.map((a) => describe(a)).join(", ")}`
      }`,
    );
  }
  return o;
}
