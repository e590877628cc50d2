/**
 * The route model's types. They live in `lib/api/route.ts` (filters read routes through
 * `StreamFilterCallbacks.route`); this module re-exports them for the router's own files.
 *
 * @module
 */
export * from "../api/route.ts";
