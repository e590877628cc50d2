/**
 * The built-in HTTP filters. A custom build adds its own factories to this list (or passes its own list).
 * @module
 */
import type { HttpFilterFactory } from "../../lib/api/stream_filter.ts";
import { faultFilterFactory } from "./fault.ts";
import { compressorFilterFactory } from "./compressor.ts";
import { decompressorFilterFactory } from "./decompressor.ts";
import { extAuthzFilterFactory } from "./ext_authz.ts";
import { grpcWebFilterFactory } from "./grpc_web.ts";
import { rbacFilterFactory } from "./rbac.ts";
import { routerFilterFactory } from "./router.ts";
import { bufferFilterFactory } from "./buffer.ts";
import { corsFilterFactory } from "./cors.ts";
import { headerMutationFilterFactory } from "./header_mutation.ts";
import { healthCheckFilterFactory } from "./health_check.ts";
import { localRateLimitFilterFactory } from "./local_ratelimit.ts";

export { faultFilterFactory, grpcWebFilterFactory, routerFilterFactory };
export {
  bufferFilterFactory,
  corsFilterFactory,
  headerMutationFilterFactory,
  healthCheckFilterFactory,
  localRateLimitFilterFactory,
};
export { rbacFilterFactory };
export { compressorFilterFactory, decompressorFilterFactory, extAuthzFilterFactory };

/** Built-in HTTP filter factories. */
export const builtinHttpFilters: readonly HttpFilterFactory[] = [
  routerFilterFactory as HttpFilterFactory,
  faultFilterFactory as HttpFilterFactory,
  grpcWebFilterFactory as HttpFilterFactory,
  localRateLimitFilterFactory as HttpFilterFactory,
  corsFilterFactory as HttpFilterFactory,
  headerMutationFilterFactory as HttpFilterFactory,
  bufferFilterFactory as HttpFilterFactory,
  healthCheckFilterFactory as HttpFilterFactory,
  rbacFilterFactory as HttpFilterFactory,
  compressorFilterFactory as HttpFilterFactory,
  decompressorFilterFactory as HttpFilterFactory,
  extAuthzFilterFactory as HttpFilterFactory,
];
