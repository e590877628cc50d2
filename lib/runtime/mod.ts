/**
 * The runtime (Envoy's `layered_runtime`): static and admin layers, read by filters per request.
 * @module
 */
export {
  parseLayeredRuntime,
  Runtime,
  type RuntimeLayerConfig,
  type RuntimeState,
  type RuntimeValue,
  serverRuntime,
} from "./runtime.ts";
