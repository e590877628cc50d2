/**
 * Envoy's `config.core.v3.RuntimeFeatureFlag` for the HTTP filters: a default that a boolean in the server's
 * `layered_runtime` (static or admin layer) overrides per request.
 *
 * @module
 */
import type { ObjReader } from "../../lib/config/reader.ts";
import { serverRuntime } from "../../lib/runtime/mod.ts";

/** A parsed `RuntimeFeatureFlag`. */
export interface FeatureFlag {
  /** `default_value`. */
  readonly enabled: boolean;
  /** `runtime_key`, if set. */
  readonly enabledKey: string | undefined;
}

/** Reads a `RuntimeFeatureFlag` (absent: `dflt`, no key); `default_value` is required, as in Envoy. */
export function parseFeatureFlag(o: ObjReader | undefined, dflt: boolean): FeatureFlag {
  if (!o) return { enabled: dflt, enabledKey: undefined };
  const enabled = o.bool("default_value", { required: true })!;
  const enabledKey = o.str("runtime_key") || undefined;
  o.done();
  return { enabled, enabledKey };
}

/** Envoy's `runtime.getBoolean(runtime_key, default_value)`: a boolean (or `"true"`/`"false"`) wins. */
export function flagEnabled(f: FeatureFlag): boolean {
  if (f.enabledKey === undefined) return f.enabled;
  const v = serverRuntime.get(f.enabledKey);
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  return f.enabled;
}
