/**
 * Shared helpers for the `lib/router/` tests.
 * @module
 */
import { throws } from "node:assert/strict";
import { ConfigError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { parseRouteConfiguration } from "../../lib/router/route_config.ts";
import { RouteTable } from "../../lib/router/route_table.ts";
import type { RouteConfig } from "../../lib/router/types.ts";

/** A request header map from pseudo-headers and headers; `:method` defaults to GET. */
export function req(path: string, authority = "example.com", extra: Record<string, string> = {}): HeaderMap {
  return HeaderMap.from({ ":method": "GET", ":scheme": "http", ":authority": authority, ":path": path, ...extra });
}

/** Parses a route configuration named `x` at path `x`. */
export function config(raw: Record<string, unknown>): RouteConfig {
  return parseRouteConfiguration({ name: "x", ...raw }, "x");
}

/** A config with one `*` virtual host holding `routes`. */
export function oneHost(routes: unknown[], vhost: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return config({ virtual_hosts: [{ name: "vh", domains: ["*"], routes, ...vhost }], ...top });
}

/** A table over {@link oneHost}. */
export function table(routes: unknown[], vhost: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return new RouteTable(oneHost(routes, vhost, top));
}

/** Asserts that `fn` throws a ConfigError with exactly `message`. */
export function assertConfigError(fn: () => unknown, message: string): void {
  throws(fn, (e: unknown) => {
    if (!(e instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${e}`);
    if (e.message !== message) throw new Error(`expected message\n  ${message}\ngot\n  ${e.message}`);
    return true;
  });
}

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
