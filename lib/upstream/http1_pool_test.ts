import { ConnectTimeoutError } from "../network/connection.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { freePort } from "../../tests/fakes/ports.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, sleep, TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";
import type { Connector } from "./connect.ts";
import type { Http1ConnPool } from "./http1_pool.ts";

function setup(port: number, extra: Record<string, unknown> = {}, connect?: Connector) {
  const stats = new TestStats();
  const config = parseCluster({
    name: "web",
    connect_timeout: "1s",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
    ...extra,
  }, "c");
  const cluster = new ClusterImpl(config, { stats, httpCodec: http1CodecFactory, log: () => {}, connect });
  const host = cluster.chooseHost()!;
  const pool = cluster.httpPool(host) as Http1ConnPool;
  const stat = (n: string) => stats.get(`cluster.web.${n}`);
  return { stats, cluster, host, pool, stat };
}

Deno.test("Http1ConnPool reuses a keep-alive connection", async () => {
  const up = new TestUpstream();
  const { pool, stat, host, cluster } = setup(up.port);
  try {
    const a = new Exchange("/a");
    assertEquals(pool.newStream(a, a) !== undefined, true); // queued while connecting
    const ra = await a.done;
    assertEquals(ra.status, 200);
    assertEquals(ra.body, "ok");
    assertEquals(ra.info!.reused, false);
    await waitFor(() => pool.idleConnections === 1);
    const b = new Exchange("/b", "hello");
    // Fast path: an idle connection → onPoolReady synchronously, no handle.
    assertEquals(pool.newStream(b, b), undefined);
    assert(b.outcome.info !== undefined);
    assertEquals(host.activeRequests, 1);
    const rb = await b.done;
    assertEquals(rb.info!.reused, true);
    assertEquals(rb.headers!.get("x-conn"), ra.headers!.get("x-conn"));
    assertEquals(up.requests[1]!.body, "hello");
    assertEquals(stat("upstream_cx_total"), 1);
    assertEquals(stat("upstream_cx_http1_total"), 1);
    assertEquals(stat("upstream_rq_total"), 2);
    assertEquals(stat("upstream_rq_pending_total"), 1);
    await waitFor(() => host.activeRequests === 0);
    assertEquals(stat("upstream_rq_active"), 0);
    assertEquals(stat("upstream_rq_pending_active"), 0);
    assert(stat("upstream_cx_tx_bytes_total") > 0);
    assert(stat("upstream_cx_rx_bytes_total") > 0);
    const d = cluster.describe().hosts[0]!;
    assertEquals([d.rqTotal, d.rqSuccess, d.cxTotal, d.cxActive], [2, 2, 1, 1]);
  } finally {
    cluster.shutdown();
    await up.close();
  }
  assertEquals(pool.activeConnections, 0);
});

Deno.test("Http1ConnPool reuses the most recently used idle connection first", async () => {
  const up = new TestUpstream();
  up.reply = (r) => ({ delayMs: r.path === "/slow" ? 60 : 0 });
  const { pool, cluster, stat } = setup(up.port);
  try {
    const fast = new Exchange("/fast");
    const slow = new Exchange("/slow");
    pool.newStream(slow, slow);
    pool.newStream(fast, fast);
    const [rs, rf] = await Promise.all([slow.done, fast.done]);
    assertEquals(stat("upstream_cx_total"), 2);
    await waitFor(() => pool.idleConnections === 2);
    // The slow one finished last, so it is reused first (LIFO).
    const n = new Exchange("/next");
    pool.newStream(n, n);
    const rn = await n.done;
    assertEquals(rn.headers!.get("x-conn"), rs.headers!.get("x-conn"));
    assert(rn.headers!.get("x-conn") !== rf.headers!.get("x-conn"));
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool closes a connection at max_requests_per_connection", async () => {
  const up = new TestUpstream();
  const { pool, cluster, stat } = setup(up.port, { max_requests_per_connection: 2 });
  try {
    const conns: string[] = [];
    for (let i = 0; i < 3; i++) {
      const e = new Exchange(`/${i}`);
      pool.newStream(e, e);
      conns.push((await e.done).headers!.get("x-conn")!);
      await sleep(1);
    }
    assertEquals(conns, ["1", "1", "2"]);
    assertEquals(stat("upstream_cx_max_requests"), 1);
    await waitFor(() => stat("upstream_cx_destroy_local") === 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool closes idle connections after the idle timeout", async () => {
  const up = new TestUpstream();
  const { pool, cluster, stat } = setup(up.port, { common_http_protocol_options: { idle_timeout: "0.05s" } });
  try {
    const e = new Exchange();
    pool.newStream(e, e);
    await e.done;
    await waitFor(() => pool.idleConnections === 1);
    // Keep it busy for a while: the timer re-arms rather than firing on a used connection.
    for (let i = 0; i < 3; i++) {
      await sleep(30);
      const x = new Exchange();
      pool.newStream(x, x);
      await x.done;
    }
    assertEquals(stat("upstream_cx_idle_timeout"), 0);
    assertEquals(stat("upstream_cx_total"), 1);
    await waitFor(() => stat("upstream_cx_idle_timeout") === 1, 1000, "idle timeout");
    assertEquals(pool.idleConnections, 0);
    assertEquals(pool.activeConnections, 0);
    assertEquals(stat("upstream_cx_active"), 0);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool drops an idle connection the upstream closed", async () => {
  const up = new TestUpstream();
  const { pool, cluster, stat } = setup(up.port);
  try {
    const e = new Exchange();
    pool.newStream(e, e);
    await e.done;
    await waitFor(() => pool.idleConnections === 1);
    up.closeConn(1);
    await waitFor(() => pool.idleConnections === 0, 2000, "idle connection removed");
    assertEquals(stat("upstream_cx_destroy_remote"), 1);
    assertEquals(stat("upstream_cx_active"), 0);
    const f = new Exchange();
    pool.newStream(f, f);
    assertEquals((await f.done).headers!.get("x-conn"), "2");
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool honours connection: close", async () => {
  const up = new TestUpstream();
  up.reply = () => ({ close: true });
  const { pool, cluster, stat } = setup(up.port);
  try {
    for (let i = 0; i < 2; i++) {
      const e = new Exchange();
      pool.newStream(e, e);
      assertEquals((await e.done).status, 200);
      await waitFor(() => pool.activeConnections === 0);
    }
    assertEquals(stat("upstream_cx_total"), 2);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool counts connection: close as upstream_cx_close_notify and finished responses as completed", async () => {
  const up = new TestUpstream();
  let n = 0;
  up.reply = () => ({ close: ++n === 2 });
  const { pool, cluster, stat } = setup(up.port);
  try {
    for (let i = 0; i < 3; i++) {
      const e = new Exchange();
      pool.newStream(e, e);
      assertEquals((await e.done).status, 200);
      await waitFor(() => pool.activeConnections <= 1);
    }
    assertEquals(stat("upstream_cx_close_notify"), 1);
    assertEquals(stat("upstream_rq_completed"), 3);
    assertEquals(stat("upstream_cx_total"), 2);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool resets a stream whose connection closes mid-response", async () => {
  const up = new TestUpstream();
  up.reply = () => ({ abort: true });
  const { pool, cluster, stat, host } = setup(up.port);
  try {
    const e = new Exchange();
    pool.newStream(e, e);
    const r = await e.done;
    assertEquals(r.reset, "connection-termination");
    await waitFor(() => pool.activeConnections === 0);
    assertEquals(stat("upstream_rq_rx_reset"), 1);
    assertEquals(stat("upstream_cx_destroy_with_active_rq"), 1);
    assertEquals(stat("upstream_cx_destroy_remote_with_active_rq"), 1);
    assertEquals(host.activeRequests, 0);
    assertEquals(cluster.describe().hosts[0]!.rqError, 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool enforces max_pending_requests and max_connections", async () => {
  const up = new TestUpstream();
  up.reply = () => ({ delayMs: 50 });
  const { pool, cluster, stat } = setup(up.port, {
    circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] },
  });
  try {
    const a = new Exchange("/a");
    const b = new Exchange("/b");
    const c = new Exchange("/c");
    pool.newStream(a, a);
    await waitFor(() => pool.busyConnections === 1);
    assert(pool.newStream(b, b) !== undefined); // waits: connections at the limit
    assertEquals(stat("upstream_cx_overflow"), 1);
    assertEquals(pool.newStream(c, c), undefined);
    assertEquals(c.outcome.failure, "overflow");
    assertEquals(stat("upstream_rq_pending_overflow"), 1);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assertEquals([ra.status, rb.status], [200, 200]);
    assertEquals(rb.headers!.get("x-conn"), "1");
    assertEquals(stat("upstream_cx_total"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool fails pending streams when the connect fails", async () => {
  const port = freePort();
  const { pool, cluster, stat, host } = setup(port);
  try {
    const a = new Exchange();
    const b = new Exchange();
    pool.newStream(a, a);
    pool.newStream(b, b);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assertEquals(ra.failure, "connect-failure");
    assertEquals(rb.failure, "connect-failure");
    assert(ra.failureDetail!.startsWith(`cluster "web": connect to 127.0.0.1:${port} failed: `), ra.failureDetail);
    // One connection per queued stream was attempted; the first failure failed both streams.
    await waitFor(() => stat("upstream_cx_connect_fail") === 2);
    assertEquals(stat("upstream_cx_active"), 0);
    assertEquals(stat("upstream_rq_pending_failure_eject"), 2);
    assertEquals(pool.pendingStreams, 0);
    assertEquals(cluster.describe().hosts[0]!.cxConnectFail, 2);
    assertEquals(host.activeRequests, 0);
  } finally {
    cluster.shutdown();
  }
});

Deno.test("Http1ConnPool reports connect timeouts", async () => {
  // No loopback trick makes a connect hang reliably, so the connector is injected: it times out as connectHost does.
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hang: Connector = (host, { timeoutMs }) =>
    new Promise((_, rej) => {
      const t = setTimeout(() => {
        timers.delete(t);
        rej(new ConnectTimeoutError(`connect to ${host.key} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      timers.add(t);
    });
  const { pool, cluster, stat } = setup(9, { connect_timeout: "0.03s" }, hang);
  try {
    const a = new Exchange();
    const t0 = performance.now();
    pool.newStream(a, a);
    const r = await a.done;
    assert(performance.now() - t0 >= 25);
    assertEquals(r.failure, "timeout");
    assertEquals(
      r.failureDetail,
      'cluster "web": connect to 127.0.0.1:9 failed: connect to 127.0.0.1:9 timed out after 30 ms',
    );
    assertEquals(stat("upstream_cx_connect_timeout"), 1);
    assertEquals(stat("upstream_cx_connect_fail"), 1);
  } finally {
    cluster.shutdown();
    for (const t of timers) clearTimeout(t);
  }
});

Deno.test("Http1ConnPool cancel removes a pending stream", async () => {
  const up = new TestUpstream();
  const { pool, cluster, stat } = setup(up.port);
  try {
    const a = new Exchange();
    const b = new Exchange();
    const ha = pool.newStream(a, a)!;
    pool.newStream(b, b);
    assertEquals(pool.pendingStreams, 2);
    ha.cancel();
    assertEquals(pool.pendingStreams, 1);
    assertEquals(stat("upstream_rq_pending_active"), 1);
    await b.done;
    await sleep(20);
    assertEquals(a.outcome.info, undefined);
    assertEquals(up.requests.length, 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool drain closes connections as they go idle", async () => {
  const up = new TestUpstream();
  up.reply = () => ({ delayMs: 30 });
  const { pool, cluster } = setup(up.port);
  try {
    const a = new Exchange();
    pool.newStream(a, a);
    await waitFor(() => pool.busyConnections === 1);
    let drained = false;
    pool.drain(() => drained = true);
    const b = new Exchange();
    assertEquals(pool.newStream(b, b), undefined);
    assertEquals(b.outcome.failure, "closed");
    assertEquals((await a.done).status, 200);
    await waitFor(() => drained, 1000, "drained");
    assertEquals(pool.activeConnections, 0);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("Http1ConnPool counts a router reset as tx reset and closes the connection", async () => {
  const up = new TestUpstream();
  up.reply = () => ({ delayMs: 200 });
  const { pool, cluster, stat, host } = setup(up.port);
  try {
    const a = new Exchange();
    pool.newStream(a, a);
    await waitFor(() => a.encoder !== undefined);
    a.encoder!.resetStream("local-reset");
    assertEquals(stat("upstream_rq_tx_reset"), 1);
    assertEquals(host.activeRequests, 0);
    await waitFor(() => pool.activeConnections === 0);
    assertEquals(a.outcome.reset, undefined);
    assertEquals(stat("upstream_cx_destroy_local"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});
