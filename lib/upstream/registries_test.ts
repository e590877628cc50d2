import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { ConfigError } from "../api/errors.ts";
import type { LocalityLbEndpoints } from "../api/upstream.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { ClusterImpl } from "./cluster.ts";
import { ClusterManagerImpl } from "./cluster_manager.ts";
import { type ClusterTypeFactory, createClusterTypeRegistry, type HostSpec } from "./cluster_types.ts";
import { type ClusterConfig, type ClusterType, type LbPolicy, parseCluster } from "./config.ts";
import {
  builtinLoadBalancers,
  createLoadBalancer,
  createLoadBalancerRegistry,
  type LoadBalancerFactory,
  lookupLoadBalancer,
  MaglevLoadBalancer,
  roundRobinLbFactory,
} from "./lb/mod.ts";
import { createConnPoolRegistry, pingPongPoolFactory } from "./pool_factory.ts";
import { createUpstreamRegistries } from "./registries.ts";

function cfg(extra: Record<string, unknown> = {}): ClusterConfig {
  return parseCluster({
    name: "svc",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [1001, 1002].map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    ...extra,
  }, "static_resources.clusters[0]");
}

/** A third-party policy: always the first usable host. */
const firstHostLb: LoadBalancerFactory = {
  name: "FIRST_HOST",
  configTypes: ["type.example.com/example.FirstHost"],
  create(_config, context) {
    return {
      chooseHost: () => context.source.hosts.find((h) => h.healthy),
    };
  },
};

Deno.test("createUpstreamRegistries lists the built-in cluster types, load balancers and pools", () => {
  const r = createUpstreamRegistries();
  assertEquals(r.clusterTypes.names, ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS"]);
  assertEquals(r.loadBalancers.names, ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"]);
  assertEquals(r.connPools.names, ["ping-pong", "multiplex-stream-id", "multiplex-request-id"]);
  // Envoy's load_balancing_policy extension URLs find the same factories.
  const url = "type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev";
  assert(r.loadBalancers.byType(url) === r.loadBalancers.byName("MAGLEV"));
  for (const f of builtinLoadBalancers) assertEquals(f.configTypes.length, 1, f.name);
});

Deno.test("upstream registries reject a name or a config type registered twice", () => {
  assertThrows(
    () => createLoadBalancerRegistry([roundRobinLbFactory]),
    Error,
    'load balancer "ROUND_ROBIN" is registered twice',
  );
  assertThrows(
    () => createLoadBalancerRegistry([{ ...firstHostLb, configTypes: roundRobinLbFactory.configTypes }]),
    Error,
    'claimed by "ROUND_ROBIN" and "FIRST_HOST"',
  );
  assertThrows(
    () => createClusterTypeRegistry([{ name: "STATIC", configTypes: [], create: () => ({}) as never }]),
    Error,
    'cluster type "STATIC" is registered twice',
  );
  assertThrows(
    () => createConnPoolRegistry([pingPongPoolFactory]),
    Error,
    'connection pool "ping-pong" is registered twice',
  );
  assertThrows(
    () => createUpstreamRegistries({ loadBalancers: [firstHostLb, firstHostLb] }),
    Error,
    "registered twice",
  );
});

Deno.test("ClusterImpl names the field and the known names for an unknown load balancer or cluster type", () => {
  const stats = new TestStats();
  const e = assertThrows(
    () => new ClusterImpl({ ...cfg(), lbPolicy: "FIRST_HOST" as LbPolicy }, { stats }),
    ConfigError,
  );
  assertEquals(
    e.message,
    'config: static_resources.clusters[0].lb_policy: unknown load balancer "FIRST_HOST" ' +
      "(known: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)",
  );
  const t = assertThrows(
    () => new ClusterImpl({ ...cfg(), type: "ORIGINAL_DST" as ClusterType }, { stats }),
    ConfigError,
  );
  assertEquals(
    t.message,
    'config: static_resources.clusters[0].type: unknown cluster type "ORIGINAL_DST" ' +
      "(known: STATIC, STRICT_DNS, LOGICAL_DNS, EDS)",
  );
  assertThrows(
    () => lookupLoadBalancer(createLoadBalancerRegistry(), "NOPE", "p"),
    ConfigError,
    'p: unknown load balancer "NOPE"',
  );
});

Deno.test("ClusterManagerImpl builds clusters with registered third-party load balancers and cluster types", () => {
  // An EDS-like type: no hosts until endpoints are pushed, then whatever it is given.
  const pushed: ClusterTypeFactory = {
    name: "PUSHED",
    configTypes: [],
    create(_config, context) {
      return {
        initialize: () => Promise.resolve(),
        refresh: () => Promise.resolve(),
        updateEndpoints(endpoints: readonly LocalityLbEndpoints[]) {
          const specs: HostSpec[] = endpoints.flatMap((l) =>
            l.endpoints.map((e) => ({
              address: e.address,
              port: e.port,
              hostname: e.hostname,
              weight: e.weight,
              healthStatus: e.healthStatus,
              locality: l.locality ?? { region: "", zone: "", subZone: "" },
              metadata: e.metadata,
            }))
          );
          context.setHosts(specs);
        },
        stop() {},
      };
    },
  };
  const registries = createUpstreamRegistries({ loadBalancers: [firstHostLb], clusterTypes: [pushed] });
  const stats = new TestStats();
  const cm = new ClusterManagerImpl([
    { ...cfg(), lbPolicy: "FIRST_HOST" as LbPolicy },
    { ...cfg(), name: "eds", type: "PUSHED" as ClusterType },
    { ...cfg({ lb_policy: "MAGLEV" }), name: "mg" },
  ], { stats, registries, httpCodec: http1CodecFactory });
  try {
    const svc = cm.get("svc")!;
    for (let i = 0; i < 5; i++) assertEquals(svc.chooseHost()!.port, 1001);
    const eds = cm.get("eds")!;
    assertEquals(eds.hosts.length, 0);
    cm.updateHosts("eds", [{
      priority: 0,
      endpoints: [{ address: "10.1.1.1", port: 80, weight: 1, healthStatus: "HEALTHY" }],
    }]);
    assertEquals(eds.hosts.map((h) => h.key), ["10.1.1.1:80"]);
    assertEquals(stats.get("cluster.eds.membership_total"), 1);
    assert(cm.get("mg")!.chooseHost({ hashKey: 42 }) !== undefined);
    // createLoadBalancer (no registry) builds the built-ins only.
    assert(createLoadBalancer("MAGLEV", { hosts: [], hostsVersion: 0 }) instanceof MaglevLoadBalancer);
    assertThrows(
      () => createLoadBalancer("FIRST_HOST", { hosts: [], hostsVersion: 0 }),
      Error,
      "unknown load balancer",
    );
  } finally {
    cm.shutdown();
  }
});
