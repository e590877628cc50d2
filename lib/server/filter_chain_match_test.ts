import { assertEquals } from "../../tests/assert.ts";
import { ObjReader } from "../config/reader.ts";
import { ipBytes, type MatchInput, parseFilterChainMatch, selectFilterChain } from "./filter_chain_match.ts";

function chain(name: string, match: Record<string, unknown>, providerKind?: "gm" | "native") {
  return { name, match: parseFilterChainMatch(new ObjReader(match, "m")), providerKind };
}

const base: MatchInput = {
  destinationPort: 443,
  destinationIp: "127.0.0.1",
  sourceIp: "10.1.2.3",
  sourcePort: 5000,
  serverName: undefined,
  transportProtocol: "tls",
  applicationProtocols: [],
  provider: "native",
};

Deno.test("selectFilterChain prefers exact server names, then the longest wildcard, then none", () => {
  const chains = [
    chain("exact", { server_names: ["api.example.com"] }),
    chain("wild", { server_names: ["*.example.com"] }),
    chain("deeper", { server_names: ["*.eu.example.com"] }),
    chain("any", {}),
  ];
  const pick = (sni?: string) => selectFilterChain(chains, { ...base, serverName: sni })?.name;
  assertEquals(pick("api.example.com"), "exact");
  assertEquals(pick("www.example.com"), "wild");
  assertEquals(pick("x.eu.example.com"), "deeper");
  assertEquals(pick("other.org"), "any");
  assertEquals(pick(undefined), "any");
});

Deno.test("selectFilterChain applies destination port before server names (Envoy's order)", () => {
  const chains = [chain("sni", { server_names: ["a.com"] }), chain("port", { destination_port: 443 })];
  assertEquals(selectFilterChain(chains, { ...base, serverName: "a.com" })?.name, "port");
  assertEquals(selectFilterChain(chains, { ...base, destinationPort: 8443, serverName: "a.com" })?.name, "sni");
});

Deno.test("selectFilterChain matches transport protocol, ALPN, source ranges (longest prefix) and ports", () => {
  const chains = [
    chain("raw", { transport_protocol: "raw_buffer" }),
    chain("h2", { transport_protocol: "tls", application_protocols: ["h2"] }),
    chain("tls", { transport_protocol: "tls" }),
  ];
  assertEquals(selectFilterChain(chains, { ...base, transportProtocol: "raw_buffer" })?.name, "raw");
  assertEquals(selectFilterChain(chains, { ...base, applicationProtocols: ["h2", "http/1.1"] })?.name, "h2");
  assertEquals(selectFilterChain(chains, { ...base, applicationProtocols: ["http/1.1"] })?.name, "tls");
  const src = [
    chain("ten", { source_prefix_ranges: [{ address_prefix: "10.0.0.0", prefix_len: 8 }] }),
    chain("ten1", { source_prefix_ranges: [{ address_prefix: "10.1.0.0", prefix_len: 16 }] }),
    chain("port", { source_ports: [6000] }),
  ];
  assertEquals(selectFilterChain(src, base)?.name, "ten1");
  assertEquals(selectFilterChain(src, { ...base, sourceIp: "10.9.9.9" })?.name, "ten");
  assertEquals(selectFilterChain(src, { ...base, sourceIp: "192.168.0.1", sourcePort: 6000 })?.name, "port");
  assertEquals(selectFilterChain(src, { ...base, sourceIp: "192.168.0.1" }), undefined);
});

Deno.test("selectFilterChain tells chains with equal rules apart by the ClientHello's provider", () => {
  const chains = [
    chain("gm", { transport_protocol: "tls" }, "gm"),
    chain("std", { transport_protocol: "tls" }, "native"),
  ];
  assertEquals(selectFilterChain(chains, { ...base, provider: "gm" })?.name, "gm");
  assertEquals(selectFilterChain(chains, { ...base, provider: "native" })?.name, "std");
});

Deno.test("ipBytes parses IPv4, IPv6 and IPv4-mapped addresses", () => {
  assertEquals([...ipBytes("10.0.0.1")!], [10, 0, 0, 1]);
  assertEquals(ipBytes("::1")!.length, 16);
  assertEquals([...ipBytes("::ffff:127.0.0.1")!], [127, 0, 0, 1]);
  assertEquals(ipBytes("not-an-ip"), undefined);
  assertEquals(ipBytes("1.2.3.256"), undefined);
});
