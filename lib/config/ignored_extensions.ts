/**
 * The "ignored extensions" knob: extension names (or typed-config `@type` URLs) that Ferry does not implement but
 * accepts as no-ops, each with a warning and a stat, so that a control plane's telemetry filters (Istio's
 * `istio.metadata_exchange`, `istio.stats`, Envoy's `envoy.filters.http.grpc_stats`...) do not get a whole listener
 * rejected. Envoy's own rule stays the default: an unknown HTTP filter is an error unless `is_optional`.
 *
 * Configured in the bootstrap, Envoy-shaped:
 *
 * ```yaml
 * bootstrap_extensions:
 * - name: ferry.bootstrap.ignored_extensions
 *   typed_config:
 *     "@type": type.googleapis.com/ferry.config.bootstrap.v1.IgnoredExtensions
 *     names: [istio.metadata_exchange, istio.stats, envoy.filters.http.grpc_stats]
 * ```
 *
 * Never for what guards traffic: a name that looks like authorization, authentication, RBAC, TLS or a terminal
 * filter is refused at load time (ignoring it would silently open the door).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { NetworkFilterFactory } from "../api/network.ts";
import type { HttpFilterFactory } from "../api/stream_filter.ts";
import type { StatsScope } from "../api/stats.ts";
import { getLogger } from "../observe/log.ts";
import { describe, ObjReader } from "./reader.ts";
import type { Registries } from "./registry.ts";

const log = getLogger("config");

/** The knob's `@type`. */
export const IGNORED_EXTENSIONS_TYPE = "type.googleapis.com/ferry.config.bootstrap.v1.IgnoredExtensions";

/** Names that must never be ignored: they decide who may pass, or they end the chain. */
const NEVER = /rbac|authz|authn|auth|jwt|oauth|tls|transport_socket|router|http_connection_manager|tcp_proxy|csrf/i;

/**
 * Reads `bootstrap_extensions` and returns the names to ignore. Entries other than the knob are rejected (Ferry
 * has no other bootstrap extension).
 */
export function parseIgnoredExtensions(raw: unknown, path: string): string[] {
  if (raw === undefined || raw === null) return [];
  const o = new ObjReader({ list: raw }, path);
  const names: string[] = [];
  o.objs("list", (e, i) => {
    const p = `${path}[${i}]`;
    e.str("name");
    const tc = e.obj("typed_config", { required: true })!;
    const t = tc.str("@type", { required: true });
    if (t !== IGNORED_EXTENSIONS_TYPE) {
      throw new ConfigError(
        `${p}.typed_config.@type`,
        `${describe(t)} is not supported (known: ${IGNORED_EXTENSIONS_TYPE})`,
      );
    }
    const list = tc.strs("names", { required: true, nonEmpty: true });
    list.forEach((n, j) => {
      if (NEVER.test(n)) {
        throw new ConfigError(
          `${p}.typed_config.names[${j}]`,
          `${describe(n)} guards or ends traffic (authorization, TLS, routing) and cannot be ignored`,
        );
      }
      names.push(n);
    });
    tc.done();
    e.done();
  });
  return names;
}

/** Registers a no-op HTTP and network filter for each name (or `@type` URL) not already registered. */
export function registerIgnoredExtensions(names: readonly string[], registries: Registries, path: string): void {
  for (const [i, n] of names.entries()) {
    const isType = n.includes("/");
    const taken = isType
      ? registries.http.byType(n) ?? registries.network.byType(n)
      : registries.http.byName(n) ?? registries.network.byName(n);
    if (taken !== undefined) {
      if ((taken as { ignored?: boolean }).ignored) continue;
      throw new ConfigError(`${path}[${i}]`, `${describe(n)} is implemented by Ferry; remove it from the list`);
    }
    const name = isType ? `ignored:${n}` : n;
    const configTypes = isType ? [n] : [];
    const counted = (scope: StatsScope) => {
      scope.counter(`ignored_extension.${n.replace(/[^A-Za-z0-9_.-]/g, "_")}`).inc();
      log.warn(`extension ${describe(n)} is configured but ignored (bootstrap ignored extensions)`);
    };
    const http: HttpFilterFactory<Record<string, never>> & { ignored: true } = {
      name,
      configTypes,
      ignored: true,
      parseConfig: () => ({}),
      createFactory: (_c, ctx) => {
        counted(ctx.scope);
        return () => ({});
      },
      create: () => ({}),
    };
    const network: NetworkFilterFactory<Record<string, never>> & { ignored: true } = {
      name,
      configTypes,
      ignored: true,
      parseConfig: () => ({}),
      createFactory: (_c, ctx) => {
        counted(ctx.stats);
        return () => ({ onData: () => "continue" });
      },
      create: () => ({ onData: () => "continue" }),
    };
    registries.http.register(http as HttpFilterFactory);
    registries.network.register(network as NetworkFilterFactory);
  }
}
