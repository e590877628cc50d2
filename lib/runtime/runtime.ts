/**
 * Envoy's `layered_runtime`: key/value layers read by filters at request time (e.g. the fault filter's
 * `fault.http.abort.abort_percent`). Static layers come from the bootstrap; the admin layer is changed with
 * `POST /runtime_modify?key=value`. Later layers override earlier ones, as in Envoy. `rtds_layer` and
 * `disk_layer` are rejected (Ferry has neither RTDS nor a runtime directory watcher).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { ObjReader } from "../config/reader.ts";

/** A runtime value: Envoy keeps the string form and the numeric/boolean/fractional readings it parses from it. */
export type RuntimeValue = string | number | boolean | { readonly numerator: number; readonly denominator: number };

/** One layer of `layered_runtime.layers`, parsed. */
export type RuntimeLayerConfig =
  | { readonly kind: "static"; readonly name: string; readonly values: ReadonlyMap<string, RuntimeValue> }
  | { readonly kind: "admin"; readonly name: string };

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** Flattens a `static_layer` Struct into dotted keys (`{fault: {http: {x: 1}}}` → `fault.http.x`). */
function flatten(prefix: string, v: unknown, path: string, out: Map<string, RuntimeValue>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    // A FractionalPercent leaf ({numerator, denominator}) is a value, not a subtree.
    if ("numerator" in o && Object.keys(o).every((k) => k === "numerator" || k === "denominator")) {
      const n = o["numerator"];
      const d = o["denominator"] ?? "HUNDRED";
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || typeof d !== "string" || !(d in DENOMINATORS)) {
        throw new ConfigError(path, "expected a FractionalPercent {numerator, denominator}");
      }
      out.set(prefix, { numerator: n, denominator: DENOMINATORS[d]! });
      return;
    }
    for (const [k, x] of Object.entries(o)) flatten(prefix === "" ? k : `${prefix}.${k}`, x, `${path}.${k}`, out);
    return;
  }
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") {
    if (prefix === "") throw new ConfigError(path, "expected an object");
    out.set(prefix, v);
    return;
  }
  throw new ConfigError(path, "expected a string, number, boolean, FractionalPercent or object");
}

/** Parses `layered_runtime` (Envoy's `LayeredRuntime`); throws ConfigError with the field path. */
export function parseLayeredRuntime(raw: unknown, path: string): RuntimeLayerConfig[] {
  const o = new ObjReader(raw, path);
  const names = new Set<string>();
  const layers = o.objs("layers", (l) => {
    const name = l.str("name", { required: true });
    if (names.has(name)) throw new ConfigError(l.at("name"), `duplicate layer name "${name}"`);
    names.add(name);
    const which = l.oneOf(["static_layer", "admin_layer", "disk_layer", "rtds_layer"] as const, { required: true });
    let layer: RuntimeLayerConfig;
    if (which === "static_layer") {
      const values = new Map<string, RuntimeValue>();
      flatten("", l.value("static_layer"), l.at("static_layer"), values);
      layer = { kind: "static", name, values };
    } else if (which === "admin_layer") {
      l.obj("admin_layer")?.done();
      layer = { kind: "admin", name };
    } else {
      l.unsupported(which!, "is not supported (only static_layer and admin_layer)");
      throw new ConfigError(l.at(which!), "is not supported");
    }
    l.done();
    return layer;
  });
  o.done();
  return layers;
}

/** The run-time part of a {@link Runtime}, as the main thread sends it to its workers. */
export interface RuntimeState {
  /** The admin layer's keys and values. */
  readonly admin: readonly (readonly [string, string])[];
  /** `POST /healthcheck/fail` is in effect. */
  readonly healthCheckFailed: boolean;
}

/** Reading a value as Envoy's `Snapshot::getInteger`: a number, or a string holding one. */
function asNumber(v: RuntimeValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/**
 * The server's runtime: the layers, merged into one view on every change (reads are one map lookup). With no
 * `layered_runtime` in the bootstrap Envoy still has an admin layer, and so does Ferry.
 */
export class Runtime {
  #layers: RuntimeLayerConfig[] = [{ kind: "admin", name: "admin" }];
  readonly #admin = new Map<string, string>();
  #merged = new Map<string, RuntimeValue>();
  #healthCheckFailed = false;
  #listeners: (() => void)[] = [];

  /**
   * The admin's health-check state (`POST /healthcheck/fail` / `ok`), read by `envoy.filters.http.health_check`.
   * Setting it notifies the {@link onChange} listeners.
   */
  get healthCheckFailed(): boolean {
    return this.#healthCheckFailed;
  }

  set healthCheckFailed(failed: boolean) {
    this.#healthCheckFailed = failed;
    this.#changed();
  }

  /** Calls `cb` after every admin-layer or health-check change (the server forwards them to its workers). */
  onChange(cb: () => void): void {
    this.#listeners.push(cb);
  }

  #changed(): void {
    for (const cb of this.#listeners) cb();
  }

  /** What changes at run time: the admin layer's values and the health-check flag (sent to worker threads). */
  state(): RuntimeState {
    return { admin: [...this.#admin], healthCheckFailed: this.#healthCheckFailed };
  }

  /** Takes the main thread's {@link state} (in a worker). */
  applyState(state: RuntimeState): void {
    this.#admin.clear();
    for (const [k, v] of state.admin) this.#admin.set(k, v);
    this.#healthCheckFailed = state.healthCheckFailed;
    this.#merge();
  }

  /** Replaces the layers (server start); clears the admin layer's values. */
  configure(layers: readonly RuntimeLayerConfig[] | undefined): void {
    this.#layers = layers && layers.length > 0 ? [...layers] : [{ kind: "admin", name: "admin" }];
    this.#admin.clear();
    this.#healthCheckFailed = false;
    this.#listeners = [];
    this.#merge();
  }

  #merge(): void {
    const m = new Map<string, RuntimeValue>();
    for (const l of this.#layers) {
      const values = l.kind === "static" ? l.values : this.#admin;
      for (const [k, v] of values) m.set(k, v);
    }
    this.#merged = m;
  }

  /** True if the layers include an admin layer (`/runtime_modify` needs one, as in Envoy). */
  get hasAdminLayer(): boolean {
    return this.#layers.some((l) => l.kind === "admin");
  }

  /**
   * `POST /runtime_modify`: sets (or, for an empty value, removes) keys in the admin layer. Returns false, changing
   * nothing, when there is no admin layer.
   */
  modify(values: Iterable<readonly [string, string]>): boolean {
    if (!this.hasAdminLayer) return false;
    for (const [k, v] of values) {
      if (v === "") this.#admin.delete(k);
      else this.#admin.set(k, v);
    }
    this.#merge();
    this.#changed();
    return true;
  }

  /** The merged value of `key`, if any layer sets it. */
  get(key: string): RuntimeValue | undefined {
    return this.#merged.get(key);
  }

  /** Envoy's `getInteger(key, default)`: the key's numeric value, else `defaultValue`. */
  getInteger(key: string, defaultValue: number): number {
    const n = asNumber(this.#merged.get(key));
    return n === undefined || !Number.isFinite(n) ? defaultValue : Math.trunc(n);
  }

  /**
   * Envoy's `featureEnabled(key, FractionalPercent default)` as a probability in [0, 1]: a FractionalPercent value
   * wins; a plain number is a numerator over the default's denominator; otherwise the default.
   */
  fraction(key: string | undefined, defaultNumerator: number, denominator: number): number {
    if (key !== undefined && this.#merged.size > 0) {
      const v = this.#merged.get(key);
      if (v !== undefined && typeof v === "object") return Math.min(1, v.numerator / v.denominator);
      const n = asNumber(v);
      if (n !== undefined && n >= 0) return Math.min(1, n / denominator);
    }
    return Math.min(1, defaultNumerator / denominator);
  }

  /** Envoy's `featureEnabled(key, default_percent)` with an integer 0–100 default. */
  featureEnabled(key: string, defaultPercent: number): boolean {
    const f = this.fraction(key, defaultPercent, 100);
    return f >= 1 || (f > 0 && Math.random() < f);
  }

  /** `GET /runtime`: the layers and the merged entries, in Envoy's JSON shape. */
  dump(): { layers: string[]; entries: Record<string, { final_value: string; layer_values: string[] }> } {
    const keys = new Set<string>(this.#merged.keys());
    const entries: Record<string, { final_value: string; layer_values: string[] }> = {};
    const show = (v: RuntimeValue | undefined) =>
      v === undefined ? "" : typeof v === "object" ? `${v.numerator}/${v.denominator}` : String(v);
    for (const k of [...keys].sort()) {
      entries[k] = {
        final_value: show(this.#merged.get(k)),
        layer_values: this.#layers.map((l) => show(l.kind === "static" ? l.values.get(k) : this.#admin.get(k))),
      };
    }
    return { layers: this.#layers.map((l) => l.name), entries };
  }
}

/**
 * The runtime of this isolate's server (the main thread's, or a worker's). Like the log level it is process state,
 * not config: the server configures it from the bootstrap when it starts, the admin API modifies it, and filters
 * read it per request.
 */
export const serverRuntime: Runtime = new Runtime();
