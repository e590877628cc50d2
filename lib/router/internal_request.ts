/**
 * Envoy's internal/external decision for a request, and what follows from it: `x-envoy-internal` and the route
 * configuration's `internal_only_headers`.
 *
 * Envoy's rule (`ConnectionManagerUtility::mutateRequestHeaders`): a request is internal when the address it trusts
 * for the client is an internal address, and only in two situations:
 * - `use_remote_address: true` and the request arrived without `x-forwarded-for`: the address is the downstream
 *   peer's (or, with `xff_num_trusted_hops`, the entry of `x-forwarded-for` it names — which cannot exist here);
 * - `use_remote_address: false` and `x-forwarded-for` holds exactly one address, with `xff_num_trusted_hops: 0`.
 *
 * Which addresses are internal is `internal_address_config`. Without it, Envoy up to 1.35 trusted RFC 1918,
 * RFC 4193 and loopback addresses; since 1.36 (`explicit_internal_address_config`, made permanent after
 * CVE-2024-45806) no address is internal. Ferry follows the current rule: the default {@link
 * InternalRequestPolicy.isInternalAddress} is absent, so every request is external until a policy names internal
 * addresses (see {@link cidrMatcher}).
 *
 * The connection manager calls {@link sanitizeInternalRequest} once per request, before it appends to
 * `x-forwarded-for`: it always removes `x-envoy-internal` from the request, then sets `x-envoy-internal: true` on
 * internal requests and removes `internal_only_headers` from external ones.
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";
import { stripInternalOnlyHeaders } from "./mutations.ts";
import type { RouteConfig } from "./types.ts";
import { parseIpv4, parseIpv6 } from "../network/ip.ts";

/** What {@link sanitizeInternalRequest} needs; the connection manager's config fits as is. */
export interface InternalRequestPolicy {
  /** The route configuration whose `internal_only_headers` are removed from external requests. */
  readonly routeConfig: RouteConfig;
  /** `use_remote_address`. */
  readonly useRemoteAddress: boolean;
  /** `xff_num_trusted_hops`. */
  readonly xffNumTrustedHops: number;
  /**
   * Which client addresses are internal (Envoy's `internal_address_config`). Absent: none, as Envoy ≥ 1.36
   * without `internal_address_config`.
   */
  readonly isInternalAddress?: ((address: string) => boolean) | undefined;
}

/**
 * True if the request is internal under Envoy's rule (see the module doc). `remoteAddress` is the downstream peer's
 * IP; `headers` are the request headers before the connection manager appends to `x-forwarded-for`.
 */
export function isInternalRequest(policy: InternalRequestPolicy, headers: HeaderMap, remoteAddress: string): boolean {
  const internal = policy.isInternalAddress;
  if (internal === undefined) return false;
  const xff = headers.getJoined("x-forwarded-for");
  if (policy.useRemoteAddress) {
    // With a trusted hop the client address would come from x-forwarded-for, which is absent here: the peer's.
    return xff === undefined && internal(remoteAddress);
  }
  if (xff === undefined || policy.xffNumTrustedHops !== 0 || xff.includes(",")) return false;
  const addr = xff.trim();
  return parseIp(addr) !== undefined && internal(addr);
}

/**
 * Removes `x-envoy-internal` (a client may not claim it), then marks an internal request with
 * `x-envoy-internal: true` or removes the route configuration's `internal_only_headers` from an external one.
 * Call it before appending to `x-forwarded-for`. Returns true for an internal request.
 */
export function sanitizeInternalRequest(
  policy: InternalRequestPolicy,
  headers: HeaderMap,
  remoteAddress: string,
): boolean {
  headers.remove("x-envoy-internal");
  const internal = isInternalRequest(policy, headers, remoteAddress);
  if (internal) headers.set("x-envoy-internal", "true");
  else stripInternalOnlyHeaders(policy.routeConfig, headers);
  return internal;
}

/** An IP as 4 (IPv4) or 16 (IPv6) bytes; IPv4-mapped IPv6 addresses are reduced to IPv4. */
function parseIp(s: string): Uint8Array | undefined {
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (s.includes(":")) {
    const v6 = parseIpv6(s);
    if (v6 === undefined) return undefined;
    let mapped = v6[10] === 0xff && v6[11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) mapped = v6[i] === 0;
    return mapped ? v6.slice(12) : v6;
  }
  return parseIpv4(s);
}

/**
 * A predicate for {@link InternalRequestPolicy.isInternalAddress} from CIDR ranges (Envoy's
 * `internal_address_config.cidr_ranges`, e.g. `10.0.0.0/8`, `fd00::/8`). Throws a TypeError naming a malformed
 * range. IPv4-mapped IPv6 client addresses are matched as IPv4.
 *
 * @example
 * ```ts
 * const isInternal = cidrMatcher(["10.0.0.0/8", "192.168.0.0/16"]);
 * isInternal("10.1.2.3"); // true
 * ```
 */
export function cidrMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const ranges = cidrs.map((c) => {
    const slash = c.lastIndexOf("/");
    const ip = parseIp(slash < 0 ? c : c.slice(0, slash));
    const bits = slash < 0 ? undefined : Number(c.slice(slash + 1));
    if (ip === undefined || (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > ip.length * 8))) {
      throw new TypeError(`"${c}" is not a CIDR range`);
    }
    return { ip, bits: bits ?? ip.length * 8 };
  });
  return (address: string): boolean => {
    const ip = parseIp(address);
    if (ip === undefined) return false;
    for (const r of ranges) {
      if (r.ip.length !== ip.length) continue;
      let ok = true;
      let left = r.bits;
      for (let i = 0; left > 0 && ok; i++, left -= 8) {
        const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
        ok = (ip[i]! & mask) === (r.ip[i]! & mask);
      }
      if (ok) return true;
    }
    return false;
  };
}
