import type { NetworkFilter } from "../../lib/api/network.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { DenoConnection } from "../../lib/network/connection.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { freePort } from "../../tests/fakes/ports.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { sleep, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterManagerImpl } from "../../lib/upstream/cluster_manager.ts";
import { parseCluster } from "../../lib/upstream/config.ts";
import { connectHost, type Connector } from "../../lib/upstream/connect.ts";
import { parseTcpProxyConfig, type TcpProxyConfig, type TcpProxyFilter, tcpProxyFilterFactory } from "./tcp_proxy.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** An echo server: writes back what it reads; on EOF, half-closes back. */
class Echo {
  readonly listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly conns = new Set<Deno.Conn>();
  #tasks: Promise<void>[] = [];
  #loop: Promise<void>;
  constructor() {
    this.#loop = (async () => {
      try {
        for await (const c of this.listener) {
          this.conns.add(c);
          this.#tasks.push(this.#serve(c));
        }
      } catch { /* closed */ }
    })();
  }
  get port(): number {
    return this.listener.addr.port;
  }
  async #serve(c: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        let off = 0;
        while (off < n) off += await c.write(buf.subarray(off, n));
      }
      await c.closeWrite();
      // Wait for the peer to close.
      while (await c.read(buf) !== null) { /* drain */ }
    } catch {
      /* reset */
    } finally {
      this.conns.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
  async close(): Promise<void> {
    this.listener.close();
    for (const c of this.conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}

/** A proxy front end like lib/server's listener: one tcp_proxy filter per accepted connection. */
class Front {
  readonly listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly filters: TcpProxyFilter[] = [];
  readonly conns = new Set<DenoConnection>();
  #loop: Promise<void>;
  constructor(config: TcpProxyConfig, cm: ClusterManagerImpl, stats: TestStats, highWatermark?: number) {
    this.#loop = (async () => {
      try {
        for await (const raw of this.listener) {
          const conn = new DenoConnection(raw, highWatermark ? { highWatermark } : {});
          this.conns.add(conn);
          const f: NetworkFilter = tcpProxyFilterFactory.create(config, {
            connection: conn,
            continueReading: () => {},
          }, { clusterManager: cm, stats, listenerName: "l", draining: () => false, bufferLimit: 1 << 20 });
          this.filters.push(f as TcpProxyFilter);
          conn.setHandler({
            onData: (d) => f.onData(d, false),
            onEof: () => f.onData(EMPTY, true),
            onClose: (r) => {
              this.conns.delete(conn);
              f.onClose?.(r);
            },
            onWriteBlocked: () => f.onWriteBlocked?.(),
            onWriteDrained: () => f.onWriteDrained?.(),
          });
          f.onNewConnection?.();
          conn.start();
        }
      } catch { /* closed */ }
    })();
  }
  get port(): number {
    return this.listener.addr.port;
  }
  async close(): Promise<void> {
    this.listener.close();
    await this.#loop;
    for (const c of this.conns) c.close();
    await Promise.all([...this.conns].map((c) => c.done));
  }
}

function proxyConfig(extra: Record<string, unknown> = {}): TcpProxyConfig {
  return parseTcpProxyConfig({ stat_prefix: "echo", cluster: "echo", ...extra }, "f");
}

function manager(stats: TestStats, ports: number[], extra: Record<string, unknown> = {}, connect?: Connector) {
  return new ClusterManagerImpl([parseCluster({
    name: "echo",
    connect_timeout: "1s",
    load_assignment: {
      endpoints: [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    ...extra,
  }, "c")], { stats, log: () => {}, connect });
}

async function readAll(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let s = "";
  for (;;) {
    const n = await c.read(buf);
    if (n === null) return s;
    s += dec.decode(buf.subarray(0, n));
  }
}

Deno.test("parseTcpProxyConfig reads Envoy's TcpProxy", () => {
  const c = parseTcpProxyConfig({
    stat_prefix: "p",
    weighted_clusters: { clusters: [{ name: "a", weight: 1 }, { name: "b", weight: 3 }] },
    idle_timeout: "0s",
    max_connect_attempts: 3,
  }, "f");
  assertEquals(c.weightedClusters, [{ name: "a", weight: 1 }, { name: "b", weight: 3 }]);
  assertEquals(c.idleTimeoutMs, 0);
  assertEquals(c.maxConnectAttempts, 3);
  assertEquals(c.accessLogs, []);
  const d = parseTcpProxyConfig({ stat_prefix: "p", cluster: "x" }, "f");
  assertEquals([d.cluster, d.idleTimeoutMs, d.maxConnectAttempts], ["x", 3600_000, 1]);
  const err = (raw: Record<string, unknown>) =>
    assertThrows(() => parseTcpProxyConfig(raw, "l.f"), ConfigError).message;
  assertEquals(err({ cluster: "x" }), "config: l.f.stat_prefix: is required");
  assertEquals(err({ stat_prefix: "p" }), "config: l.f: one of cluster, weighted_clusters is required");
  assertEquals(
    err({ stat_prefix: "p", cluster: "x", weighted_clusters: { clusters: [] } }),
    "config: l.f: only one of cluster, weighted_clusters may be set",
  );
  assertEquals(err({ stat_prefix: "p", cluster: "x", hash_policy: [{}] }), "config: l.f.hash_policy: is not supported");
  assertEquals(
    err({ stat_prefix: "p", cluster: "x", tunneling_config: { hostname: "h" } }),
    "config: l.f.tunneling_config: is not supported",
  );
  assertEquals(err({ stat_prefix: "p", cluster: "x", bogus: 1 }), "config: l.f.bogus: unknown field");
  assertEquals(
    err({ stat_prefix: "p", weighted_clusters: { clusters: [{ name: "a", weight: 0 }] } }),
    "config: l.f.weighted_clusters.clusters[0].weight: 0 is below the minimum 1",
  );
  assertEquals(
    err({ stat_prefix: "p", cluster: "x", max_connect_attempts: 0 }),
    "config: l.f.max_connect_attempts: 0 is below the minimum 1",
  );
});

Deno.test("tcp_proxy pipes bytes both ways and passes half-close on", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  const cm = manager(stats, [echo.port]);
  const front = new Front(proxyConfig(), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    await c.write(enc.encode("hello "));
    await c.write(enc.encode("world"));
    await c.closeWrite();
    // The echo answers, then half-closes back when it sees our FIN: we read everything, then EOF.
    assertEquals(await readAll(c), "hello world");
    c.close();
    await waitFor(() => front.conns.size === 0 && stats.get("cluster.echo.upstream_cx_active") === 0);
    assertEquals(stats.get("tcp.echo.downstream_cx_total"), 1);
    assertEquals(stats.get("tcp.echo.downstream_cx_rx_bytes_total"), 11);
    assertEquals(stats.get("tcp.echo.downstream_cx_tx_bytes_total"), 11);
    assertEquals(stats.get("cluster.echo.upstream_cx_total"), 1);
    const info = front.filters[0]!.info;
    assertEquals(info.upstreamHost, `127.0.0.1:${echo.port}`);
    assertEquals(info.upstreamCluster, "echo");
    assertEquals([info.bytesReceived, info.bytesSent], [11, 11]);
    assertEquals(info.responseFlags, []);
    assert(info.durationMs !== undefined);
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy carries a large transfer with backpressure", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  const cm = manager(stats, [echo.port], { per_connection_buffer_limit_bytes: 16384 });
  const front = new Front(proxyConfig(), cm, stats, 16384);
  try {
    const size = 8 * 1024 * 1024;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    const reader = (async () => {
      const got = new Uint8Array(size);
      let off = 0;
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        got.set(buf.subarray(0, n), off);
        off += n;
      }
      return got.subarray(0, off);
    })();
    let off = 0;
    while (off < size) off += await c.write(data.subarray(off, Math.min(size, off + 262144)));
    await c.closeWrite();
    const got = await reader;
    c.close();
    assertEquals(got.length, size);
    let same = true;
    for (let i = 0; i < size; i++) {
      if (got[i] !== data[i]) {
        same = false;
        break;
      }
    }
    assert(same, "bytes arrive intact");
    assertEquals(stats.get("tcp.echo.downstream_cx_rx_bytes_total"), size);
    // The small upstream watermark paused downstream reading, and every pause was resumed.
    const paused = stats.get("tcp.echo.downstream_flow_control_paused_reading_total");
    assert(paused > 0);
    assertEquals(stats.get("tcp.echo.downstream_flow_control_resumed_reading_total"), paused);
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy forwards bytes that arrive before the upstream connects", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  const slow: Connector = async (host, o) => {
    await sleep(50);
    return await connectHost(host, o);
  };
  const cm = manager(stats, [echo.port], {}, slow);
  const front = new Front(proxyConfig(), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    await c.write(enc.encode("early"));
    await c.closeWrite();
    assertEquals(await readAll(c), "early");
    c.close();
    await waitFor(() => front.conns.size === 0);
    assertEquals(stats.get("tcp.echo.downstream_cx_rx_bytes_buffered"), 0);
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy closes both sides after the idle timeout", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  const cm = manager(stats, [echo.port]);
  const front = new Front(proxyConfig({ idle_timeout: "0.08s" }), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    // Activity keeps it open past one timeout.
    for (let i = 0; i < 3; i++) {
      await sleep(40);
      await c.write(enc.encode("x"));
      const buf = new Uint8Array(8);
      assertEquals(await c.read(buf), 1);
    }
    assertEquals(stats.get("tcp.echo.idle_timeout"), 0);
    const t0 = performance.now();
    assertEquals(await readAll(c), "");
    assert(performance.now() - t0 >= 60);
    c.close();
    assertEquals(stats.get("tcp.echo.idle_timeout"), 1);
    await waitFor(() => stats.get("cluster.echo.upstream_cx_active") === 0);
    assertEquals(front.filters[0]!.info.connectionTerminationDetails, "idle_timeout");
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy closes the downstream when the upstream connect fails", async () => {
  const stats = new TestStats();
  const port = freePort();
  const cm = manager(stats, [port]);
  const front = new Front(proxyConfig(), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    await c.write(enc.encode("lost"));
    assertEquals(await readAll(c), "");
    c.close();
    await waitFor(() => front.conns.size === 0);
    assertEquals(stats.get("cluster.echo.upstream_cx_connect_fail"), 1);
    const info = front.filters[0]!.info;
    assertEquals(info.responseFlags, ["UF"]);
    assert(info.connectionTerminationDetails!.startsWith(`cluster "echo": connect to 127.0.0.1:${port} failed`));
  } finally {
    await front.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy retries another host up to max_connect_attempts", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  // Whatever the balancer picks first, the retry avoids the failed host and reaches the live one.
  const cm = manager(stats, [freePort(), echo.port]);
  const front = new Front(proxyConfig({ max_connect_attempts: 2 }), cm, stats);
  try {
    for (let i = 0; i < 4; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
      await c.write(enc.encode("hi"));
      await c.closeWrite();
      assertEquals(await readAll(c), "hi");
      c.close();
    }
    await waitFor(() => front.conns.size === 0);
    const fails = stats.get("cluster.echo.upstream_cx_connect_fail");
    assert(fails >= 1 && fails <= 4, `${fails} connect failures`);
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy without a cluster or host closes and flags the connection", async () => {
  const stats = new TestStats();
  const cm = manager(stats, []);
  const front = new Front(proxyConfig({ cluster: "missing" }), cm, stats);
  const front2 = new Front(proxyConfig(), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    assertEquals(await readAll(c), "");
    c.close();
    const c2 = await Deno.connect({ hostname: "127.0.0.1", port: front2.port });
    assertEquals(await readAll(c2), "");
    c2.close();
    await waitFor(() => front.conns.size === 0 && front2.conns.size === 0);
    assertEquals(stats.get("tcp.echo.downstream_cx_no_route"), 1);
    assertEquals(front.filters[0]!.info.responseFlags, ["NC"]);
    assertEquals(front2.filters[0]!.info.responseFlags, ["UH"]);
    assertEquals(front2.filters[0]!.info.connectionTerminationDetails, 'cluster "echo": no healthy upstream host');
    assertEquals(stats.get("cluster.echo.upstream_cx_none_healthy"), 1);
  } finally {
    await front.close();
    await front2.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy closes the downstream after the upstream closes", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = new TestStats();
  const cm = manager(stats, [l.addr.port]);
  const front = new Front(proxyConfig(), cm, stats);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    const s = await l.accept();
    await s.write(enc.encode("bye"));
    s.close();
    assertEquals(await readAll(c), "bye");
    c.close();
    await waitFor(() => front.conns.size === 0);
  } finally {
    l.close();
    await front.close();
    cm.shutdown();
  }
});

Deno.test("tcp_proxy splits connections over weighted clusters", async () => {
  const echo = new Echo();
  const stats = new TestStats();
  const mk = (name: string) =>
    parseCluster({
      name,
      load_assignment: {
        endpoints: [{
          lb_endpoints: [{
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: echo.port } } },
          }],
        }],
      },
    }, "c");
  const cm = new ClusterManagerImpl([mk("a"), mk("b")], { stats, log: () => {} });
  const cfg = parseTcpProxyConfig({
    stat_prefix: "w",
    weighted_clusters: { clusters: [{ name: "a", weight: 1 }, { name: "b", weight: 3 }] },
  }, "f");
  const front = new Front(cfg, cm, stats);
  try {
    for (let i = 0; i < 40; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
      await c.closeWrite();
      await readAll(c);
      c.close();
    }
    await waitFor(() => front.conns.size === 0);
    const a = stats.get("cluster.a.upstream_cx_total");
    const b = stats.get("cluster.b.upstream_cx_total");
    assertEquals(a + b, 40);
    assert(b > a, `b (${b}) should get about three times a (${a})`);
  } finally {
    await front.close();
    await echo.close();
    cm.shutdown();
  }
});
