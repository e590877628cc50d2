/**
 * Route `request_mirror_policies` (Envoy's `RouteAction.RequestMirrorPolicy`): parsing, the per-request decision
 * (which policies shadow this request, to which cluster) and the shadow's `:authority` (`-shadow` appended, before
 * any port). The router filter sends the shadows; this module is pure logic.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { HeaderMap } from "../api/headers.ts";
import { describe, type ObjReader } from "../config/reader.ts";
import { isHeaderName } from "./matchers.ts";
import type { MirrorPolicy } from "./types.ts";

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/**
 * Parses a route action's `request_mirror_policies` (the reader `o` is the `RouteAction`). Each entry needs exactly
 * one of `cluster` and `cluster_header`; `runtime_fraction.default_value` gives the share of requests mirrored
 * (all when absent, as Envoy).
 */
export function parseMirrorPolicies(o: ObjReader): MirrorPolicy[] {
  return o.objs("request_mirror_policies", (m) => {
    const which = m.oneOf(["cluster", "cluster_header"] as const, { required: true })!;
    let cluster: string | undefined;
    let clusterHeader: string | undefined;
    if (which === "cluster") {
      cluster = m.str("cluster", { required: true });
      if (cluster === "") throw new ConfigError(m.at("cluster"), "must not be empty");
    } else {
      const h = m.str("cluster_header", { required: true });
      if (!isHeaderName(h) || h.startsWith(":")) {
        throw new ConfigError(m.at("cluster_header"), `${describe(h)} is not a valid header name`);
      }
      clusterHeader = h.toLowerCase();
    }
    let fraction = 1;
    let denominator: number = DENOMINATORS.HUNDRED;
    let runtimeKey: string | undefined;
    const rf = m.obj("runtime_fraction");
    if (rf) {
      const dv = rf.obj("default_value");
      fraction = 0;
      if (dv) {
        const n = dv.int("numerator", { min: 0 }) ?? 0;
        denominator = DENOMINATORS[
          dv.enumOf("denominator", ["HUNDRED", "TEN_THOUSAND", "MILLION"] as const) ?? "HUNDRED"
        ];
        fraction = Math.min(1, n / denominator);
        dv.done();
      }
      runtimeKey = rf.str("runtime_key") || undefined;
      rf.done();
    }
    const traceSampled = m.bool("trace_sampled") ?? true;
    const disableShadowHostSuffixAppend = m.bool("disable_shadow_host_suffix_append") ?? false;
    m.done();
    return {
      cluster,
      clusterHeader,
      fraction,
      runtimeKey,
      denominator,
      traceSampled,
      disableShadowHostSuffixAppend,
    };
  });
}

/** What {@link mirrorCluster} reads runtime values through (the server's `layered_runtime`). */
export interface MirrorRuntime {
  /**
   * Envoy's `featureEnabled(key, FractionalPercent)` as a probability: the key's FractionalPercent, or a plain
   * number as a numerator over `denominator`, else `defaultNumerator / denominator`.
   */
  fraction(key: string | undefined, defaultNumerator: number, denominator: number): number;
}

/**
 * The shadow's cluster for this request, or undefined when the policy does not mirror it: the fraction's dice
 * (`random` injectable for tests; with `runtime`, the value of `runtime_key` wins over the default, as Envoy), or a
 * `cluster_header` missing from the request.
 */
export function mirrorCluster(
  policy: MirrorPolicy,
  headers: HeaderMap,
  opts: { random?: () => number; runtime?: MirrorRuntime } = {},
): string | undefined {
  let fraction = policy.fraction;
  if (policy.runtimeKey !== undefined && opts.runtime !== undefined) {
    fraction = opts.runtime.fraction(policy.runtimeKey, fraction * policy.denominator, policy.denominator);
  }
  if (fraction < 1 && (opts.random ?? Math.random)() >= fraction) return undefined;
  if (policy.cluster !== undefined) return policy.cluster;
  const v = headers.get(policy.clusterHeader!);
  return v === undefined || v === "" ? undefined : v;
}

/**
 * Envoy's `shadowAppendedHost`: `-shadow` appended to the host, before the port if there is one
 * (`api.example.com:8080` → `api.example.com-shadow:8080`, `[::1]:80` → `[::1]-shadow:80`).
 */
export function shadowAuthority(host: string): string {
  let colon = -1;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf("]");
    if (close >= 0 && host.charCodeAt(close + 1) === 58 /* : */) colon = close + 1;
  } else {
    const i = host.lastIndexOf(":");
    if (i >= 0 && host.indexOf(":") === i) colon = i;
  }
  if (colon >= 0 && /^\d+$/.test(host.slice(colon + 1))) {
    return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  }
  return `${host}-shadow`;
}
