/**
 * DNS resolution for STRICT_DNS and LOGICAL_DNS clusters, through getaddrinfo (`node:dns` `lookup`), which honours
 * `/etc/hosts` — `Deno.resolveDns` does not, so `localhost` would not resolve with it.
 *
 * `dns_lookup_family` follows Envoy: `AUTO` uses IPv6 addresses if there are any, else IPv4; `V4_PREFERRED` the
 * reverse; `ALL` both; `V4_ONLY` / `V6_ONLY` one family.
 *
 * @module
 */
import { promises as dns } from "node:dns";
import type { DnsLookupFamily } from "./config.ts";
import { isIpAddress } from "./config.ts";

/** The answer of a {@link DnsResolver}. */
export interface DnsResult {
  /** Addresses in resolver order, without duplicates. */
  readonly addresses: readonly string[];
  /** The smallest record TTL in ms, when known (only asked for with `respect_dns_ttl`). */
  readonly ttlMs?: number;
}

/** Resolves a name; injectable for tests. Rejects when the name does not resolve. */
export type DnsResolver = (
  name: string,
  family: DnsLookupFamily,
  options?: { withTtl?: boolean },
) => Promise<DnsResult>;

function pickFamily(v4: string[], v6: string[], family: DnsLookupFamily, all: string[]): string[] {
  switch (family) {
    case "V4_ONLY":
      return v4;
    case "V6_ONLY":
      return v6;
    case "AUTO":
      return v6.length > 0 ? v6 : v4;
    case "V4_PREFERRED":
      return v4.length > 0 ? v4 : v6;
    case "ALL":
      return all;
  }
}

async function ttlOf(name: string, v4: boolean): Promise<number | undefined> {
  try {
    const recs = v4 ? await dns.resolve4(name, { ttl: true }) : await dns.resolve6(name, { ttl: true });
    if (recs.length === 0) return undefined;
    return Math.min(...recs.map((r) => r.ttl)) * 1000;
  } catch {
    return undefined;
  }
}

/** The system resolver (getaddrinfo, plus a DNS query for the TTL when asked). */
export const systemResolver: DnsResolver = async (name, family, options = {}) => {
  if (isIpAddress(name)) return { addresses: [name] };
  const fam = family === "V4_ONLY" ? 4 : family === "V6_ONLY" ? 6 : 0;
  const res = await dns.lookup(name, { all: true, family: fam });
  const all: string[] = [];
  const v4: string[] = [];
  const v6: string[] = [];
  for (const r of res) {
    if (all.includes(r.address)) continue;
    all.push(r.address);
    (r.family === 6 ? v6 : v4).push(r.address);
  }
  const addresses = pickFamily(v4, v6, family, all);
  if (addresses.length === 0) throw new Error(`${JSON.stringify(name)} has no ${family} address`);
  if (!options.withTtl) return { addresses };
  const ttlMs = await ttlOf(name, !addresses[0]!.includes(":"));
  return ttlMs === undefined ? { addresses } : { addresses, ttlMs };
};
