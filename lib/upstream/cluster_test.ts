import { ProxyError } from "../api/errors.ts";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { epollAvailable } from "../network/epoll.ts";
import { ClusterManagerImpl } from "./cluster_manager.ts";
import { parseCluster } from "./config.ts";
import type { DnsResolver } from "./dns.ts";
import { systemResolver } from "./dns.ts";
import type { HostImpl } from "./host.ts";

function ep(address: string, port: number, weight = 1) {
  return {
    endpoint: { address: { socket_address: { address, port_value: port } } },
    load_balancing_weight: weight,
  };
}

function cfg(name: string, extra: Record<string, unknown>, eps: unknown[]) {
  return parseCluster({ name, load_assignment: { endpoints: [{ lb_endpoints: eps }] }, ...extra }, "c");
}

/** A resolver whose answers the test sets. */
class FakeDns {
  answers = new Map<string, string[] | Error>();
  calls: string[] = [];
  resolver: DnsResolver = (name) => {
    this.calls.push(name);
    const a = this.answers.get(name);
    if (a === undefined) return Promise.reject(new Error(`no such name ${name}`));
    if (a instanceof Error) return Promise.reject(a);
    return Promise.resolve({ addresses: a });
  };
}

Deno.test("systemResolver resolves localhost through /etc/hosts", async () => {
  const r = await systemResolver("localhost", "V4_ONLY");
  assertEquals(r.addresses.includes("127.0.0.1"), true);
  assertEquals((await systemResolver("10.1.2.3", "AUTO")).addresses, ["10.1.2.3"]);
  await assertRejects(systemResolver("no-such-host.invalid", "AUTO"), Error);
});

Deno.test("ClusterImpl STRICT_DNS resolves localhost and serves requests", async () => {
  const up = new TestUpstream();
  const stats = new TestStats();
  const c = new ClusterImpl(
    cfg("local", { type: "STRICT_DNS", dns_lookup_family: "V4_ONLY" }, [ep("localhost", up.port)]),
    { stats, httpCodec: http1CodecFactory, log: () => {} },
  );
  try {
    assertEquals(c.hosts.length, 0);
    assertEquals(c.chooseHost(), undefined);
    await c.initialize();
    assertEquals(c.hosts.map((h) => h.key), [`127.0.0.1:${up.port}`]);
    assertEquals(c.hosts[0]!.hostname, "localhost");
    assertEquals(stats.get("cluster.local.membership_total"), 1);
    assertEquals(stats.get("cluster.local.membership_healthy"), 1);
    const h = c.chooseHost()!;
    const e = new Exchange();
    c.httpPool(h).newStream(e, e);
    assertEquals((await e.done).status, 200);
  } finally {
    c.shutdown();
    await up.close();
  }
});

Deno.test("ClusterImpl STRICT_DNS refreshes and keeps hosts whose address stays", async () => {
  const dns = new FakeDns();
  dns.answers.set("svc", ["10.0.0.1", "10.0.0.2"]);
  const stats = new TestStats();
  const c = new ClusterImpl(
    cfg("svc", { type: "STRICT_DNS", dns_refresh_rate: "0.02s" }, [ep("svc", 80, 3), ep("10.9.9.9", 81)]),
    { stats, resolver: dns.resolver, log: () => {}, httpCodec: http1CodecFactory },
  );
  try {
    // The IP literal is a host before any lookup.
    assertEquals(c.hosts.map((h) => h.key), ["10.9.9.9:81"]);
    await c.initialize();
    assertEquals(c.hosts.map((h) => `${h.key}/${h.weight}`), ["10.0.0.1:80/3", "10.0.0.2:80/3", "10.9.9.9:81/1"]);
    const first = c.hosts[1]!;
    const gone = c.hosts[0]!;
    c.httpPool(gone);
    assertEquals(c.pools.size, 1);
    dns.answers.set("svc", ["10.0.0.2", "10.0.0.3"]);
    await waitFor(() => c.hosts.some((h) => h.address === "10.0.0.3"), 2000, "refresh");
    assertEquals(c.hosts.map((h) => h.key), ["10.0.0.2:80", "10.0.0.3:80", "10.9.9.9:81"]);
    assert(c.hosts[0] === first, "the 10.0.0.2 host object is kept");
    assertEquals(c.pools.size, 0, "the removed host's pool drained away");
    assertEquals(stats.get("cluster.svc.membership_total"), 3);
    // A failed refresh keeps the last answer.
    dns.answers.set("svc", new Error("SERVFAIL"));
    const failures = stats.get("cluster.svc.update_failure");
    await waitFor(() => stats.get("cluster.svc.update_failure") > failures, 2000, "failure");
    assertEquals(c.hosts.length, 3);
    assert(dns.calls.every((n) => n === "svc"), "IP literals are never looked up");
  } finally {
    c.shutdown();
  }
});

Deno.test("ClusterImpl LOGICAL_DNS moves its one host to the first address", async () => {
  const dns = new FakeDns();
  dns.answers.set("svc", ["10.0.0.1", "10.0.0.2"]);
  const stats = new TestStats();
  const c = new ClusterImpl(
    cfg("svc", { type: "LOGICAL_DNS", dns_refresh_rate: "0.02s" }, [ep("svc", 80)]),
    { stats, resolver: dns.resolver, log: () => {} },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts.map((h) => h.key), ["10.0.0.1:80"]);
    const h = c.hosts[0]!;
    dns.answers.set("svc", ["10.0.0.5"]);
    await waitFor(() => h.address === "10.0.0.5", 2000, "refresh");
    assert(c.hosts[0] === h);
    assertEquals(c.hosts.length, 1);
  } finally {
    c.shutdown();
  }
});

Deno.test("ClusterImpl with a name that does not resolve has no hosts and logs", async () => {
  const logs: string[] = [];
  const dns = new FakeDns();
  const stats = new TestStats();
  const c = new ClusterImpl(
    cfg("svc", { type: "STRICT_DNS" }, [ep("nowhere", 80)]),
    { stats, resolver: dns.resolver, log: (m) => logs.push(m) },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts.length, 0);
    assertEquals(logs, ['cluster "svc": DNS resolution of "nowhere" failed: no such name nowhere']);
    assertEquals(stats.get("cluster.svc.update_failure"), 1);
  } finally {
    c.shutdown();
  }
});

Deno.test("ClusterImpl health changes reach the balancer and the gauges", () => {
  const stats = new TestStats();
  const c = new ClusterImpl(cfg("a", {}, [ep("10.0.0.1", 80), ep("10.0.0.2", 80)]), { stats, random: () => 0 });
  const [h1, h2] = c.hosts as HostImpl[];
  h1!.healthy = false;
  assertEquals(stats.get("cluster.a.membership_healthy"), 1);
  for (let i = 0; i < 4; i++) assert(c.chooseHost() === h2);
  assertEquals(c.describe().hosts[0]!.healthFlags, "/failed_active_hc");
});

Deno.test("ClusterImpl.connect opens TCP connections and counts failures", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = new TestStats();
  const c = new ClusterImpl(
    cfg("t", { circuit_breakers: { thresholds: [{ max_connections: 1 }] } }, [ep("127.0.0.1", l.addr.port)]),
    { stats },
  );
  const accepted = l.accept();
  const conn = await c.connect(c.hosts[0]!);
  const server = await accepted;
  assertEquals(stats.get("cluster.t.upstream_cx_total"), 1);
  assertEquals(stats.get("cluster.t.upstream_cx_active"), 1);
  const e = await assertRejects(c.connect(c.hosts[0]!), ProxyError);
  assertEquals(e.code, "Overflow");
  assertEquals(e.message, 'cluster "t": too many connections (max_connections 1)');
  assertEquals(stats.get("cluster.t.upstream_cx_overflow"), 1);
  conn.close();
  await conn.done;
  server.close();
  assertEquals(stats.get("cluster.t.upstream_cx_active"), 0);
  l.close();
  const e2 = await assertRejects(c.connect(c.hosts[0]!), ProxyError);
  assertEquals(e2.code, "ConnectRefused");
  assertEquals(e2.retryable, true);
  assertEquals(stats.get("cluster.t.upstream_cx_connect_fail"), 1);
  assertEquals(c.describe().hosts[0]!.cxConnectFail, 1);
});

Deno.test("ClusterManagerImpl builds, updates, removes and describes clusters", async () => {
  const up = new TestUpstream();
  const stats = new TestStats();
  const dns = new FakeDns();
  dns.answers.set("svc", ["10.0.0.7"]);
  const cm = new ClusterManagerImpl([
    cfg("a", {}, [ep("127.0.0.1", up.port)]),
    cfg("b", { type: "STRICT_DNS" }, [ep("svc", 80)]),
  ], { stats, httpCodec: http1CodecFactory, resolver: dns.resolver, log: () => {} });
  try {
    await cm.initialize({ timeoutMs: 1000 });
    assertEquals([...cm.clusters.keys()], ["a", "b"]);
    assertEquals(cm.get("b")!.hosts.map((h) => h.key), ["10.0.0.7:80"]);
    const a = cm.get("a")!;
    const e = new Exchange();
    a.httpPool(a.chooseHost()!).newStream(e, e);
    await e.done;
    // Same config: kept. Different config: replaced, the old one drains.
    assert(cm.addOrUpdate(cfg("a", {}, [ep("127.0.0.1", up.port)])) === a);
    const a2 = cm.addOrUpdate(cfg("a", { lb_policy: "RANDOM" }, [ep("127.0.0.1", up.port)]));
    assert(a2 !== a && cm.get("a") === a2);
    await waitFor(() => a.pools.size === 0 || [...a.pools.values()].every((p) => p.activeConnections === 0));
    const d = cm.describe();
    assertEquals(d.map((x) => [x.name, x.lbPolicy, x.addedViaApi]), [["a", "RANDOM", true], [
      "b",
      "ROUND_ROBIN",
      false,
    ]]);
    assertEquals(d[1]!.hosts.map((h) => [h.address, h.port, h.hostname, h.healthFlags]), [
      ["10.0.0.7", 80, "svc", "healthy"],
    ]);
    assertEquals(d[0]!.circuitBreakers.DEFAULT.maxConnections, 1024);
    assertEquals(cm.remove("b"), true);
    assertEquals(cm.remove("b"), false);
    assertEquals(cm.get("b"), undefined);
  } finally {
    cm.shutdown();
    await up.close();
  }
});

Deno.test("ClusterManagerImpl.initialize does not hang on slow DNS", async () => {
  const stats = new TestStats();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const slow: DnsResolver = async () => {
    await gate;
    return { addresses: ["10.0.0.1"] };
  };
  const cm = new ClusterManagerImpl([cfg("s", { type: "STRICT_DNS" }, [ep("slow", 80)])], {
    stats,
    resolver: slow,
    log: () => {},
  });
  const t0 = performance.now();
  await cm.initialize({ timeoutMs: 50 });
  assert(performance.now() - t0 < 1000);
  assertEquals(cm.get("s")!.hosts.length, 0);
  release();
  await cm.get("s")!.initialize();
  assertEquals(cm.get("s")!.hosts.length, 1);
  cm.shutdown();
});

Deno.test("ClusterImpl with respect_dns_ttl refreshes at the record TTL", async () => {
  const stats = new TestStats();
  let calls = 0;
  const resolver: DnsResolver = (_name, _family, options) => {
    calls++;
    assertEquals(options?.withTtl, true);
    return Promise.resolve({ addresses: ["10.0.0.1"], ttlMs: 20 });
  };
  const c = new ClusterImpl(
    cfg("ttl", { type: "STRICT_DNS", respect_dns_ttl: true, dns_refresh_rate: "60s" }, [ep("svc", 80)]),
    { stats, resolver, log: () => {} },
  );
  try {
    await c.initialize();
    await waitFor(() => calls >= 3, 1000, "TTL-driven refreshes");
  } finally {
    c.shutdown();
  }
});

Deno.test("ClusterImpl opens upstream connections on the downstream connection's event loop, in pools of their own", async () => {
  const up = new TestUpstream();
  const stats = new TestStats();
  const c = new ClusterImpl(cfg("io", {}, [ep("127.0.0.1", up.port)]), {
    stats,
    httpCodec: http1CodecFactory,
    log: () => {},
  });
  try {
    const h = c.chooseHost()!;
    const epollRuns = epollAvailable();
    // Streams of runtime downstreams (native TLS, Deno.Conn) get a pool of Deno.Conns; the others keep the epoll
    // engine's. Where it does not run, both are the runtime's and share one pool.
    const runtimePool = c.httpPool(h, "HTTP/1.1", "runtime");
    const epollPool = c.httpPool(h, "HTTP/1.1", "epoll");
    assert(c.httpPool(h, "HTTP/1.1") === epollPool, "no engine given: the epoll engine's pool");
    assertEquals(runtimePool === epollPool, !epollRuns);
    const viaRuntime = new Exchange();
    runtimePool.newStream(viaRuntime, viaRuntime);
    const viaEpoll = new Exchange();
    epollPool.newStream(viaEpoll, viaEpoll);
    const [r, e] = await Promise.all([viaRuntime.done, viaEpoll.done]);
    assertEquals([r.status, e.status], [200, 200]);
    assertEquals(r.info?.connection.ioEngine, "runtime");
    assertEquals(e.info?.connection.ioEngine, epollRuns ? "epoll" : "runtime");
    // tcp_proxy's raw connections too.
    const raw = await c.connect(h, "runtime");
    assertEquals(raw.ioEngine, "runtime");
    raw.close();
    const raw2 = await c.connect(h);
    assertEquals(raw2.ioEngine, epollRuns ? "epoll" : "runtime");
    raw2.close();
    // Both pools count in the cluster's stats and are drained when their host goes.
    await waitFor(() => stats.get("cluster.io.upstream_cx_active") === 2); // one per stream, whichever pool
    c.updateHosts([]);
    await waitFor(() => stats.get("cluster.io.upstream_cx_active") === 0);
  } finally {
    c.shutdown();
    await up.close();
  }
});
