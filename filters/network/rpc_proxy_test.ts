import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { Registry } from "../../lib/config/registry.ts";
import { createRegistries } from "../../lib/server/registries.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { parseRpcProxyConfig, RPC_PROXY_TYPE, rpcProxyFilterFactory } from "./rpc_proxy.ts";

const P = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
const ROUTES = {
  name: "rpc",
  virtual_hosts: [{
    name: "svc",
    domains: ["com.ferry.Echo"],
    routes: [{
      match: { prefix: "/", headers: [{ name: "version", string_match: { exact: "2.0" } }] },
      route: { cluster: "v2" },
    }, { match: { prefix: "/" }, route: { weighted_clusters: { clusters: [{ name: "a", weight: 1 }] } } }],
  }],
};

function parse(raw: Record<string, unknown>, registries = createRegistries()) {
  return parseRpcProxyConfig({ "@type": RPC_PROXY_TYPE, ...raw }, P, registries);
}

Deno.test("parseRpcProxyConfig reads the RpcProxy fields with their defaults", () => {
  const c = parse({ stat_prefix: "rpc_in", route_config: ROUTES });
  assertEquals([c.statPrefix, c.protocol, c.requestTimeoutMs, c.maxFrameBytes], ["rpc_in", "AUTO", 0, 16 << 20]);
  // The default chain is the router alone; no x-request-id is generated and no server header written.
  assertEquals(c.hcm.httpFilters.map((f) => f.name), ["envoy.filters.http.router"]);
  assertEquals([c.hcm.generateRequestId, c.hcm.serverHeaderTransformation], [false, "PASS_THROUGH"]);
  const b = parse({
    stat_prefix: "x",
    protocol: "BOLT",
    route_config: ROUTES,
    request_timeout: "1.5s",
    max_frame_bytes: 65536,
    max_requests_in_flight: 50,
  });
  assertEquals([b.protocol, b.requestTimeoutMs, b.maxFrameBytes, b.maxRequestsInFlight], ["BOLT", 1500, 65536, 50]);
  assertEquals(
    rpcProxyFilterFactory.referencedClusters!(b).map((r) => r.name),
    ["v2", "a"],
  );
});

Deno.test("parseRpcProxyConfig errors name the field path", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ route_config: ROUTES }, `config: ${P}.stat_prefix: is required`],
    [{ stat_prefix: "x", route_config: ROUTES, protocol: "THRIFT" }, `${P}.protocol`],
    [{ stat_prefix: "x", route_config: ROUTES, bogus: 1 }, `${P}.bogus`],
    [{ stat_prefix: "x", route_config: ROUTES, max_frame_bytes: 10 }, `${P}.max_frame_bytes`],
    [{ stat_prefix: "x" }, `${P}.route_config`],
    [
      {
        stat_prefix: "x",
        route_config: ROUTES,
        rpc_filters: [{
          name: "envoy.filters.http.fault",
          typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault" },
        }],
      },
      `${P}.rpc_filters[0]: the last RPC filter must be a terminal filter`,
    ],
  ];
  for (const [raw, want] of cases) {
    const e = assertThrows(() => parse(raw), ConfigError);
    assert(e.message.includes(want), `${e.message} should include ${want}`);
  }
  // A protocol whose codec is not registered.
  const noBolt = { ...createRegistries(), codecs: new Registry("codec", [http1CodecFactory]) };
  const e = assertThrows(
    () => parse({ stat_prefix: "x", route_config: ROUTES, protocol: "BOLT" }, noBolt),
    ConfigError,
  );
  assertEquals(e.message, `config: ${P}.protocol: BOLT: no "bolt" codec is registered`);
});
