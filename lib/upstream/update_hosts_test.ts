import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import type { CodecFactory } from "../api/codec.ts";
import type { LbEndpoint, LocalityLbEndpoints } from "../api/upstream.ts";
import { setLogLevel } from "../observe/log.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, type Outcome, TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { ClusterManagerImpl, compareClusterConfig } from "./cluster_manager.ts";
import { parseCluster } from "./config.ts";
import { HealthFlag, type HostImpl } from "./host.ts";
import type { DnsResolver } from "./dns.ts";

// Health-check and outlier transitions are logged at info/warn; the tests assert flags and stats.
setLogLevel("error");

/** An endpoint on 127.0.0.1 in the shape `updateHosts` takes. */
function ep(port: number, extra: Partial<LbEndpoint> = {}): LbEndpoint {
  return { address: "127.0.0.1", port, weight: 1, healthStatus: "UNKNOWN", ...extra };
}

function eps(...endpoints: LbEndpoint[]): LocalityLbEndpoints[] {
  return [{ priority: 0, endpoints }];
}

/** The raw (Envoy JSON) form of a cluster on 127.0.0.1 ports. */
function raw(name: string, ports: number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    connect_timeout: "1s",
    load_assignment: {
      endpoints: [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    ...extra,
  };
}

/** Sends a GET through the host's default pool (or a host the balancer picks). */
function send(c: ClusterImpl, path = "/", host = c.chooseHost()!): Promise<Outcome> {
  const e = new Exchange(path);
  c.httpPool(host).newStream(e, e);
  return e.done;
}

Deno.test("ClusterImpl.updateHosts keeps an unchanged host's object, pool and upstream connection", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  const stats = new TestStats();
  const c = new ClusterImpl(parseCluster(raw("svc", [a.port]), "c"), { stats, httpCodec: http1CodecFactory });
  try {
    const hostA = c.hosts[0]!;
    const poolA = c.httpPool(hostA);
    assertEquals((await send(c, "/1", hostA)).headers!.get("x-conn"), "1");
    assertEquals(stats.get("cluster.svc.membership_change"), 1);
    c.updateHosts(eps(ep(a.port), ep(b.port)));
    assertEquals(c.hosts.map((h) => h.port), [a.port, b.port]);
    assert(c.hosts[0] === hostA, "same Host object");
    assert(c.httpPool(hostA) === poolA, "same pool");
    assertEquals(poolA.idleConnections, 1);
    const again = await send(c, "/2", hostA);
    assertEquals(again.headers!.get("x-conn"), "1");
    assertEquals(again.info!.reused, true);
    assertEquals(a.accepted, 1, "the upstream saw one connection across the update");
    // The added host takes its share of traffic.
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const h = c.chooseHost()!;
      seen.add(h.port);
      assertEquals((await send(c, "/rr", h)).status, 200);
    }
    assertEquals([...seen].sort(), [a.port, b.port].sort());
    assert(b.requests.length >= 2, "the added host received requests");
    assertEquals(stats.get("cluster.svc.membership_total"), 2);
    assertEquals(stats.get("cluster.svc.membership_healthy"), 2);
    assertEquals(stats.get("cluster.svc.membership_change"), 2);
    // The same list again changes nothing.
    const version = c.hostsVersion;
    c.updateHosts(eps(ep(a.port), ep(b.port)));
    assertEquals(c.hostsVersion, version);
    assertEquals(stats.get("cluster.svc.membership_change"), 2);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("ClusterImpl.updateHosts drains a removed host: the request in flight completes, then its connection closes", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  a.reply = (r) => r.path === "/slow" ? { delayMs: 200, body: "slow done" } : {};
  const stats = new TestStats();
  const c = new ClusterImpl(parseCluster(raw("svc", [a.port, b.port]), "c"), {
    stats,
    httpCodec: http1CodecFactory,
  });
  try {
    const [hostA, hostB] = c.hosts;
    const poolA = c.httpPool(hostA!);
    const slow = send(c, "/slow", hostA);
    await waitFor(() => a.requests.length === 1, 2000, "slow request sent");
    c.updateHosts(eps(ep(b.port)));
    assertEquals(c.hosts.length, 1);
    assert(c.hosts[0] === hostB, "the remaining host is kept");
    assert(poolA.draining, "the removed host's pool drains");
    for (let i = 0; i < 10; i++) assert(c.chooseHost() === hostB, "new requests never go to the removed host");
    assertEquals(stats.get("cluster.svc.membership_total"), 1);
    assertEquals(stats.get("cluster.svc.membership_healthy"), 1);
    assertEquals(stats.get("cluster.svc.membership_change"), 2);
    const o = await slow;
    assertEquals([o.status, o.body], [200, "slow done"]);
    await waitFor(() => a.conns.size === 0, 2000, "the removed host's connection closed");
    assertEquals(poolA.activeConnections, 0);
    assertEquals(c.pools.has(hostA!), false, "the drained pool is gone");
    assertEquals(stats.get("cluster.svc.upstream_cx_active"), 0);
    assertEquals((await send(c, "/after")).status, 200);
    assertEquals(a.requests.length, 1);
    assertEquals(b.requests.map((r) => r.path), ["/after"]);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("ClusterImpl.updateHosts keeps active health-check state: a failed host stays failed, sessions go on", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  const n = new TestUpstream();
  b.reply = () => ({ status: 503 });
  const stats = new TestStats();
  const c = new ClusterImpl(
    parseCluster(
      raw("svc", [a.port, b.port], {
        health_checks: [{
          timeout: "0.5s",
          interval: "0.03s",
          no_traffic_interval: "0.03s",
          unhealthy_threshold: 1,
          healthy_threshold: 1,
          http_health_check: { path: "/healthz" },
        }],
      }),
      "c",
    ),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    await c.initialize();
    const [hostA, hostB] = c.hosts;
    assertEquals([hostA!.healthFlagsText, hostB!.healthFlagsText], ["healthy", "/failed_active_hc"]);
    const checksOfA = a.requests.length;
    c.updateHosts(eps(ep(a.port), ep(b.port, { weight: 2 }), ep(n.port)));
    assert(c.hosts[0] === hostA && c.hosts[1] === hostB);
    assertEquals(hostB!.weight, 2);
    // Kept hosts keep their flags; only the new one starts failed and pending its first check.
    assertEquals(c.hosts.map((h) => h.healthFlagsText), [
      "healthy",
      "/failed_active_hc",
      "/failed_active_hc/pending_active_hc",
    ]);
    assertEquals(stats.get("cluster.svc.membership_healthy"), 1);
    assertEquals(stats.get("cluster.svc.health_check.healthy"), 1);
    await waitFor(() => c.hosts[2]!.healthy, 2000, "the new host passes its first check");
    assertEquals(stats.get("cluster.svc.health_check.healthy"), 2);
    // A's session carried on over its one connection: no new session, no new connection.
    await waitFor(() => a.requests.length >= checksOfA + 3, 2000, "more checks of A");
    assertEquals(a.accepted, 1);
    assert(!hostB!.healthy);
    for (let i = 0; i < 10; i++) assert(c.chooseHost() !== hostB);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
    await n.close();
  }
});

Deno.test("ClusterImpl.updateHosts keeps outlier-detection state: an ejected host stays ejected", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  const stats = new TestStats();
  const c = new ClusterImpl(
    parseCluster(
      raw("svc", [a.port, b.port], {
        outlier_detection: { consecutive_5xx: 2, max_ejection_percent: 50, base_ejection_time: "30s" },
      }),
      "c",
    ),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    const [hostA, hostB] = c.hosts;
    const monitorA = hostA!.monitor;
    hostA!.monitor!.putHttpResponseCode(503);
    hostA!.monitor!.putHttpResponseCode(500);
    assertEquals(hostA!.healthFlagsText, "/failed_outlier_check");
    c.updateHosts(eps(ep(a.port, { weight: 3 }), ep(b.port)));
    assert(c.hosts[0] === hostA && hostA!.monitor === monitorA, "same host, same monitor");
    assertEquals(hostA!.weight, 3);
    assertEquals(hostA!.healthFlagsText, "/failed_outlier_check");
    assertEquals(c.outlierDetector!.ejectedCount, 1);
    assertEquals(stats.get("cluster.svc.outlier_detection.ejections_active"), 1);
    for (let i = 0; i < 10; i++) assert(c.chooseHost() === hostB);
    // Removing the ejected host ends its ejection; its late reports eject nothing.
    c.updateHosts(eps(ep(b.port)));
    assertEquals(stats.get("cluster.svc.outlier_detection.ejections_active"), 0);
    monitorA!.putHttpResponseCode(500);
    monitorA!.putHttpResponseCode(500);
    monitorA!.putHttpResponseCode(500);
    assertEquals(stats.get("cluster.svc.outlier_detection.ejections_total"), 1);
    assertEquals(c.outlierDetector!.ejectedCount, 0);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("ClusterImpl.updateHosts updates weight, health status, hostname and metadata in place", () => {
  const stats = new TestStats();
  const c = new ClusterImpl(parseCluster(raw("svc", [1001, 1002]), "c"), { stats, random: () => 0 });
  const [h1, h2] = c.hosts;
  const v0 = c.hostsVersion;
  c.updateHosts(eps(
    ep(1001, { weight: 5, hostname: "one.example", metadata: { filter_metadata: { envoy: { canary: true } } } }),
    ep(1002, { healthStatus: "UNHEALTHY" }),
  ));
  assert(c.hosts[0] === h1 && c.hosts[1] === h2);
  assertEquals([h1!.weight, h1!.hostname], [5, "one.example"]);
  assertEquals(h1!.metadata, { filter_metadata: { envoy: { canary: true } } });
  assertEquals(h2!.healthFlagsText, "/failed_eds_health");
  assert(c.hostsVersion > v0, "the balancer rebuilds");
  assertEquals(stats.get("cluster.svc.membership_change"), 1, "in-place updates are no membership change");
  assertEquals(stats.get("cluster.svc.membership_healthy"), 1);
  for (let i = 0; i < 5; i++) assert(c.chooseHost() === h1);
  // DRAINING excludes (Envoy's /eds_status_draining); back to HEALTHY clears the EDS flags, other flags stay.
  h2!.healthy = false;
  c.updateHosts(eps(ep(1001, { weight: 5, hostname: "one.example" }), ep(1002, { healthStatus: "DRAINING" })));
  assertEquals(h2!.healthFlagsText, "/failed_active_hc/eds_status_draining");
  assertEquals(stats.get("cluster.svc.membership_excluded"), 1);
  assertEquals(h1!.metadata, undefined);
  c.updateHosts(eps(ep(1001), ep(1002, { healthStatus: "HEALTHY" })));
  assertEquals(h2!.healthFlagsText, "/failed_active_hc");
  // Duplicates keep their own hosts.
  c.updateHosts(eps(ep(1001), ep(1001), ep(1002)));
  assertEquals(c.hosts.length, 3);
  assert(c.hosts[0] === h1 && c.hosts[2] === h2 && c.hosts[1] !== h1);
});

Deno.test("ClusterImpl.updateHosts rejects what it cannot apply and changes nothing", async () => {
  const stats = new TestStats();
  const c = new ClusterImpl(parseCluster(raw("svc", [1001]), "c"), { stats });
  const h = c.hosts[0]!;
  assertThrows(
    () => c.updateHosts([{ priority: 129, endpoints: [ep(1002)] }]),
    Error,
    'cluster "svc": endpoints[0]: priority 129 is not in 0..128',
  );
  assertEquals(stats.get("cluster.svc.update_rejected"), 1);
  assertThrows(
    () => c.updateHosts(eps(ep(1002), { ...ep(1003), address: "backend.local" })),
    Error,
    'cluster "svc": endpoints[0].lb_endpoints[1]: "backend.local" is not an IP address',
  );
  assertEquals(c.hosts, [h]);
  assertEquals(c.endpoints, c.config.localities);
  const resolver: DnsResolver = () => Promise.resolve({ addresses: ["10.0.0.1"] });
  const dns = new ClusterImpl(
    parseCluster({ ...raw("dns", [1001]), type: "STRICT_DNS" }, "c"),
    { stats, resolver, log: () => {} },
  );
  assertEquals(dns.takesEndpointUpdates, false);
  assertThrows(
    () => dns.updateHosts(eps(ep(1001))),
    Error,
    'cluster "dns": a STRICT_DNS cluster finds its hosts itself and takes no endpoint updates',
  );
  await dns.initialize();
  dns.shutdown();
  c.shutdown();
});

Deno.test("ClusterImpl.pool keeps one pool per host and codec, chosen by the codec's pool mode", async () => {
  const a = new TestUpstream();
  const c = new ClusterImpl(parseCluster(raw("svc", [a.port]), "c"), {
    stats: new TestStats(),
    httpCodec: http1CodecFactory,
  });
  try {
    const h = c.hosts[0]!;
    const other: CodecFactory = { ...http1CodecFactory, name: "http1-other" };
    const p1 = c.pool(h, http1CodecFactory);
    assert(c.httpPool(h) === p1, "httpPool is the default codec's pool");
    const p2 = c.pool(h, other);
    assert(p2 !== p1 && c.pool(h, other) === p2);
    assertEquals([...c.poolsOf(h).keys()].map((x) => x.name), ["http1", "http1-other"]);
    const e = new Exchange("/other");
    p2.newStream(e, e);
    assertEquals((await e.done).status, 200);
    const bolt: CodecFactory = { ...http1CodecFactory, name: "bolt", poolMode: "multiplex-request-id" };
    // multiplex-request-id (Bolt, Dubbo) has its own pool per host and codec.
    const p3 = c.pool(h, bolt);
    assert(p3 !== p1 && p3 !== p2 && c.pool(h, bolt) === p3);
    // Removing the host drains its pools of every codec.
    c.updateHosts(eps());
    assert(p1.draining);
    await waitFor(() => c.poolsOf(h).size === 0, 2000, "pools drained");
    assertEquals(c.hosts.length, 0);
  } finally {
    c.shutdown();
    await a.close();
  }
});

Deno.test("ClusterManagerImpl.addOrUpdate updates endpoints in place and rebuilds on other changes", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  const stats = new TestStats();
  const cm = new ClusterManagerImpl([parseCluster(raw("svc", [a.port]), "static_resources.clusters[0]")], {
    stats,
    httpCodec: http1CodecFactory,
  });
  try {
    await cm.initialize({ timeoutMs: 1000 });
    const c = cm.get("svc")!;
    const hostA = c.hosts[0]!;
    const poolA = c.httpPool(hostA);
    assertEquals((await send(c, "/1", hostA)).status, 200);
    // The same config from another place (CDS): kept.
    assert(cm.addOrUpdate(parseCluster(raw("svc", [a.port]), "cds[0]")) === c);
    // Only load_assignment differs: same cluster, the kept host keeps its pool and connection.
    assert(cm.addOrUpdate(parseCluster(raw("svc", [a.port, b.port]), "cds[0]")) === c);
    assertEquals(c.hosts.map((h) => h.port), [a.port, b.port]);
    assert(c.hosts[0] === hostA && c.httpPool(hostA) === poolA);
    assertEquals((await send(c, "/2", hostA)).headers!.get("x-conn"), "1");
    assertEquals(a.accepted, 1);
    assertEquals(c.addedViaApi, true);
    assertEquals(c.config.localities[0]!.endpoints.length, 2);
    // EDS-style: the manager's updateHosts.
    cm.updateHosts("svc", eps(ep(a.port)));
    assertEquals(c.hosts, [hostA]);
    // connect_timeout differs: a new cluster; the old one drains.
    const c2 = cm.addOrUpdate(parseCluster(raw("svc", [a.port], { connect_timeout: "2s" }), "cds[0]"));
    assert(c2 !== c && cm.get("svc") === c2);
    assertEquals(c2.info.connectTimeoutMs, 2000);
    await waitFor(() => a.conns.size === 0, 2000, "the old cluster's connection closed");
    assertEquals((await send(c2, "/3")).headers!.get("x-conn"), "2");
    assertThrows(() => cm.updateHosts("nope", eps()), Error, 'cluster "nope": no such cluster to update the hosts of');
  } finally {
    cm.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("ClusterManagerImpl.updateHosts refuses DNS clusters; their endpoint changes rebuild them", async () => {
  const resolver: DnsResolver = () => Promise.resolve({ addresses: ["10.0.0.1"] });
  const dnsRaw = (port: number) => ({
    name: "dns",
    type: "STRICT_DNS",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "svc", port_value: port } } } }],
      }],
    },
  });
  const cm = new ClusterManagerImpl([parseCluster(dnsRaw(80), "c")], {
    stats: new TestStats(),
    resolver,
    log: () => {},
  });
  try {
    await cm.initialize({ timeoutMs: 1000 });
    const c = cm.get("dns")!;
    assertThrows(
      () => cm.updateHosts("dns", eps(ep(81))),
      Error,
      'cluster "dns": a STRICT_DNS cluster finds its hosts itself and takes no endpoint updates',
    );
    assert(cm.addOrUpdate(parseCluster(dnsRaw(80), "cds")) === c);
    const c2 = cm.addOrUpdate(parseCluster(dnsRaw(81), "cds"));
    assert(c2 !== c);
    await c2.initialize();
    assertEquals(c2.hosts.map((h) => h.key), ["10.0.0.1:81"]);
  } finally {
    cm.shutdown();
  }
});

Deno.test("compareClusterConfig compares structurally, ignoring config paths", () => {
  const base = parseCluster(raw("svc", [1001], { health_checks: hc("/a") }), "static_resources.clusters[3]");
  const moved = parseCluster(raw("svc", [1001], { health_checks: hc("/a") }), "cds[0]");
  assertEquals(compareClusterConfig(base, base.localities, moved), "none");
  const eps2 = parseCluster(raw("svc", [1001, 1002], { health_checks: hc("/a") }), "cds[0]");
  assertEquals(compareClusterConfig(base, base.localities, eps2), "endpoints");
  // An HTTP health-check path is config, not a config path.
  const hcPath = parseCluster(raw("svc", [1001], { health_checks: hc("/b") }), "cds[0]");
  assertEquals(compareClusterConfig(base, base.localities, hcPath), "other");
  // After an EDS-style update, the config's own endpoints differ from what the cluster serves.
  assertEquals(compareClusterConfig(base, eps(ep(1001), ep(1002)), moved), "endpoints");
});

function hc(path: string): unknown[] {
  return [{ timeout: "1s", interval: "1s", unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path } }];
}

/** The raw form of an EDS cluster (no inline endpoints). */
function edsRaw(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    connect_timeout: "1s",
    type: "EDS",
    eds_cluster_config: { service_name: `${name}-eds`, eds_config: { ads: {} } },
    ...extra,
  };
}

Deno.test("ClusterImpl.updateHosts moves a host between priorities in place and applies the assignment policy", () => {
  const stats = new TestStats();
  // Every priority draw lands at 60 of 100: floor(random · 2^32) mod 100 = 59.
  const c = new ClusterImpl(parseCluster(edsRaw("svc"), "c"), { stats, random: () => (2 ** 31 + 11) / 2 ** 32 });
  assertEquals(c.hosts.length, 0);
  assertEquals(c.chooseHost(), undefined);
  // P0: 1001 healthy, 1002 unhealthy (health 70); P1: 1003.
  c.updateHosts([
    { priority: 0, endpoints: [ep(1001), ep(1002, { healthStatus: "UNHEALTHY" })] },
    { priority: 1, endpoints: [ep(1003)] },
  ]);
  const [h1, h2, h3] = c.hosts;
  assertEquals(c.hosts.map((h) => h.priority), [0, 0, 1]);
  const count = () => {
    const m = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const h = c.chooseHost()!;
      m.set(h.port, (m.get(h.port) ?? 0) + 1);
    }
    return m;
  };
  // P0 takes draws 1..70.
  assertEquals([...count().keys()], [1001]);
  // Factor 100 (P0 health 50): the draw 60 lands in P1.
  c.updateHosts(
    [
      { priority: 0, endpoints: [ep(1001), ep(1002, { healthStatus: "UNHEALTHY" })] },
      { priority: 1, endpoints: [ep(1003)] },
    ],
    { overprovisioningFactor: 100 },
  );
  assertEquals(c.overprovisioningFactor, 100);
  assertEquals([...count().keys()], [1003]);
  // The same list and policy again: nothing to rebuild.
  const v = c.hostsVersion;
  c.updateHosts(
    [
      { priority: 0, endpoints: [ep(1001), ep(1002, { healthStatus: "UNHEALTHY" })] },
      { priority: 1, endpoints: [ep(1003)] },
    ],
    { overprovisioningFactor: 100 },
  );
  assertEquals(c.hostsVersion, v);
  assertEquals(stats.get("cluster.svc.update_no_rebuild"), 1);
  assertEquals(stats.get("cluster.svc.update_attempt"), 3);
  assertEquals(stats.get("cluster.svc.update_success"), 3);
  // 1003 moves to P0 and 1001 to P1: the same host objects.
  c.updateHosts([{ priority: 0, endpoints: [ep(1003)] }, { priority: 1, endpoints: [ep(1001), ep(1002)] }]);
  assert(c.hosts[0] === h3 && c.hosts[1] === h1 && c.hosts[2] === h2);
  assertEquals([h3!.priority, h1!.priority, h2!.priority], [0, 1, 1]);
  assertEquals(c.overprovisioningFactor, 140, "a push without policy is Envoy's default");
  assertEquals([...count().keys()], [1003]);
  assertEquals(c.describe().hosts.map((h) => h.priority), [0, 1, 1]);
  // The empty start, the first push, and the priority moves (a removal and an addition to Envoy).
  assertEquals(stats.get("cluster.svc.membership_change"), 3);
});

Deno.test("ClusterImpl combines EDS health with active health checks and outlier detection as Envoy", () => {
  const stats = new TestStats();
  const c = new ClusterImpl(parseCluster(raw("svc", [1001, 1002]), "c"), { stats, random: () => 0 });
  const [a, b] = c.hosts;
  // DEGRADED: usable only for what the healthy hosts cannot take; /degraded_eds_health.
  c.updateHosts(eps(ep(1001), ep(1002, { healthStatus: "DEGRADED" })));
  assertEquals([b!.healthy, b!.degraded, b!.healthFlagsText], [false, true, "/degraded_eds_health"]);
  assertEquals(stats.get("cluster.svc.membership_degraded"), 1);
  for (let i = 0; i < 20; i++) assert(c.chooseHost() === a, "1 of 2 healthy is 70 %: the degraded host waits");
  // A failed active health check makes the degraded host unhealthy; the EDS status stays degraded underneath.
  b!.healthy = false;
  assertEquals([b!.coarseHealth, b!.healthFlagsText], ["unhealthy", "/failed_active_hc/degraded_eds_health"]);
  assertEquals(stats.get("cluster.svc.membership_degraded"), 0);
  b!.healthy = true;
  // An outlier ejection of the healthy host: the degraded one takes what it can (health 0, degraded 70 → all).
  a!.setFlag(HealthFlag.FAILED_OUTLIER_CHECK, true);
  for (let i = 0; i < 20; i++) assert(c.chooseHost() === b);
  a!.setFlag(HealthFlag.FAILED_OUTLIER_CHECK, false);
  // EDS HEALTHY does not clear a failed health check; TIMEOUT fails like UNHEALTHY.
  a!.healthy = false;
  c.updateHosts(eps(ep(1001, { healthStatus: "HEALTHY" }), ep(1002, { healthStatus: "TIMEOUT" })));
  assertEquals([a!.healthFlagsText, b!.healthFlagsText], ["/failed_active_hc", "/failed_eds_health"]);
  assertEquals(stats.get("cluster.svc.membership_healthy"), 0);
  c.shutdown();
});

Deno.test("ClusterManagerImpl keeps an EDS cluster's pushed hosts across CDS and carries them into a rebuild", async () => {
  const a = new TestUpstream();
  const stats = new TestStats();
  const cm = new ClusterManagerImpl([parseCluster(edsRaw("svc"), "static_resources.clusters[0]")], {
    stats,
    httpCodec: http1CodecFactory,
  });
  try {
    await cm.initialize({ timeoutMs: 1000 });
    const c = cm.get("svc")!;
    assertEquals(c.takesEndpointUpdates, true);
    assertEquals(cm.clustersForService("svc-eds"), [c]);
    assertEquals(c.pushedAssignment, undefined);
    cm.updateHosts("svc", [{ priority: 1, endpoints: [ep(a.port)] }], { overprovisioningFactor: 120 });
    const host = c.hosts[0]!;
    const pool = c.httpPool(host);
    assertEquals((await send(c, "/1")).status, 200);
    // CDS re-sends the cluster (even with another inline load_assignment): kept, hosts and pool untouched.
    assert(cm.addOrUpdate(parseCluster(edsRaw("svc"), "cds[0]")) === c);
    assert(cm.addOrUpdate(parseCluster({ ...edsRaw("svc"), load_assignment: { endpoints: [] } }, "cds[0]")) === c);
    assert(c.hosts[0] === host && c.httpPool(host) === pool);
    // A real change rebuilds: the new cluster starts with the last pushed endpoints and policy.
    const c2 = cm.addOrUpdate(parseCluster(edsRaw("svc", { connect_timeout: "2s" }), "cds[0]"));
    assert(c2 !== c);
    assertEquals(c2.hosts.map((h) => [h.port, h.priority]), [[a.port, 1]]);
    assertEquals(c2.overprovisioningFactor, 120);
    assertEquals((await send(c2, "/2")).status, 200);
    assertEquals(cm.clustersForService("svc-eds"), [c2]);
    // Another service name: a new subscription, no carried hosts.
    const c3 = cm.addOrUpdate(
      parseCluster(
        edsRaw("svc", { eds_cluster_config: { service_name: "other", eds_config: { ads: {} } } }),
        "cds[0]",
      ),
    );
    assertEquals(c3.hosts.length, 0);
    assertEquals([cm.clustersForService("svc-eds"), cm.clustersForService("other")], [[], [c3]]);
    cm.remove("svc");
    assertEquals(cm.clustersForService("other"), []);
  } finally {
    cm.shutdown();
    await a.close();
  }
});

Deno.test("ClusterImpl STRICT_DNS keeps each endpoint's priority and locality weight on its resolved hosts", async () => {
  const resolver: DnsResolver = (name) =>
    Promise.resolve({ addresses: name === "primary.local" ? ["10.0.0.1", "10.0.0.2"] : ["10.0.1.1"] });
  const endpoint = (address: string) => ({
    endpoint: { address: { socket_address: { address, port_value: 80 } } },
  });
  const c = new ClusterImpl(
    parseCluster({
      name: "dns",
      type: "STRICT_DNS",
      load_assignment: {
        endpoints: [
          { priority: 0, load_balancing_weight: 5, lb_endpoints: [endpoint("primary.local")] },
          { priority: 1, lb_endpoints: [endpoint("backup.local")] },
        ],
      },
    }, "c"),
    { stats: new TestStats(), resolver, log: () => {} },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts.map((h) => [h.address, h.priority, h.localityWeight]), [
      ["10.0.0.1", 0, 5],
      ["10.0.0.2", 0, 5],
      ["10.0.1.1", 1, undefined],
    ]);
    for (let i = 0; i < 20; i++) assertEquals((c.chooseHost() as HostImpl).priority, 0);
    c.hosts[0]!.healthy = false;
    c.hosts[1]!.healthy = false;
    for (let i = 0; i < 20; i++) assertEquals(c.chooseHost()!.address, "10.0.1.1");
  } finally {
    c.shutdown();
  }
});
