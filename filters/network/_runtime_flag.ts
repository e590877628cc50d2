/**
 * Envoy's `config.core.v3.RuntimeFeatureFlag` for the network filters, read as its default value.
 *
 * @module
 */
import type { ObjReader } from "../../lib/config/reader.ts";

/**
 * Reads a `RuntimeFeatureFlag` as its default value (true when absent; Ferry's runtime does not override network
 * filter flags). `default_value` and `runtime_key` are both required, as in Envoy.
 */
export function parseRuntimeFeatureFlag(o: ObjReader | undefined): boolean {
  if (!o) return true;
  const v = o.bool("default_value", { required: true })!;
  o.str("runtime_key", { required: true });
  o.done();
  return v;
}
