/**
 * The interfaces every part of Ferry is written against: codecs, filters, connections, clusters, stats, errors.
 * @module
 */
export * from "./errors.ts";
export * from "./headers.ts";
export type * from "./codec.ts";
export type * from "./network.ts";
export type * from "./route.ts";
export type * from "./stats.ts";
export * from "./stream_info.ts";
export type * from "./stream_filter.ts";
export type * from "./upstream.ts";
export * from "./tls.ts";
