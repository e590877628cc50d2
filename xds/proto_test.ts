import { Buffer } from "node:buffer";
// deno-lint-ignore no-import-prefix -- test-only: an independent protobuf encoder/decoder (grpc-js's own loader)
import * as protoLoader from "npm:@grpc/proto-loader@~0.7.13";
import { assert, assertEquals, assertMatch, assertThrows } from "../tests/assert.ts";
import {
  ADS_SERVICE,
  CLUSTER,
  createXdsWire,
  decodeAny,
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  DISCOVERY_CODECS,
  encodeAny,
  encodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  ENDPOINT,
  fromAny,
  LISTENER,
  loadXdsTypes,
  opaqueAnyBytes,
  ROUTE,
  SECRET,
  toAny,
  TYPED_STRUCT,
  UDPA_TYPED_STRUCT,
  xdsTypes,
} from "./proto.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** JSON through bytes and back. */
function roundTrip(typeUrl: string, json: Record<string, unknown>): Record<string, unknown> {
  return decodeAny(typeUrl, encodeAny(typeUrl, json));
}

const LISTENER_JSON = {
  name: "ingress",
  address: { socket_address: { address: "127.0.0.1", port_value: 10000 } },
  listener_filters: [{
    name: "envoy.filters.listener.tls_inspector",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
  }],
  filter_chains: [{
    filter_chain_match: { server_names: ["a.example"], transport_protocol: "tls" },
    filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": HCM,
        stat_prefix: "ingress_http",
        codec_type: "HTTP2",
        stream_idle_timeout: "1.500s",
        request_timeout: "0s",
        drain_timeout: "0.000001s",
        common_http_protocol_options: { idle_timeout: "300s", max_headers_count: 100 },
        use_remote_address: true,
        xff_num_trusted_hops: 2,
        rds: { route_config_name: "local_route", config_source: { ads: {}, resource_api_version: "V3" } },
        http_filters: [
          {
            name: "envoy.filters.http.fault",
            typed_config: {
              "@type": FAULT,
              abort: { http_status: 503, percentage: { numerator: 50, denominator: "TEN_THOUSAND" } },
              max_active_faults: 10,
            },
          },
          { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } },
        ],
      },
    }],
  }],
  per_connection_buffer_limit_bytes: 32768,
  metadata: { filter_metadata: { "ferry.test": { weight: 1.5, tags: ["a", "b"], nested: { on: true, off: null } } } },
};

Deno.test("loadXdsTypes loads the protos once and reports the time", async () => {
  const a = await loadXdsTypes();
  const b = xdsTypes();
  assert(a === b);
  assert(a.fileCount > 50, `parsed ${a.fileCount} files`);
  assert(a.loadMs > 0);
  for (const url of [LISTENER, ROUTE, CLUSTER, ENDPOINT, SECRET, HCM, ROUTER, FAULT, TYPED_STRUCT, UDPA_TYPED_STRUCT]) {
    assert(a.has(url), url);
  }
  assert(!a.has("type.googleapis.com/no.such.Type"));
});

Deno.test("decodeAny round-trips a Listener with an HCM typed_config, nested Anys, durations, wrappers and Struct", () => {
  const out = roundTrip(LISTENER, LISTENER_JSON);
  // Wrappers (UInt32Value) come back as the scalar, durations in canonical form, the rest as written.
  assertEquals(out, LISTENER_JSON);
  const hcm = ((out.filter_chains as Record<string, unknown>[])[0]!.filters as Record<string, unknown>[])[0]!
    .typed_config as Record<string, unknown>;
  assertEquals(hcm.stream_idle_timeout, "1.500s");
  assertEquals(hcm.drain_timeout, "0.000001s");
  assertEquals(hcm.xff_num_trusted_hops, 2);
});

Deno.test("decodeAny omits proto3 default scalars but keeps set oneof members", () => {
  const out = roundTrip(LISTENER, {
    name: "",
    address: { socket_address: { address: "0.0.0.0", port_value: 0 } },
    filter_chains: [],
  });
  // port_value is a oneof member: kept even at 0; name "" and the empty list are not.
  assertEquals(out, { address: { socket_address: { address: "0.0.0.0", port_value: 0 } } });
});

Deno.test("encodeAny accepts lowerCamelCase keys, numbers as strings and enum numbers", () => {
  const out = roundTrip(CLUSTER, {
    name: "c",
    connectTimeout: "0.25s",
    lbPolicy: 2,
    perConnectionBufferLimitBytes: "1024",
    commonLbConfig: { healthyPanicThreshold: { value: 40 } },
  });
  assertEquals(out, {
    name: "c",
    connect_timeout: "0.250s",
    lb_policy: "RING_HASH",
    per_connection_buffer_limit_bytes: 1024,
    common_lb_config: { healthy_panic_threshold: { value: 40 } },
  });
});

Deno.test("decodeAny unwraps xds.type.v3 and udpa.type.v1 TypedStruct filters", () => {
  const listener = (typedConfig: Record<string, unknown>) => ({
    name: "l",
    filter_chains: [{ filters: [{ name: "f", typed_config: typedConfig }] }],
  });
  const filterOf = (l: Record<string, unknown>) =>
    ((l.filter_chains as Record<string, unknown>[])[0]!.filters as Record<string, unknown>[])[0]!.typed_config;

  // A type without a loaded proto: the Struct as it is.
  const custom = { "@type": "type.ferry.dev/ferry.filters.http.v1.Tag", tag: "x", limits: [1, 2], on: true };
  const wrapped = filterOf(roundTrip(
    LISTENER,
    listener({
      "@type": UDPA_TYPED_STRUCT,
      type_url: custom["@type"],
      value: { tag: "x", limits: [1, 2], on: true },
    }),
  ));
  assertEquals(wrapped, custom);

  // encodeAny of an unknown @type sends an xds.type.v3.TypedStruct, which decodes back to the same JSON.
  const bytes = encodeAny(LISTENER, listener(custom));
  const xdsWrapped = decodeAny(LISTENER, bytes);
  assertEquals(filterOf(xdsWrapped), custom);
  assert(Buffer.from(bytes).includes(Buffer.from("xds.type.v3.TypedStruct")));

  // A loaded type inside a TypedStruct is normalized through its proto: camelCase keys and durations.
  const fault = filterOf(roundTrip(
    LISTENER,
    listener({
      "@type": TYPED_STRUCT,
      type_url: FAULT,
      value: { delay: { fixedDelay: "2s", percentage: { numerator: 5 } }, maxActiveFaults: 3 },
    }),
  ));
  assertEquals(fault, {
    "@type": FAULT,
    delay: { fixed_delay: "2s", percentage: { numerator: 5 } },
    max_active_faults: 3,
  });
});

Deno.test("decodeAny round-trips a Cluster with an upstream TLS transport socket, EDS config and protocol options", () => {
  const cluster = {
    name: "payments",
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" }, service_name: "payments-v1" },
    connect_timeout: "5s",
    lb_policy: "LEAST_REQUEST",
    circuit_breakers: { thresholds: [{ priority: "HIGH", max_connections: 100, max_pending_requests: 0 }] },
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": UPSTREAM_TLS,
        sni: "payments.internal",
        common_tls_context: {
          tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
          alpn_protocols: ["h2", "http/1.1"],
          validation_context: { trusted_ca: { filename: "/etc/ca.pem" } },
          tls_certificate_sds_secret_configs: [{ name: "client", sds_config: { ads: {} } }],
        },
      },
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": HTTP_OPTIONS,
        explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 64 } },
      },
    },
    outlier_detection: { consecutive_5xx: 5, interval: "10s", base_ejection_time: "30s" },
  };
  assertEquals(roundTrip(CLUSTER, cluster), cluster);
});

Deno.test("decodeAny round-trips a ClusterLoadAssignment", () => {
  const cla = {
    cluster_name: "payments-v1",
    endpoints: [{
      locality: { region: "eu", zone: "eu-1a" },
      lb_endpoints: [
        {
          endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 8080 } }, hostname: "a" },
          health_status: "HEALTHY",
          load_balancing_weight: 3,
        },
        {
          endpoint: { address: { socket_address: { address: "10.0.0.2", port_value: 8080 } } },
          health_status: "DRAINING",
        },
      ],
      load_balancing_weight: 10,
      priority: 1,
    }],
    policy: { overprovisioning_factor: 140, endpoint_stale_after: "60s" },
  };
  assertEquals(roundTrip(ENDPOINT, cla), cla);
});

Deno.test("decodeAny round-trips a Secret with inline bytes as base64", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const secret = {
    name: "server",
    tls_certificate: {
      certificate_chain: { inline_bytes: btoa(pem) },
      private_key: { inline_string: "key" },
    },
  };
  const out = roundTrip(SECRET, secret);
  assertEquals(out, secret);
  const ctx = roundTrip(SECRET, { name: "ca", validation_context: { trusted_ca: { filename: "/ca.pem" } } });
  assertEquals(ctx, { name: "ca", validation_context: { trusted_ca: { filename: "/ca.pem" } } });
});

Deno.test("decodeAny round-trips a RouteConfiguration; 64-bit integers are numbers when exact, else strings", () => {
  const route = {
    name: "r",
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      routes: [{
        match: { prefix: "/" },
        route: { cluster: "c", timeout: "15s", retry_policy: { retry_on: "5xx", num_retries: 2 } },
        typed_per_filter_config: { "envoy.filters.http.fault": { "@type": FAULT, max_active_faults: 1 } },
      }],
    }],
    max_direct_response_body_size_bytes: 4096,
  };
  assertEquals(roundTrip(ROUTE, route), route);
  const retry = (n: number | string) =>
    roundTrip(ROUTE, {
      name: "r",
      virtual_hosts: [{ name: "v", retry_policy: { host_selection_retry_max_attempts: n } }],
    });
  const attempts = (r: Record<string, unknown>) =>
    ((r.virtual_hosts as Record<string, unknown>[])[0]!.retry_policy as Record<string, unknown>)
      .host_selection_retry_max_attempts;
  assertEquals(attempts(retry(3)), 3);
  assertEquals(attempts(retry("9007199254740993")), "9007199254740993");
  assertEquals(attempts(retry("-9223372036854775808")), "-9223372036854775808");
  assertThrows(() => retry("9223372036854775808"), "out of range for int64");
  const ring = roundTrip(CLUSTER, { name: "c", ring_hash_lb_config: { minimum_ring_size: "1024" } });
  assertEquals(ring.ring_hash_lb_config, { minimum_ring_size: 1024 });
});

Deno.test("decodeAny keeps an Any of an unloaded type as base64 plus the raw bytes; encodeAny sends them as they were", () => {
  const raw = new Uint8Array([0x0a, 0x03, 0x61, 0x62, 0x63, 0x10, 0x07]);
  const l = {
    name: "l",
    filter_chains: [{
      filters: [{
        name: "x",
        typed_config: { "@type": "type.example.com/some.Unknown", value: btoa("\n\x03abc\x10\x07") },
      }],
    }],
  };
  const bytes = encodeAny(LISTENER, l);
  const out = decodeAny(LISTENER, bytes);
  const tc = ((out.filter_chains as Record<string, unknown>[])[0]!.filters as Record<string, unknown>[])[0]!
    .typed_config as Record<string, unknown>;
  assertEquals(tc, { "@type": "type.example.com/some.Unknown", value: btoa("\n\x03abc\x10\x07") });
  assertEquals(opaqueAnyBytes(tc), raw);
  assertEquals(JSON.parse(JSON.stringify(tc)), tc);
  assertEquals(encodeAny(LISTENER, out), bytes);
});

Deno.test("decodeAny throws one line naming the type for malformed bytes", () => {
  const truncated = new Uint8Array([0x0a, 0x05, 0x61]);
  const e = assertThrows(() => decodeAny(LISTENER, truncated));
  assertMatch(e.message, /^resource of type envoy\.config\.listener\.v3\.Listener: .*malformed/);
  assert(!e.message.includes("\n"));
  const bad = assertThrows(() => decodeAny(LISTENER, new Uint8Array([0xff, 0xff, 0xff])));
  assertMatch(bad.message, /^resource of type envoy\.config\.listener\.v3\.Listener: /);
  assertThrows(() => decodeAny("type.googleapis.com/no.such.Type", new Uint8Array()), "type is not loaded");
});

Deno.test("decodeAny names the field path of a malformed nested Any", () => {
  const good = encodeAny(LISTENER, {
    name: "l",
    filter_chains: [{ filters: [{ name: "f", typed_config: { "@type": ROUTER } }] }],
  });
  // Replace the Router Any by one whose value is truncated.
  const types = xdsTypes();
  const lt = types.root.lookupType("envoy.config.listener.v3.Listener");
  const m = lt.decode(good) as unknown as {
    filter_chains: { filters: { typed_config: { value: Uint8Array } }[] }[];
  };
  m.filter_chains[0]!.filters[0]!.typed_config.value = new Uint8Array([0x0a, 0x09, 0x01]);
  const bytes = lt.encode(m).finish();
  const e = assertThrows(() => decodeAny(LISTENER, bytes));
  assertMatch(e.message, /filter_chains\[0\]\.filters\[0\]\.typed_config: malformed .*Router bytes/);
});

Deno.test("encodeAny rejects unknown fields and wrong types with the field path", () => {
  assertThrows(
    () => encodeAny(CLUSTER, { name: "c", conect_timeout: "1s" }),
    "resource of type envoy.config.cluster.v3.Cluster: conect_timeout: unknown field",
  );
  assertThrows(
    () => encodeAny(CLUSTER, { name: "c", connect_timeout: "1 second" }),
    "connect_timeout: invalid duration",
  );
  assertThrows(() => encodeAny(CLUSTER, { name: 3 }), "name: expected a string");
  assertThrows(() => encodeAny(CLUSTER, { name: "c", lb_policy: "FASTEST" }), "lb_policy: expected a");
  assertThrows(
    () => encodeAny(ENDPOINT, { cluster_name: "c", endpoints: [{ lb_endpoints: [{ endpoint: { address: 1 } }] }] }),
    "endpoints[0].lb_endpoints[0].endpoint.address: expected an object",
  );
  assertThrows(
    () => encodeAny(LISTENER, { name: "l", filter_chains: [{ filters: [{ name: "f", typed_config: {} }] }] }),
    "filter_chains[0].filters[0].typed_config.@type",
  );
  assertThrows(
    () => encodeAny(CLUSTER, { name: "c", type: "STATIC", cluster_type: { name: "x" } }),
    "only one of type and cluster_type",
  );
});

Deno.test("toAny and fromAny carry the @type", () => {
  const any = toAny({ "@type": ROUTER, suppress_envoy_headers: true, start_child_span: true });
  assertEquals(any.type_url, ROUTER);
  assertEquals(fromAny(any), { "@type": ROUTER, start_child_span: true, suppress_envoy_headers: true });
  assertThrows(() => toAny({ name: "x" }), '"@type" is required');
});

Deno.test("discovery codecs round-trip SotW requests and responses with undecoded resources", () => {
  const node = {
    id: "ferry-1",
    cluster: "edge",
    metadata: { zone: "a", n: 2 },
    locality: { region: "eu" },
    user_agent_name: "ferry",
    user_agent_version: "0.1.0",
  };
  const req = decodeDiscoveryRequest(encodeDiscoveryRequest({
    version_info: "v1",
    node,
    resource_names: ["a", "b"],
    type_url: ROUTE,
    response_nonce: "n1",
    error_detail: { code: 3, message: 'route_config "a": bad' },
  }));
  assertEquals(req, {
    version_info: "v1",
    node,
    resource_names: ["a", "b"],
    type_url: ROUTE,
    response_nonce: "n1",
    error_detail: { code: 3, message: 'route_config "a": bad' },
  });
  const bare = decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: CLUSTER }));
  assertEquals(bare, { version_info: "", resource_names: [], type_url: CLUSTER, response_nonce: "" });

  const cluster = toAny({ "@type": CLUSTER, name: "c", connect_timeout: "1s" });
  const resp = decodeDiscoveryResponse(encodeDiscoveryResponse({
    version_info: "7",
    resources: [cluster],
    type_url: CLUSTER,
    nonce: "abc",
  }));
  assertEquals(resp.version_info, "7");
  assertEquals(resp.nonce, "abc");
  assertEquals(resp.resources.length, 1);
  assertEquals(resp.resources[0]!.type_url, CLUSTER);
  assertEquals(new Uint8Array(resp.resources[0]!.value), cluster.value);
  assertEquals(decodeAny(CLUSTER, resp.resources[0]!.value), { name: "c", connect_timeout: "1s" });
});

Deno.test("discovery codecs round-trip delta requests and responses", () => {
  const req = decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequest({
    node: { id: "n" },
    type_url: ENDPOINT,
    resource_names_subscribe: ["a", "b"],
    resource_names_unsubscribe: ["c"],
    initial_resource_versions: { a: "h1", b: "h2" },
    response_nonce: "",
  }));
  assertEquals(req, {
    node: { id: "n" },
    type_url: ENDPOINT,
    resource_names_subscribe: ["a", "b"],
    resource_names_unsubscribe: ["c"],
    initial_resource_versions: { a: "h1", b: "h2" },
    response_nonce: "",
  });
  const cla = toAny({ "@type": ENDPOINT, cluster_name: "a" });
  const resp = decodeDeltaDiscoveryResponse(encodeDeltaDiscoveryResponse({
    system_version_info: "s1",
    resources: [{ name: "a", version: "h3", resource: cla }, { name: "b", version: "h4", resource: undefined }],
    type_url: ENDPOINT,
    removed_resources: ["c"],
    nonce: "n2",
  }));
  assertEquals(resp.system_version_info, "s1");
  assertEquals(resp.removed_resources, ["c"]);
  assertEquals(resp.resources.map((r) => [r.name, r.version, r.resource?.type_url]), [
    ["a", "h3", ENDPOINT],
    ["b", "h4", undefined],
  ]);
  assertEquals(decodeAny(ENDPOINT, resp.resources[0]!.resource!.value), { cluster_name: "a" });
});

Deno.test("createXdsWire and the grpc-js codecs use the same encoding", () => {
  const wire = createXdsWire();
  const b = wire.encodeRequest({ type_url: LISTENER, resource_names: [] });
  assertEquals(DISCOVERY_CODECS.request.deserialize(Buffer.from(b)).type_url, LISTENER);
  const s = ADS_SERVICE.DeltaAggregatedResources.responseSerialize({
    system_version_info: "",
    resources: [],
    type_url: SECRET,
    removed_resources: ["x"],
    nonce: "1",
  });
  assertEquals(wire.decodeDeltaResponse(new Uint8Array(s)).removed_resources, ["x"]);
  assertEquals(ADS_SERVICE.StreamAggregatedResources.path.endsWith("/StreamAggregatedResources"), true);
});

Deno.test("decodeAny reads bytes encoded by grpc-js's proto-loader, and proto-loader reads ours", () => {
  const deps = new URL("deps/", new URL(".", import.meta.resolve("npm:@grpc/grpc-js-xds@1.14.1/package.json")));
  const includeDirs = ["envoy-api/", "xds/", "protoc-gen-validate/", "googleapis/"]
    .map((d) => decodeURIComponent(new URL(d, deps).pathname));
  const def = protoLoader.loadSync(
    [
      "envoy/service/discovery/v3/ads.proto",
      "envoy/config/listener/v3/listener.proto",
      "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
      "envoy/extensions/filters/http/router/v3/router.proto",
    ],
    { keepCase: true, includeDirs, enums: String, longs: String, defaults: false, oneofs: false, json: true },
  );
  const ads = def["envoy.service.discovery.v3.AggregatedDiscoveryService"] as Record<
    string,
    { requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer }
  >;
  const method = ads.StreamAggregatedResources!;
  // proto-loader (protobufjs fromObject with its Any wrapper) encodes the listener inside the response.
  const theirs = method.responseSerialize({
    version_info: "3",
    type_url: LISTENER,
    nonce: "x",
    resources: [{
      "@type": LISTENER,
      name: "l",
      address: { socket_address: { address: "::1", port_value: 99 } },
      filter_chains: [{
        filters: [{
          name: "hcm",
          typed_config: {
            "@type": HCM,
            stat_prefix: "s",
            codec_type: "HTTP1",
            http_filters: [{ name: "r", typed_config: { "@type": ROUTER, suppress_envoy_headers: true } }],
          },
        }],
      }],
    }],
  });
  const resp = decodeDiscoveryResponse(new Uint8Array(theirs));
  assertEquals(resp.version_info, "3");
  assertEquals(decodeAny(resp.resources[0]!.type_url, resp.resources[0]!.value), {
    name: "l",
    address: { socket_address: { address: "::1", port_value: 99 } },
    filter_chains: [{
      filters: [{
        name: "hcm",
        typed_config: {
          "@type": HCM,
          stat_prefix: "s",
          codec_type: "HTTP1",
          http_filters: [{ name: "r", typed_config: { "@type": ROUTER, suppress_envoy_headers: true } }],
        },
      }],
    }],
  });
  const ours = encodeDiscoveryRequest({
    version_info: "3",
    node: { id: "n1", cluster: "c" },
    type_url: LISTENER,
    response_nonce: "x",
    error_detail: { code: 13, message: "bad" },
  });
  const decoded = method.requestDeserialize(Buffer.from(ours)) as Record<string, unknown>;
  assertEquals(decoded.version_info, "3");
  assertEquals(decoded.response_nonce, "x");
  assertEquals((decoded.node as Record<string, unknown>).id, "n1");
  assertEquals((decoded.error_detail as Record<string, unknown>).message, "bad");
});

Deno.test("decodeAny gives well-known types inside an Any their JSON form under value", () => {
  const wkt = (type: string, value: unknown) => ({ "@type": `type.googleapis.com/google.protobuf.${type}`, value });
  const cases = [
    wkt("Timestamp", "2024-01-02T03:04:05.500Z"),
    wkt("Timestamp", "1970-01-01T00:00:00Z"),
    wkt("Duration", "-0.250s"),
    wkt("Duration", "3.000000001s"),
    wkt("Struct", { a: [1, "x", null, { b: false }] }),
    wkt("UInt32Value", 7),
    wkt("Int64Value", "-9007199254740993"),
    wkt("BytesValue", btoa("\x00\x01\xff")),
    wkt("StringValue", "s"),
    wkt("FieldMask", "filterChains,name"),
  ];
  for (const tc of cases) {
    const l = { name: "l", filter_chains: [{ filters: [{ name: "f", typed_config: tc }] }] };
    assertEquals(roundTrip(LISTENER, l), l, JSON.stringify(tc));
  }
  // Offsets are folded into UTC.
  const ts = roundTrip(LISTENER, {
    name: "l",
    filter_chains: [{ filters: [{ name: "f", typed_config: wkt("Timestamp", "2024-01-02T05:04:05+02:00") }] }],
  });
  assertEquals(
    ((ts.filter_chains as Record<string, unknown>[])[0]!.filters as Record<string, unknown>[])[0]!.typed_config,
    wkt("Timestamp", "2024-01-02T03:04:05Z"),
  );
});
