import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../api/errors.ts";
import { edsServiceName, parseCluster, parseClusters, parseLoadAssignment } from "./config.ts";

function ep(address: string, port: number, extra: Record<string, unknown> = {}) {
  return { endpoint: { address: { socket_address: { address, port_value: port } } }, ...extra };
}

function cluster(extra: Record<string, unknown> = {}) {
  return {
    name: "payments",
    load_assignment: { cluster_name: "payments", endpoints: [{ lb_endpoints: [ep("10.0.0.1", 80)] }] },
    ...extra,
  };
}

function err(raw: unknown): string {
  const e = assertThrows(() => parseCluster(raw, "static_resources.clusters[0]"), ConfigError);
  return e.message;
}

Deno.test("parseCluster applies Envoy defaults", () => {
  const c = parseCluster(cluster(), "c");
  assertEquals(c.name, "payments");
  assertEquals(c.type, "STATIC");
  assertEquals(c.connectTimeoutMs, 5000);
  assertEquals(c.lbPolicy, "ROUND_ROBIN");
  assertEquals(c.dnsLookupFamily, "AUTO");
  assertEquals(c.dnsRefreshRateMs, 5000);
  assertEquals(c.perConnectionBufferLimitBytes, 1024 * 1024);
  assertEquals(c.idleTimeoutMs, 3600_000);
  assertEquals(c.maxRequestsPerConnection, 0);
  assertEquals(c.healthyPanicThreshold, 50);
  assertEquals(c.circuitBreakers.DEFAULT, {
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests: 1024,
    maxRetries: 3,
  });
  assertEquals(c.localities[0]!.endpoints[0]!.address, "10.0.0.1");
  assertEquals(c.localities[0]!.endpoints[0]!.weight, 1);
  assertEquals(c.localities[0]!.endpoints[0]!.healthStatus, "UNKNOWN");
});

Deno.test("parseCluster reads the supported fields", () => {
  const c = parseCluster({
    name: "api",
    type: "STRICT_DNS",
    connectTimeout: "0.25s",
    lb_policy: "LEAST_REQUEST",
    least_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 0.5, runtime_key: "x" } },
    dns_lookup_family: "V4_ONLY",
    dns_refresh_rate: "2s",
    respect_dns_ttl: true,
    per_connection_buffer_limit_bytes: 32768,
    max_requests_per_connection: 7,
    common_http_protocol_options: { idle_timeout: "30s", max_headers_count: 50 },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        common_http_protocol_options: { max_requests_per_connection: 100 },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
    circuit_breakers: {
      thresholds: [{ priority: "DEFAULT", max_connections: 2, max_pending_requests: 3 }, {
        priority: "HIGH",
        max_retries: 9,
      }],
    },
    metadata: { filter_metadata: { a: { b: 1 } } },
    load_assignment: {
      cluster_name: "api",
      endpoints: [{
        locality: { region: "r", zone: "z" },
        load_balancing_weight: 3,
        priority: 0,
        lb_endpoints: [ep("localhost", 8080, { load_balancing_weight: 5, health_status: "HEALTHY" })],
      }],
      policy: { overprovisioning_factor: 140 },
    },
  }, "c");
  assertEquals(c.type, "STRICT_DNS");
  assertEquals(c.connectTimeoutMs, 250);
  assertEquals(c.lbPolicy, "LEAST_REQUEST");
  assertEquals(c.leastRequest, { choiceCount: 3, activeRequestBias: 0.5 });
  assertEquals(c.dnsLookupFamily, "V4_ONLY");
  assertEquals(c.dnsRefreshRateMs, 2000);
  assertEquals(c.respectDnsTtl, true);
  assertEquals(c.perConnectionBufferLimitBytes, 32768);
  assertEquals(c.maxRequestsPerConnection, 100);
  assertEquals(c.idleTimeoutMs, 30_000);
  assertEquals(c.maxHeadersCount, 50);
  assertEquals(c.circuitBreakers.DEFAULT.maxConnections, 2);
  assertEquals(c.circuitBreakers.DEFAULT.maxPendingRequests, 3);
  assertEquals(c.circuitBreakers.DEFAULT.maxRequests, 1024);
  assertEquals(c.circuitBreakers.HIGH.maxRetries, 9);
  assertEquals(c.localities[0]!.weight, 3);
  assertEquals(c.localities[0]!.locality, { region: "r", zone: "z", subZone: "" });
  assertEquals(c.localities[0]!.endpoints[0]!.weight, 5);
  assertEquals(c.localities[0]!.endpoints[0]!.healthStatus, "HEALTHY");
});

Deno.test("parseCluster errors name the path", () => {
  assertEquals(
    err({ ...cluster(), type: "ORIGINAL_DST" }),
    'config: static_resources.clusters[0].type: "ORIGINAL_DST" is not supported',
  );
  assertEquals(
    err({ ...cluster(), type: "EDS" }),
    "config: static_resources.clusters[0].eds_cluster_config: is required for an EDS cluster (eds_config says " +
      "where to get its endpoints)",
  );
  assertEquals(
    err({ ...cluster(), type: "EDS", eds_cluster_config: { service_name: "x" } }),
    "config: static_resources.clusters[0].eds_cluster_config.eds_config: is required",
  );
  assertEquals(
    err({ ...cluster(), eds_cluster_config: { eds_config: { ads: {} } } }),
    "config: static_resources.clusters[0].eds_cluster_config: is only for type EDS (this cluster is STATIC)",
  );
  assertEquals(
    err({ ...cluster(), lb_policy: "CLUSTER_PROVIDED" }),
    'config: static_resources.clusters[0].lb_policy: "CLUSTER_PROVIDED" is not supported',
  );
  assertEquals(
    err({ ...cluster(), lb_policy: "FASTEST" }),
    'config: static_resources.clusters[0].lb_policy: "FASTEST" is not one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV',
  );
  assertEquals(err({ ...cluster(), bogus: 1 }), "config: static_resources.clusters[0].bogus: unknown field");
  assertEquals(
    err({
      ...cluster(),
      health_checks: [{ timeout: "1s", interval: "1s", unhealthy_threshold: 1, healthy_threshold: 1 }],
    }),
    "config: static_resources.clusters[0].health_checks[0]: one of http_health_check, tcp_health_check, grpc_health_check, custom_health_check is required",
  );
  assertEquals(
    err({ ...cluster(), outlier_detection: { consecutive_5xx: -1 } }),
    "config: static_resources.clusters[0].outlier_detection.consecutive_5xx: -1 is below the minimum 0",
  );
  assertEquals(
    err({ ...cluster(), transport_socket: { name: "tls" } }),
    'config: static_resources.clusters[0].transport_socket.typed_config: is required for transport socket "tls"',
  );
  assertEquals(
    err({ ...cluster(), lb_subset_config: {} }),
    "config: static_resources.clusters[0].lb_subset_config: is not supported",
  );
  assertEquals(err({ load_assignment: {} }), "config: static_resources.clusters[0].name: is required");
  assertEquals(
    err({ name: "a", load_assignment: { endpoints: [{ lb_endpoints: [ep("localhost", 80)] }] } }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address" +
      '.socket_address.address: "localhost" is not an IP address (STATIC clusters need IP addresses; ' +
      "use STRICT_DNS or LOGICAL_DNS)",
  );
  assertEquals(
    err({ name: "a", load_assignment: { endpoints: [{ lb_endpoints: [ep("10.0.0.1", 80, { weight: 1 })] }] } }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].weight: unknown field",
  );
  assertEquals(
    err({ name: "a", load_assignment: { endpoints: [{ priority: 129, lb_endpoints: [] }] } }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].priority: 129 is above the maximum 128",
  );
  assertEquals(
    err({ name: "a", load_assignment: { policy: { overprovisioning_factor: 0 } } }),
    "config: static_resources.clusters[0].load_assignment.policy.overprovisioning_factor: 0 is below the minimum 1",
  );
  assertEquals(
    err({ ...cluster(), load_assignment: { endpoints: [{ lb_endpoints: [ep("10.0.0.1", 70000)] }] } }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address" +
      ".socket_address.port_value: 70000 is above the maximum 65535",
  );
  assertEquals(
    err({
      ...cluster(),
      typed_extension_protocol_options: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          explicit_http_config: { http3_protocol_options: {} },
        },
      },
    }),
    "config: static_resources.clusters[0].typed_extension_protocol_options" +
      ".envoy.extensions.upstreams.http.v3.HttpProtocolOptions.explicit_http_config.http3_protocol_options: " +
      "is not supported",
  );
  assertEquals(
    err({ ...cluster(), type: "LOGICAL_DNS", load_assignment: { endpoints: [] } }),
    "config: static_resources.clusters[0].load_assignment: LOGICAL_DNS clusters must have exactly one endpoint " +
      "(found 0)",
  );
  assertEquals(
    err({ ...cluster(), circuit_breakers: { thresholds: [{ max_connections: -1 }] } }),
    "config: static_resources.clusters[0].circuit_breakers.thresholds[0].max_connections: -1 is below the minimum 0",
  );
  assertEquals(
    err({ ...cluster(), connect_timeout: "5" }),
    'config: static_resources.clusters[0].connect_timeout: "5" is not a duration (expected e.g. "5s" or "0.250s")',
  );
});

Deno.test("parseClusters rejects duplicate names", () => {
  const e = assertThrows(
    () => parseClusters([cluster(), cluster()], "static_resources.clusters"),
    ConfigError,
  );
  assertEquals(
    e.message,
    'config: static_resources.clusters[1].name: cluster "payments" is already defined at static_resources.clusters[0]',
  );
  assertEquals(parseClusters(undefined, "x"), []);
});

Deno.test("parseCluster accepts IPv6 literals in STATIC clusters", () => {
  const c = parseCluster({ name: "v6", load_assignment: { endpoints: [{ lb_endpoints: [ep("::1", 80)] }] } }, "c");
  assertEquals(c.localities[0]!.endpoints[0]!.address, "::1");
});

Deno.test("parseCluster reads health checks, outlier detection, hashing and slow start", () => {
  const c = parseCluster(
    cluster({
      lb_policy: "RING_HASH",
      ring_hash_lb_config: { minimum_ring_size: 2048, maximum_ring_size: 4096 },
      maglev_lb_config: { table_size: 5 },
      round_robin_lb_config: { slow_start_config: { slow_start_window: "10s", min_weight_percent: { value: 20 } } },
      health_checks: [{
        timeout: "1s",
        interval: "2s",
        unhealthy_threshold: 3,
        healthy_threshold: 2,
        http_health_check: {
          path: "/healthz",
          expected_statuses: [{ start: 200, end: 300 }],
          request_headers_to_add: [{ header: { key: "X-Hc", value: "1" } }],
        },
      }],
      outlier_detection: { consecutive_5xx: 3, base_ejection_time: "5s", max_ejection_percent: 50 },
      circuit_breakers: {
        thresholds: [{ max_requests: 10, retry_budget: { budget_percent: { value: 25 } }, track_remaining: true }],
      },
    }),
    "c",
  );
  assertEquals(c.lbPolicy, "RING_HASH");
  assertEquals(c.ringHash, { minimumRingSize: 2048, maximumRingSize: 4096 });
  assertEquals(c.maglev.tableSize, 5);
  assertEquals(c.slowStart, { windowMs: 10_000, aggression: 1, minWeightPercent: 20 });
  const hc = c.healthChecks[0]!;
  assertEquals(hc.intervalMs, 2000);
  assertEquals(hc.unhealthyIntervalMs, 2000);
  assertEquals(hc.noTrafficIntervalMs, 60_000);
  assertEquals(hc.checker.kind, "http");
  if (hc.checker.kind === "http") {
    assertEquals(hc.checker.expectedStatuses, [[200, 300]]);
    assertEquals(hc.checker.requestHeadersToAdd, [{ name: "x-hc", value: "1", append: true }]);
  }
  assertEquals(c.outlierDetection?.consecutive5xx, 3);
  assertEquals(c.outlierDetection?.maxEjectionTimeMs, 300_000);
  assertEquals(c.outlierDetection?.enforcingConsecutiveGatewayFailure, 0);
  assertEquals(c.circuitBreakers.DEFAULT.retryBudget, { budgetPercent: 25, minRetryConcurrency: 3 });
  assertEquals(c.circuitBreakers.DEFAULT.trackRemaining, true);
  assertEquals(
    err(cluster({ maglev_lb_config: { table_size: 65536 } })),
    "config: static_resources.clusters[0].maglev_lb_config.table_size: 65536 is not a prime number",
  );
  const tcp = parseCluster(
    cluster({
      health_checks: [{
        timeout: "1s",
        interval: "1s",
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        tcp_health_check: { send: { text: "50494e47" }, receive: [{ binary: btoa("PONG") }] },
      }],
    }),
    "c",
  ).healthChecks[0]!.checker;
  assertEquals(tcp.kind === "tcp" ? [...tcp.send!] : [], [0x50, 0x49, 0x4e, 0x47]);
  assertEquals(tcp.kind === "tcp" ? new TextDecoder().decode(tcp.receive[0]) : "", "PONG");
});

Deno.test("parseCluster rejects the health options Ferry does not implement yet", () => {
  assertEquals(
    err(cluster({ common_lb_config: { ignore_new_hosts_until_first_hc: true } })),
    "config: static_resources.clusters[0].common_lb_config.ignore_new_hosts_until_first_hc: is not supported yet",
  );
  const hc = { timeout: "1s", interval: "1s", unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} };
  assertEquals(
    err(cluster({ health_checks: [hc], ignore_health_on_host_removal: false })),
    "config: static_resources.clusters[0].ignore_health_on_host_removal: false is not supported yet (Ferry removes " +
      "hosts at once, as with true)",
  );
  assertEquals(
    parseCluster(cluster({ health_checks: [hc], ignore_health_on_host_removal: true }), "c").name,
    "payments",
  );
  assertEquals(
    err(cluster({ health_checks: [hc, hc] })),
    "config: static_resources.clusters[0].health_checks[1]: more than one health check is not supported yet",
  );
  assertEquals(
    err(cluster({ health_checks: [{ ...hc, tcp_health_check: undefined, custom_health_check: {} }] })),
    "config: static_resources.clusters[0].health_checks[0].custom_health_check: is not supported yet",
  );
});

Deno.test("parseCluster reads HTTP/2 upstream options from explicit_http_config and the cluster-level field", () => {
  const explicit = parseCluster({
    ...cluster(),
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: {
          http2_protocol_options: {
            max_concurrent_streams: 50,
            initial_stream_window_size: 1048576,
            connection_keepalive: { interval: "10s", timeout: "2s" },
          },
        },
      },
    },
  }, "static_resources.clusters[0]");
  assertEquals(explicit.httpProtocol, "http2");
  assertEquals(explicit.http2, {
    maxConcurrentStreams: 50,
    initialStreamWindowSize: 1048576,
    connectionKeepalive: { intervalMs: 10000, timeoutMs: 2000 },
  });
  const legacy = parseCluster({ ...cluster(), http2_protocol_options: {} }, "static_resources.clusters[0]");
  assertEquals(legacy.httpProtocol, "http2");
  assertEquals(parseCluster(cluster(), "static_resources.clusters[0]").httpProtocol, "http1");
  assertEquals(
    err({ ...cluster(), http2_protocol_options: { initial_stream_window_size: 100 } }),
    "config: static_resources.clusters[0].http2_protocol_options.initial_stream_window_size: 100 is below the " +
      "minimum 65535",
  );
});

Deno.test("parseCluster takes grpc_health_check (service_name, authority)", () => {
  const c = parseCluster(
    cluster({
      health_checks: [{
        timeout: "1s",
        interval: "5s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: { service_name: "pkg.Svc", authority: "svc.local" },
      }],
    }),
    "static_resources.clusters[0]",
  );
  const checker = c.healthChecks[0]!.checker;
  assertEquals(checker.kind, "grpc");
  assertEquals(checker.kind === "grpc" && [checker.serviceName, checker.authority], ["pkg.Svc", "svc.local"]);
});

const HPO = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const UPSTREAM_TLS = {
  name: "envoy.transport_sockets.tls",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" },
};

function autoCluster(auto: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return cluster({
    typed_extension_protocol_options: { [HPO]: { "@type": `type.googleapis.com/${HPO}`, auto_config: auto } },
    ...extra,
  });
}

Deno.test("parseCluster takes auto_config with a TLS transport socket (protocol auto, its HTTP/2 options)", () => {
  const c = parseCluster(
    autoCluster({ http_protocol_options: {}, http2_protocol_options: { max_concurrent_streams: 64 } }, {
      transport_socket: UPSTREAM_TLS,
    }),
    "static_resources.clusters[0]",
  );
  assertEquals(c.httpProtocol, "auto");
  assertEquals(c.http2, { maxConcurrentStreams: 64 });
  assertEquals(c.transportSocket?.kind, "native");
  assertEquals(parseCluster(autoCluster({}, { transport_socket: UPSTREAM_TLS }), "c").httpProtocol, "auto");
});

Deno.test("parseCluster rejects auto_config without a TLS transport socket, as Envoy does", () => {
  const path = `static_resources.clusters[0].typed_extension_protocol_options.${HPO}.auto_config`;
  assertEquals(
    err(autoCluster({})),
    `config: ${path}: needs a TLS transport_socket (the upstream protocol is chosen by ALPN)`,
  );
  const raw = { name: "envoy.transport_sockets.raw_buffer" };
  assertEquals(
    err(autoCluster({}, { transport_socket: raw })),
    `config: ${path}: needs a TLS transport_socket (the upstream protocol is chosen by ALPN)`,
  );
});

Deno.test("parseCluster rejects HTTP/3 in auto_config and auto_config beside explicit_http_config", () => {
  const path = `static_resources.clusters[0].typed_extension_protocol_options.${HPO}`;
  const tls = { transport_socket: UPSTREAM_TLS };
  assertEquals(
    err(autoCluster({ http3_protocol_options: {} }, tls)),
    `config: ${path}.auto_config.http3_protocol_options: is not supported`,
  );
  assertEquals(
    err(autoCluster({ alternate_protocols_cache_options: { name: "x" } }, tls)),
    `config: ${path}.auto_config.alternate_protocols_cache_options: is not supported (it serves HTTP/3)`,
  );
  const both = cluster({
    ...tls,
    typed_extension_protocol_options: {
      [HPO]: {
        "@type": `type.googleapis.com/${HPO}`,
        auto_config: {},
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  });
  assertEquals(err(both).startsWith(`config: ${path}`), true, err(both));
  assertEquals(err(autoCluster({ bogus: 1 }, tls)), `config: ${path}.auto_config.bogus: unknown field`);
});

Deno.test("parseCluster takes type EDS with eds_cluster_config, priorities, the assignment policy and locality weighting", () => {
  const c = parseCluster({
    name: "payments",
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } },
    common_lb_config: { healthy_panic_threshold: { value: 30 }, locality_weighted_lb_config: {} },
    load_assignment: {
      endpoints: [
        { priority: 0, load_balancing_weight: 2, lb_endpoints: [ep("10.0.0.1", 80)] },
        { priority: 3, lb_endpoints: [ep("10.0.0.2", 80, { health_status: "DRAINING" })] },
      ],
      policy: { overprovisioning_factor: 200, weighted_priority_health: true, endpoint_stale_after: "10s" },
    },
  }, "c");
  assertEquals(c.type, "EDS");
  // service_name defaults to the cluster's name; the config source stays raw for the xDS client.
  assertEquals(c.eds, { serviceName: "payments", configSource: { ads: {}, resource_api_version: "V3" } });
  assertEquals(edsServiceName(c), "payments");
  assertEquals([c.healthyPanicThreshold, c.localityWeightedLb], [30, true]);
  assertEquals([c.overprovisioningFactor, c.weightedPriorityHealth], [200, true]);
  assertEquals(c.localities.map((l) => [l.priority, l.weight]), [[0, 2], [3, undefined]]);
  const named = parseCluster({
    name: "a",
    type: "EDS",
    eds_cluster_config: { service_name: "a-v2", eds_config: { path_config_source: { path: "/x.yaml" } } },
  }, "c");
  assertEquals(named.eds?.serviceName, "a-v2");
  assertEquals(named.localities, []);
  // Defaults: Envoy's factor 1.4, no locality weighting, no EDS.
  const plain = parseCluster(cluster(), "c");
  assertEquals([plain.overprovisioningFactor, plain.weightedPriorityHealth, plain.localityWeightedLb], [
    140,
    false,
    false,
  ]);
  assertEquals([plain.eds, edsServiceName(plain)], [undefined, undefined]);
  // EDS endpoints are IP addresses, as STATIC ones.
  assertEquals(
    err({
      name: "e",
      type: "EDS",
      eds_cluster_config: { eds_config: {} },
      load_assignment: { endpoints: [{ lb_endpoints: [ep("db", 1)] }] },
    }),
    "config: static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address" +
      '.socket_address.address: "db" is not an IP address (EDS clusters need IP addresses; use STRICT_DNS or LOGICAL_DNS)',
  );
});

Deno.test("parseLoadAssignment reads the policy an EDS push carries", () => {
  const la = parseLoadAssignment(
    {
      cluster_name: "svc",
      endpoints: [{ priority: 1, lb_endpoints: [ep("10.0.0.1", 80)] }],
      policy: { overprovisioning_factor: 100 },
    },
    "cla",
    "EDS",
  );
  assertEquals([la.clusterName, la.overprovisioningFactor, la.weightedPriorityHealth], ["svc", 100, false]);
  assertEquals(la.localities[0]!.priority, 1);
  assertEquals(parseLoadAssignment({}, "cla", "EDS").overprovisioningFactor, 140);
});

Deno.test("parseLoadAssignment reads endpoints the same on its fast path and its field-by-field path", () => {
  const sa = { address: "10.0.0.1", port_value: 80 };
  const shapes: [unknown, Record<string, unknown>][] = [
    [{ endpoint: { address: { socket_address: sa } } }, { weight: 1, healthStatus: "UNKNOWN" }],
    [
      {
        endpoint: {
          address: { socketAddress: { address: "10.0.0.1", portValue: 80, protocol: "TCP" } },
          hostname: "h",
        },
        healthStatus: "DEGRADED",
        loadBalancingWeight: 3,
        metadata: { filter_metadata: { envoy: { canary: true } } },
      },
      {
        weight: 3,
        healthStatus: "DEGRADED",
        hostname: "h",
        metadata: { filter_metadata: { envoy: { canary: true } } },
      },
    ],
    // Not the fast path's shapes, same meaning: a lower-case enum, a wrapped weight, a null field.
    [
      { endpoint: { address: { socket_address: sa } }, health_status: "healthy", load_balancing_weight: { value: 2 } },
      { weight: 2, healthStatus: "HEALTHY" },
    ],
    [{ endpoint: { address: { socket_address: sa }, hostname: null } }, { weight: 1, healthStatus: "UNKNOWN" }],
  ];
  for (const [raw, want] of shapes) {
    const e = parseLoadAssignment({ endpoints: [{ lb_endpoints: [raw] }] }, "cla", "EDS").localities[0]!.endpoints[0]!;
    assertEquals(e, { address: "10.0.0.1", port: 80, path: "cla.endpoints[0].lb_endpoints[0]", ...want });
  }
  // Invalid entries still get the reader's messages.
  const bad = (lbEndpoint: unknown) => {
    try {
      parseLoadAssignment({ endpoints: [{ lb_endpoints: [lbEndpoint] }] }, "cla", "EDS");
    } catch (e) {
      return (e as Error).message;
    }
    return "(parsed)";
  };
  const at = "config: cla.endpoints[0].lb_endpoints[0]";
  assertEquals(
    bad({ endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 0 } } } }),
    `${at}.endpoint.address.socket_address.port_value: must be between 1 and 65535`,
  );
  assertEquals(bad({ endpoint: { address: { socket_address: sa } }, weight: 2 }), `${at}.weight: unknown field`);
  assertEquals(
    bad({ endpoint: { address: { socket_address: sa } }, load_balancing_weight: 0 }),
    `${at}.load_balancing_weight: 0 is below the minimum 1`,
  );
  assertEquals(
    bad({ endpoint: { address: { socket_address: sa } }, metadata: 3 }),
    `${at}.metadata: expected an object, got 3`,
  );
  assertEquals(
    bad({ endpoint: { address: { socket_address: { address: "db", port_value: 1 } } } }),
    `${at}.endpoint.address.socket_address.address: "db" is not an IP address (EDS clusters need IP addresses; ` +
      "use STRICT_DNS or LOGICAL_DNS)",
  );
});
