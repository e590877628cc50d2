/**
 * The built-in HTTP filters. A custom build adds its own factories to this list (or passes its own list).
 * @module
 */
import type { HttpFilterFactory } from "../../lib/api/stream_filter.ts";
import { faultFilterFactory } from "./fault.ts";
import { grpcWebFilterFactory } from "./grpc_web.ts";
import { routerFilterFactory } from "./router.ts";

export { faultFilterFactory, grpcWebFilterFactory, routerFilterFactory };

/** Built-in HTTP filter factories. */
export const builtinHttpFilters: readonly HttpFilterFactory[] = [
  routerFilterFactory as HttpFilterFactory,
  faultFilterFactory as HttpFilterFactory,
  grpcWebFilterFactory as HttpFilterFactory,
];
