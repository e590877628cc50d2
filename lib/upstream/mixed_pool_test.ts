/**
 * {@link MixedConnPool} over plain TCP peers, with the ALPN result faked on each connection (the TLS path is
 * `tests/integration/upstream_alpn_test.ts`): an h2c `node:http2` server stands for a host that picks `h2`, a
 * `node:http` server for one that picks `http/1.1`.
 *
 * @module
 */
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { CodecFactory } from "../api/codec.ts";
import type { ConnectionHandler, NetConnection } from "../api/network.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { http2CodecFactory } from "../../codecs/http2/mod.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";
import { connectHost, type Connector } from "./connect.ts";
import { Http1ConnPool } from "./http1_pool.ts";
import { MixedConnPool, negotiatedProtocol } from "./mixed_pool.ts";

/** A connection whose TLS facts say ALPN chose `alpn`. */
class AlpnView implements NetConnection {
  readonly #c: NetConnection;
  readonly tls: { alpn?: string };
  readonly secure = true;
  constructor(c: NetConnection, alpn: string | undefined) {
    this.#c = c;
    this.tls = alpn === undefined ? {} : { alpn };
  }
  get id() {
    return this.#c.id;
  }
  get remoteAddress() {
    return this.#c.remoteAddress;
  }
  get remotePort() {
    return this.#c.remotePort;
  }
  get localAddress() {
    return this.#c.localAddress;
  }
  get localPort() {
    return this.#c.localPort;
  }
  get bufferedAmount() {
    return this.#c.bufferedAmount;
  }
  get closed() {
    return this.#c.closed;
  }
  get bytesRead() {
    return this.#c.bytesRead;
  }
  get bytesWritten() {
    return this.#c.bytesWritten;
  }
  get done() {
    return this.#c.done;
  }
  setHandler(h: ConnectionHandler): void {
    this.#c.setHandler(h);
  }
  start(): void {
    this.#c.start();
  }
  write(d: Uint8Array): void {
    this.#c.write(d);
  }
  closeWrite(): void {
    this.#c.closeWrite();
  }
  close(o?: { flush?: boolean; reason?: string }): void {
    this.#c.close(o);
  }
  readDisable(d: boolean): void {
    this.#c.readDisable(d);
  }
}

/** Two peers on one host: which answers the next connection is up to `peer.alpn`. */
class Peers {
  alpn: string | undefined = "h2";
  connects = 0;
  fail: Error | undefined;
  readonly versions: string[] = [];
  readonly h2Sessions = new Set<unknown>();
  h1Sockets = 0;
  #holds: (() => void)[] = [];
  hold = false;
  #h2 = http2.createServer((req, res) => this.#answer(req.httpVersion, res));
  #h1 = http.createServer((req, res) => this.#answer(req.httpVersion, res));
  h2Port = 0;
  h1Port = 0;

  #answer(version: string, res: { end(body: string): void }): void {
    this.versions.push(version);
    const go = () => res.end(`v${version}`);
    if (this.hold) this.#holds.push(go);
    else go();
  }

  async listen(): Promise<void> {
    this.#h2.on("session", (s) => this.h2Sessions.add(s));
    this.#h1.on("connection", () => this.h1Sockets++);
    await new Promise<void>((r) => this.#h2.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => this.#h1.listen(0, "127.0.0.1", r));
    this.h2Port = (this.#h2.address() as AddressInfo).port;
    this.h1Port = (this.#h1.address() as AddressInfo).port;
  }

  get held(): number {
    return this.#holds.length;
  }

  release(): void {
    this.hold = false;
    for (const f of this.#holds.splice(0)) f();
  }

  readonly connect: Connector = async (host, options) => {
    this.connects++;
    if (this.fail) throw this.fail;
    const alpn = this.alpn;
    const port = alpn === "h2" ? this.h2Port : this.h1Port;
    const conn = await connectHost({ ...host, address: "127.0.0.1", port, key: host.key }, options);
    return new AlpnView(conn, alpn);
  };

  async close(): Promise<void> {
    for (const s of this.h2Sessions) (s as { destroy(): void }).destroy();
    this.#h1.closeAllConnections();
    await new Promise<void>((r) => this.#h2.close(() => r()));
    await new Promise<void>((r) => this.#h1.close(() => r()));
  }
}

function setup(peers: Peers, extra: Record<string, unknown> = {}) {
  const stats = new TestStats();
  const config = parseCluster({
    name: "web",
    connect_timeout: "1s",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }],
      }],
    },
    ...extra,
  }, "c");
  const cluster = new ClusterImpl(config, { stats, httpCodec: http1CodecFactory, log: () => {} });
  const host = cluster.chooseHost()!;
  const pool = new MixedConnPool(host, {
    http1Codec: http1CodecFactory,
    http2Codec: http2CodecFactory,
    codecOptions: cluster.info.codecOptions,
    resources: cluster.info.resources,
    connect: peers.connect,
  });
  const stat = (n: string) => stats.get(`cluster.web.${n}`);
  return { cluster, host, pool, stat };
}

function start(pool: MixedConnPool, path = "/"): Exchange {
  const e = new Exchange(path);
  pool.newStream(e, e);
  return e;
}

async function withPeers(fn: (p: Peers) => Promise<void>): Promise<void> {
  const p = new Peers();
  await p.listen();
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

Deno.test("negotiatedProtocol is HTTP/2 for h2 only", () => {
  const conn = (tls: { alpn?: string } | undefined) => ({ tls }) as unknown as NetConnection;
  assertEquals(negotiatedProtocol(conn({ alpn: "h2" })), "http2");
  assertEquals(negotiatedProtocol(conn({ alpn: "http/1.1" })), "http1");
  assertEquals(negotiatedProtocol(conn({})), "http1");
  assertEquals(negotiatedProtocol(conn(undefined)), "http1");
});

Deno.test("MixedConnPool on h2: waiting streams share the probe, later ones are placed at once", () =>
  withPeers(async (peers) => {
    const { pool, cluster, stat, host } = setup(peers);
    try {
      peers.hold = true;
      const ex = Array.from({ length: 50 }, (_, i) => start(pool, `/${i}`));
      assertEquals(pool.protocol, undefined);
      assertEquals(pool.pendingStreams, 50);
      assertEquals(pool.activeConnections, 1);
      assertEquals(stat("upstream_rq_pending_active"), 50);
      await waitFor(() => peers.held === 50, 3000, "50 requests at the server");
      assertEquals(pool.protocol, "http2");
      assertEquals(peers.connects, 1);
      assertEquals(host.activeRequests, 50);
      // Known to be HTTP/2: a new stream goes on the open connection without waiting.
      const late = new Exchange("/late");
      assertEquals(pool.newStream(late, late), undefined);
      peers.release();
      const rs = await Promise.all([...ex, late].map((e) => e.done));
      assert(rs.every((r) => r.status === 200 && r.body === "v2.0"), JSON.stringify(rs.find((r) => r.status !== 200)));
      assertEquals(peers.connects, 1);
      assertEquals(peers.h2Sessions.size, 1);
      assertEquals(stat("upstream_cx_total"), 1);
      assertEquals(stat("upstream_cx_http2_total"), 1);
      assertEquals(stat("upstream_cx_http1_total"), 0);
      assertEquals(stat("upstream_rq_total"), 51);
      assertEquals(stat("upstream_rq_completed"), 51);
      assertEquals(stat("upstream_rq_pending_total"), 50);
      assertEquals(stat("upstream_rq_pending_active"), 0);
      assertEquals(host.activeRequests, 0);
      assertEquals(pool.idleConnections, 1);
    } finally {
      cluster.shutdown();
      pool.close();
    }
  }));

Deno.test("MixedConnPool on http/1.1 or no ALPN: one stream per connection, the probe carries the first", () =>
  withPeers(async (peers) => {
    for (const alpn of ["http/1.1", undefined]) {
      peers.alpn = alpn;
      peers.connects = 0;
      peers.h1Sockets = 0;
      const { pool, cluster, stat } = setup(peers);
      try {
        peers.hold = true;
        const ex = [1, 2, 3].map((i) => start(pool, `/${i}`));
        await waitFor(() => peers.held === 3, 3000, "3 requests at the server");
        assertEquals(pool.protocol, "http1");
        assertEquals(peers.connects, 3);
        peers.release();
        const rs = await Promise.all(ex.map((e) => e.done));
        assertEquals(rs.map((r) => r.body), ["v1.1", "v1.1", "v1.1"]);
        assertEquals(peers.h1Sockets, 3);
        assertEquals(stat("upstream_cx_total"), 3);
        assertEquals(stat("upstream_cx_http1_total"), 3);
        assertEquals(pool.idleConnections, 3);
        // Reused, no new connection.
        assertEquals((await start(pool, "/again").done).body, "v1.1");
        assertEquals(peers.connects, 3);
      } finally {
        pool.close();
        cluster.shutdown();
      }
    }
  }));

Deno.test("MixedConnPool fails waiting streams when the probe fails, and probes again for the next", () =>
  withPeers(async (peers) => {
    const { pool, cluster, stat, host } = setup(peers);
    try {
      peers.fail = new Error("connection refused");
      const ex = [start(pool), start(pool)];
      const rs = await Promise.all(ex.map((e) => e.done));
      assertEquals(rs.map((r) => r.failure), ["connect-failure", "connect-failure"]);
      assert(rs[0]!.failureDetail!.includes("connection refused"), rs[0]!.failureDetail);
      assertEquals(stat("upstream_cx_connect_fail"), 1);
      assertEquals(stat("upstream_cx_total"), 1);
      assertEquals(stat("upstream_cx_active"), 0);
      assertEquals(stat("upstream_rq_pending_total"), 2);
      assertEquals(stat("upstream_rq_pending_failure_eject"), 2);
      assertEquals(stat("upstream_rq_pending_active"), 0);
      assertEquals(cluster.describe().hosts[0]!.cxConnectFail, 1);
      assertEquals(pool.protocol, undefined);
      assertEquals(pool.activeConnections, 0);
      peers.fail = undefined;
      assertEquals((await start(pool).done).body, "v2.0");
      assertEquals(pool.protocol, "http2");
      assertEquals(host.activeRequests, 0);
    } finally {
      pool.close();
      cluster.shutdown();
    }
  }));

Deno.test("MixedConnPool honours max_pending_requests while probing and lets a waiting stream cancel", () =>
  withPeers(async (peers) => {
    const { pool, cluster, stat } = setup(peers, {
      circuit_breakers: { thresholds: [{ max_pending_requests: 2 }] },
    });
    try {
      const a = new Exchange("/a");
      const ha = pool.newStream(a, a);
      const b = start(pool, "/b");
      const c = start(pool, "/c");
      assertEquals((await c.done).failure, "overflow");
      assertEquals(stat("upstream_rq_pending_overflow"), 1);
      ha!.cancel();
      assertEquals(pool.pendingStreams, 1);
      assertEquals((await b.done).body, "v2.0");
      assertEquals(a.outcome.status, undefined);
      assertEquals(stat("upstream_rq_total"), 1);
    } finally {
      pool.close();
      cluster.shutdown();
    }
  }));

Deno.test("MixedConnPool switches protocol when a later connection negotiates another one", () =>
  withPeers(async (peers) => {
    peers.alpn = "http/1.1";
    const { pool, cluster } = setup(peers);
    try {
      assertEquals((await start(pool).done).body, "v1.1");
      assertEquals(pool.protocol, "http1");
      peers.hold = true;
      const busy = start(pool, "/busy");
      await waitFor(() => peers.held === 1);
      // The host now picks h2: the HTTP/1.1 pool's next connection is refused, the pool turns to HTTP/2.
      peers.alpn = "h2";
      const odd = await start(pool, "/odd").done;
      assertEquals(odd.failure, "connect-failure");
      assert(odd.failureDetail!.includes('negotiated "h2"'), odd.failureDetail);
      assertEquals(pool.protocol, "http2");
      peers.release();
      assertEquals((await busy.done).body, "v1.1");
      assertEquals((await start(pool, "/next").done).body, "v2.0");
    } finally {
      pool.close();
      cluster.shutdown();
    }
  }));

Deno.test("MixedConnPool drains after serving streams that waited for the probe; close fails them", () =>
  withPeers(async (peers) => {
    const { pool, cluster } = setup(peers);
    try {
      const a = start(pool, "/a");
      let drained = false;
      pool.drain(() => drained = true);
      assert(pool.draining);
      assertEquals((await start(pool, "/late").done).failure, "closed");
      assertEquals((await a.done).body, "v2.0");
      await waitFor(() => drained, 3000, "drained");
      assertEquals(pool.activeConnections, 0);

      const other = setup(peers);
      const b = start(other.pool, "/b");
      other.pool.close();
      assertEquals((await b.done).failure, "closed");
      await waitFor(() => other.pool.activeConnections === 0, 3000, "probe closed");
      other.cluster.shutdown();
    } finally {
      pool.close();
      cluster.shutdown();
    }
  }));

Deno.test("ClusterImpl builds MixedConnPools for auto_config when it has the HTTP/2 codec", () => {
  const raw = {
    name: "web",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }],
      }],
    },
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" },
    },
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        auto_config: {},
      },
    },
  };
  const byName = new Map<string, CodecFactory>([["http1", http1CodecFactory], ["http2", http2CodecFactory]]);
  const codecs = { byName: (n: string) => byName.get(n) };
  const c = new ClusterImpl(parseCluster(raw, "c"), { stats: new TestStats(), codecs, log: () => {} });
  const host = c.chooseHost()!;
  const pool = c.httpPool(host, "HTTP/2");
  assert(pool instanceof MixedConnPool);
  assert(c.httpPool(host, "HTTP/1.1") === pool);
  assert(c.pools.get(host) === pool);
  c.shutdown();
  // Without an HTTP/2 codec to switch to, hosts get HTTP/1.1 pools.
  const h1 = new ClusterImpl(parseCluster(raw, "c"), { stats: new TestStats(), httpCodec: http1CodecFactory });
  assert(h1.httpPool(h1.chooseHost()!) instanceof Http1ConnPool);
  h1.shutdown();
});
