/**
 * Filter-chain matching with Envoy's `filter_chain_match` semantics.
 *
 * Criteria are applied in Envoy's order — destination port, destination IP (`prefix_ranges`), `server_names`,
 * `transport_protocol`, `application_protocols`, `direct_source_prefix_ranges`, `source_type`,
 * `source_prefix_ranges`, `source_ports` — and at each step only the most specific chains stay: those that name
 * the connection's value (longest prefix, exact server name before the longest wildcard) if any, else those that
 * leave the criterion empty. No chain left → the `default_filter_chain`, if any.
 *
 * Ferry's addition for mixed ports: chains whose match rules are identical may differ in the TLS provider of
 * their transport socket (`gm` vs `native`); the ClientHello then decides (TLCP or SM-only suites → `gm`).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { ObjReader } from "../config/reader.ts";

/** An address range. */
export interface CidrRange {
  /** 4 or 16 bytes. */
  readonly bytes: Uint8Array;
  readonly prefixLen: number;
}

/** A parsed `filter_chain_match`. */
export interface FilterChainMatch {
  readonly destinationPort: number | undefined;
  readonly prefixRanges: readonly CidrRange[];
  readonly serverNames: readonly string[];
  readonly transportProtocol: string | undefined;
  readonly applicationProtocols: readonly string[];
  readonly directSourcePrefixRanges: readonly CidrRange[];
  readonly sourceType: "ANY" | "SAME_IP_OR_LOOPBACK" | "EXTERNAL";
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
}

/** What a connection offers for matching. */
export interface MatchInput {
  readonly destinationPort: number;
  readonly destinationIp: string;
  readonly sourceIp: string;
  readonly sourcePort: number;
  readonly serverName: string | undefined;
  /** `tls` or `raw_buffer`. */
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
  /** The provider the ClientHello fits, when one was seen. */
  readonly provider: "gm" | "native" | undefined;
}

/** A chain as the matcher sees it. */
export interface MatchableChain {
  readonly match: FilterChainMatch;
  /** `gm`, `native` or undefined (plain TCP). */
  readonly providerKind: "gm" | "native" | undefined;
}

/** The empty match (matches everything). */
export const EMPTY_MATCH: FilterChainMatch = {
  destinationPort: undefined,
  prefixRanges: [],
  serverNames: [],
  transportProtocol: undefined,
  applicationProtocols: [],
  directSourcePrefixRanges: [],
  sourceType: "ANY",
  sourcePrefixRanges: [],
  sourcePorts: [],
};

/** Whether `m` has no criteria (every connection matches it). */
function matchesAll(m: FilterChainMatch): boolean {
  return m.destinationPort === undefined && m.prefixRanges.length === 0 && m.serverNames.length === 0 &&
    m.transportProtocol === undefined && m.applicationProtocols.length === 0 &&
    m.directSourcePrefixRanges.length === 0 && m.sourceType === "ANY" && m.sourcePrefixRanges.length === 0 &&
    m.sourcePorts.length === 0;
}

/** Parses an IPv4 or IPv6 literal into bytes; undefined if it is not one. IPv4-mapped IPv6 becomes IPv4. */
export function ipBytes(s: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? Uint8Array.from(b) : undefined;
  }
  if (!s.includes(":")) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (mapped) return ipBytes(mapped[1]!);
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => part === "" ? [] : part.split(":");
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  return out;
}

function inRange(ip: Uint8Array | undefined, r: CidrRange): boolean {
  if (!ip || ip.length !== r.bytes.length) return false;
  let bits = r.prefixLen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (r.bytes[i]! & mask)) return false;
  }
  return true;
}

function parseCidrs(o: ObjReader, key: string): CidrRange[] {
  return o.objs(key, (c) => {
    const addr = c.str("address_prefix", { required: true });
    const bytes = ipBytes(addr);
    if (!bytes) throw new ConfigError(c.at("address_prefix"), `${JSON.stringify(addr)} is not an IP address`);
    const max = bytes.length * 8;
    const prefixLen = c.int("prefix_len", { min: 0, max }) ?? max;
    return { bytes, prefixLen };
  });
}

/** Parses a `filter_chain_match` (undefined → {@link EMPTY_MATCH}). */
export function parseFilterChainMatch(m: ObjReader | undefined): FilterChainMatch {
  if (!m) return EMPTY_MATCH;
  const destinationPort = m.int("destination_port", { min: 1, max: 65535 });
  const prefixRanges = parseCidrs(m, "prefix_ranges");
  const serverNames = m.strs("server_names").map((s, i) => {
    const n = s.toLowerCase();
    if (n.includes("*") && !(n.startsWith("*.") && !n.slice(2).includes("*"))) {
      throw new ConfigError(
        `${m.at("server_names")}[${i}]`,
        `${JSON.stringify(s)}: only a leading "*." wildcard is allowed`,
      );
    }
    return n;
  });
  const transportProtocol = m.str("transport_protocol") || undefined;
  const applicationProtocols = m.strs("application_protocols");
  const directSourcePrefixRanges = parseCidrs(m, "direct_source_prefix_ranges");
  const sourceType = m.enumOf("source_type", ["ANY", "SAME_IP_OR_LOOPBACK", "EXTERNAL"] as const) ?? "ANY";
  const sourcePrefixRanges = parseCidrs(m, "source_prefix_ranges");
  const sourcePorts = m.arr("source_ports", (v, p) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
      throw new ConfigError(p, "must be a port between 1 and 65535");
    }
    return v;
  });
  m.unsupported("address_suffix");
  m.unsupported("suffix_len");
  m.done();
  return {
    destinationPort,
    prefixRanges,
    serverNames,
    transportProtocol,
    applicationProtocols,
    directSourcePrefixRanges,
    sourceType,
    sourcePrefixRanges,
    sourcePorts,
  };
}

/** A stable key of a match, to reject two chains with the same rules (and the same provider). */
export function matchKey(m: FilterChainMatch): string {
  const cidr = (rs: readonly CidrRange[]) => rs.map((r) => `${[...r.bytes].join(".")}/${r.prefixLen}`).sort();
  return JSON.stringify([
    m.destinationPort,
    cidr(m.prefixRanges),
    [...m.serverNames].sort(),
    m.transportProtocol,
    [...m.applicationProtocols].sort(),
    cidr(m.directSourcePrefixRanges),
    m.sourceType,
    cidr(m.sourcePrefixRanges),
    [...m.sourcePorts].sort(),
  ]);
}

/** Keeps the chains with the best score (> 0 = names the value), else those with score 0 (criterion empty). */
function narrow<C extends MatchableChain>(chains: C[], score: (m: FilterChainMatch) => number): C[] {
  let best = 0;
  let out: C[] = [];
  let wild: C[] = [];
  for (const c of chains) {
    const s = score(c.match);
    if (s < 0) continue;
    if (s === 0) wild.push(c);
    else if (s > best) {
      best = s;
      out = [c];
    } else if (s === best) out.push(c);
  }
  if (out.length > 0) return out;
  wild = wild.length > 0 ? wild : [];
  return wild;
}

function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (names.length === 0) return 0;
  if (!sni) return -1;
  if (names.includes(sni)) return 1000;
  let best = -1;
  for (const n of names) {
    if (!n.startsWith("*.")) continue;
    const suffix = n.slice(1);
    if (sni.endsWith(suffix) && sni.length > suffix.length && suffix.length > best) best = suffix.length;
  }
  return best;
}

/** `ip` is asked for only when there are ranges: most chains name none, and parsing costs per connection. */
function cidrScore(ranges: readonly CidrRange[], ip: () => Uint8Array | undefined): number {
  if (ranges.length === 0) return 0;
  const bytes = ip();
  let best = -1;
  for (const r of ranges) if (inRange(bytes, r) && r.prefixLen + 1 > best) best = r.prefixLen + 1;
  return best;
}

function isLoopback(ip: Uint8Array | undefined): boolean {
  if (!ip) return false;
  if (ip.length === 4) return ip[0] === 127;
  return ip.every((b, i) => i === 15 ? b === 1 : b === 0);
}

/** Picks the chain for a connection (see the module doc); undefined when none matches. */
export function selectFilterChain<C extends MatchableChain>(chains: readonly C[], input: MatchInput): C | undefined {
  // The common listener: one chain that matches everything. No addresses to parse, no candidate lists to build.
  if (chains.length === 1 && matchesAll(chains[0]!.match)) return chains[0];
  // Parsed on first use: the destination address may cost a getsockname, and a mixed GM/standard port's chains
  // (the same match, two providers) name no address at all.
  let dstBytes: Uint8Array | undefined | null = null;
  let srcBytes: Uint8Array | undefined | null = null;
  const dst = () => dstBytes === null ? (dstBytes = ipBytes(input.destinationIp)) : dstBytes;
  const src = () => srcBytes === null ? (srcBytes = ipBytes(input.sourceIp)) : srcBytes;
  let c = [...chains];
  c = narrow(c, (m) => m.destinationPort === undefined ? 0 : m.destinationPort === input.destinationPort ? 1 : -1);
  c = narrow(c, (m) => cidrScore(m.prefixRanges, dst));
  c = narrow(c, (m) => serverNameScore(m.serverNames, input.serverName));
  c = narrow(
    c,
    (m) => m.transportProtocol === undefined ? 0 : m.transportProtocol === input.transportProtocol ? 1 : -1,
  );
  c = narrow(
    c,
    (m) =>
      m.applicationProtocols.length === 0
        ? 0
        : m.applicationProtocols.some((p) => input.applicationProtocols.includes(p))
        ? 1
        : -1,
  );
  c = narrow(c, (m) => cidrScore(m.directSourcePrefixRanges, src));
  c = narrow(c, (m) => {
    if (m.sourceType === "ANY") return 0;
    const local = isLoopback(src()) || input.sourceIp === input.destinationIp;
    return (m.sourceType === "SAME_IP_OR_LOOPBACK") === local ? 1 : -1;
  });
  c = narrow(c, (m) => cidrScore(m.sourcePrefixRanges, src));
  c = narrow(c, (m) => m.sourcePorts.length === 0 ? 0 : m.sourcePorts.includes(input.sourcePort) ? 1 : -1);
  if (c.length <= 1) return c[0];
  // Identical rules, different providers: the ClientHello decides; plain chains serve non-TLS bytes.
  if (input.provider !== undefined) {
    const fit = c.find((x) => x.providerKind === input.provider);
    if (fit) return fit;
  } else {
    const plain = c.find((x) => x.providerKind === undefined);
    if (plain) return plain;
  }
  return c[0];
}
