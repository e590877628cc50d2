import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { CodecFactory, StreamDecoder, StreamEncoder } from "../api/codec.ts";
import type { ConnectionHandler, NetConnection } from "../api/network.ts";
import { ConnectTimeoutError } from "../network/connection.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { http2CodecFactory } from "../../codecs/http2/mod.ts";
import { createMuxCodecFactory, type MuxCodecFactoryOptions, MuxTestServer } from "../../tests/fakes/mux_codec.ts";
import { freePort } from "../../tests/fakes/ports.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { Exchange, sleep, waitFor } from "../../tests/fakes/upstream.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";
import { connectHost, type Connector } from "./connect.ts";
import type { PoolStreamEncoder } from "./http1_pool.ts";
import { MuxConnPool } from "./mux_pool.ts";

function setup(
  port: number,
  extra: Record<string, unknown> = {},
  opts: { connect?: Connector; codec?: MuxCodecFactoryOptions } = {},
) {
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
  const cluster = new ClusterImpl(config, {
    stats,
    httpCodec: http1CodecFactory,
    log: () => {},
    connect: opts.connect,
  });
  const codec = createMuxCodecFactory(opts.codec);
  const host = cluster.chooseHost()!;
  const pool = cluster.pool(host, codec) as MuxConnPool;
  const stat = (n: string) => stats.get(`cluster.web.${n}`);
  return { stats, cluster, host, pool, stat, codec };
}

function start(pool: MuxConnPool, path = "/"): Exchange {
  const e = new Exchange(path);
  pool.newStream(e, e);
  return e;
}

Deno.test("MuxConnPool is the cluster's pool for multiplex-stream-id codecs", () => {
  const { pool, cluster } = setup(9);
  assert(pool instanceof MuxConnPool);
  cluster.shutdown();
});

Deno.test("MuxConnPool fills a connection up to its capacity, then opens a second", async () => {
  const up = new MuxTestServer({ capacity: 3 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat, host, codec } = setup(up.port, {}, { codec: { initialMaxConcurrentStreams: 3 } });
  try {
    const ex = [1, 2, 3, 4, 5].map((i) => start(pool, `/${i}`));
    assertEquals(pool.pendingStreams, 5);
    // One connection on its way covers the queue until its codec says how many streams it takes.
    assertEquals(pool.activeConnections, 1);
    await waitFor(() => up.heldCount === 5, 2000, "5 requests at the server");
    assertEquals(up.maxOpen(1), 3);
    assertEquals(up.maxOpen(2), 2);
    assertEquals(pool.activeConnections, 2);
    assertEquals(pool.activeStreams, 5);
    assertEquals(host.activeRequests, 5);
    assertEquals(stat("upstream_rq_active"), 5);
    // Room on the second connection: placed at once, no handle.
    const f = new Exchange("/6");
    assertEquals(pool.newStream(f, f), undefined);
    // A second stream on a busy connection is not "reused" in the replay sense (see PoolReadyInfo.reused).
    assertEquals(f.outcome.info!.reused, false);
    up.release();
    await waitFor(() => up.heldCount === 1);
    up.release();
    const rs = await Promise.all([...ex, f].map((e) => e.done));
    assertEquals(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assertEquals(rs.map((r) => r.headers!.get("x-conn")), ["1", "1", "1", "2", "2", "2"]);
    assertEquals(rs[0]!.info!.reused, false);
    // The connection view is the stream's, with the socket's addresses.
    assert(rs[0]!.info!.connection !== rs[1]!.info!.connection);
    assertEquals(rs[0]!.info!.connection.remotePort, up.port);
    assertEquals(stat("upstream_cx_total"), 2);
    assertEquals(stat("upstream_cx_http2_total"), 2);
    assertEquals(stat("upstream_cx_active"), 2);
    assertEquals(stat("upstream_rq_total"), 6);
    assertEquals(stat("upstream_rq_completed"), 6);
    assertEquals(stat("upstream_rq_pending_total"), 5);
    assertEquals(stat("upstream_rq_pending_active"), 0);
    assertEquals(stat("upstream_rq_active"), 0);
    assert(stat("upstream_cx_tx_bytes_total") > 0);
    assert(stat("upstream_cx_rx_bytes_total") > 0);
    assertEquals(host.activeRequests, 0);
    assertEquals(pool.idleConnections, 2);
    const d = cluster.describe().hosts[0]!;
    assertEquals([d.rqTotal, d.rqSuccess, d.rqError, d.cxTotal, d.cxActive], [6, 6, 0, 2, 2]);
    // The oldest connection is filled first.
    up.reply = () => ({});
    const g = start(pool, "/g");
    const h = start(pool, "/h");
    assertEquals((await g.done).headers!.get("x-conn"), "1");
    assertEquals((await h.done).headers!.get("x-conn"), "1");
    assertEquals(codec.clients.length, 2);
    assert(codec.clients[0]!.options.http2Stats !== undefined);
  } finally {
    cluster.shutdown();
    await up.close();
  }
  assertEquals(pool.activeConnections, 0);
});

Deno.test("MuxConnPool places waiting streams when the capacity grows", async () => {
  const up = new MuxTestServer({ capacity: 1 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port, {
    circuit_breakers: { thresholds: [{ max_connections: 1 }] },
  }, { codec: { initialMaxConcurrentStreams: 1 } });
  try {
    const ex = [1, 2, 3].map((i) => start(pool, `/${i}`));
    await waitFor(() => up.heldCount === 1);
    await sleep(20);
    assertEquals(up.heldCount, 1);
    assertEquals(pool.pendingStreams, 2);
    assertEquals(pool.activeConnections, 1);
    assert(stat("upstream_cx_overflow") >= 1);
    up.setCapacity(1, 3);
    await waitFor(() => up.heldCount === 3, 2000, "3 requests at the server");
    assertEquals(pool.pendingStreams, 0);
    assertEquals(up.maxOpen(1), 3);
    up.release();
    const rs = await Promise.all(ex.map((e) => e.done));
    assertEquals(rs.map((r) => r.headers!.get("x-conn")), ["1", "1", "1"]);
    assertEquals(stat("upstream_cx_total"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool opens more connections when the capacity shrinks under waiting streams", async () => {
  const up = new MuxTestServer({ capacity: 2 });
  up.reply = () => ({ hold: true });
  // The codec believes 10 until the server's SETTINGS arrive.
  const { pool, cluster, codec } = setup(up.port, {}, { codec: { initialMaxConcurrentStreams: 10 } });
  try {
    const a = start(pool, "/a");
    await waitFor(() => up.heldCount === 1);
    // The server holding /a does not mean the client has read its SETTINGS yet (one CI run opened 4 streams on
    // connection 1): wait for the client codec to apply them.
    await waitFor(() => codec.clients[0]?.maxConcurrentStreams === 2, 2000, "SETTINGS applied by the client");
    const ex = [1, 2, 3].map((i) => start(pool, `/${i}`));
    await waitFor(() => up.heldCount === 4, 2000, "4 requests at the server");
    assertEquals(up.maxOpen(1), 2);
    assertEquals(up.maxOpen(2), 2);
    up.release();
    const rs = await Promise.all([a, ...ex].map((e) => e.done));
    assertEquals(rs.map((r) => r.status), [200, 200, 200, 200]);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool drains a connection on GOAWAY and places new streams on another", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port);
  try {
    const a = start(pool, "/a");
    const b = start(pool, "/b");
    await waitFor(() => up.heldCount === 2);
    up.goAway(1);
    await waitFor(() => stat("upstream_cx_close_notify") === 1, 2000, "GOAWAY seen");
    const c = start(pool, "/c");
    await waitFor(() => up.heldCount === 3);
    up.release();
    const [ra, rb, rc] = await Promise.all([a.done, b.done, c.done]);
    assertEquals([ra.status, rb.status, rc.status], [200, 200, 200]);
    assertEquals([ra.headers!.get("x-conn"), rb.headers!.get("x-conn")], ["1", "1"]);
    assertEquals(rc.headers!.get("x-conn"), "2");
    // The drained connection closes once its streams are done.
    await waitFor(() => pool.activeConnections === 1, 2000, "GOAWAY connection closed");
    assertEquals(stat("upstream_cx_destroy_local"), 1);
    assertEquals(stat("upstream_cx_destroy_with_active_rq"), 0);
    assertEquals(stat("upstream_rq_completed"), 3);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool passes refused streams to the caller as remote-refused-stream", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = (r) => r.headers[":path"] === "/refuse" ? { refuse: true } : { hold: true };
  const { pool, cluster, stat, host } = setup(up.port);
  try {
    // REFUSED_STREAM on one stream: that stream only; the connection stays.
    const r = start(pool, "/refuse");
    assertEquals((await r.done).reset, "remote-refused-stream");
    assertEquals(stat("upstream_rq_rx_reset"), 1);
    assertEquals(pool.activeConnections, 1);
    // GOAWAY below a stream: the streams above it are refused, the ones below finish.
    const a = start(pool, "/a");
    const b = start(pool, "/b");
    await waitFor(() => up.heldCount === 2);
    const idA = up.requests.find((q) => q.headers[":path"] === "/a")!.id;
    up.goAway(1, idA);
    const rb = await b.done;
    assertEquals(rb.reset, "remote-refused-stream");
    assertEquals(rb.status, undefined);
    up.release();
    assertEquals((await a.done).status, 200);
    assertEquals(stat("upstream_rq_rx_reset"), 2);
    assertEquals(stat("upstream_cx_close_notify"), 1);
    await waitFor(() => pool.activeConnections === 0);
    assertEquals(host.activeRequests, 0);
    assertEquals(cluster.describe().hosts[0]!.rqError, 2);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool drains a connection after max_requests_per_connection streams", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port, { max_requests_per_connection: 2 });
  try {
    const ex = [1, 2, 3].map((i) => start(pool, `/${i}`));
    await waitFor(() => up.heldCount === 3);
    assertEquals(stat("upstream_cx_max_requests"), 1);
    up.release();
    const rs = await Promise.all(ex.map((e) => e.done));
    assertEquals(rs.map((r) => r.headers!.get("x-conn")), ["1", "1", "2"]);
    await waitFor(() => pool.activeConnections === 1, 2000, "first connection closed");
    assertEquals(stat("upstream_cx_destroy_local"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool closes a connection without streams after the idle timeout", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port, { common_http_protocol_options: { idle_timeout: "0.05s" } });
  try {
    // A connection with a stream in progress is not idle, however long the stream takes.
    const a = start(pool);
    await waitFor(() => up.heldCount === 1);
    await sleep(100);
    assertEquals(stat("upstream_cx_idle_timeout"), 0);
    up.release();
    await a.done;
    up.reply = () => ({});
    for (let i = 0; i < 3; i++) {
      await sleep(30);
      await start(pool).done;
    }
    assertEquals(stat("upstream_cx_idle_timeout"), 0);
    assertEquals(stat("upstream_cx_total"), 1);
    await waitFor(() => stat("upstream_cx_idle_timeout") === 1, 1000, "idle timeout");
    await waitFor(() => pool.activeConnections === 0);
    assertEquals(stat("upstream_cx_active"), 0);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool fails waiting streams when the connect fails", async () => {
  const port = freePort();
  const { pool, cluster, stat, host } = setup(port);
  try {
    const a = start(pool);
    const b = start(pool);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assertEquals([ra.failure, rb.failure], ["connect-failure", "connect-failure"]);
    assert(ra.failureDetail!.startsWith(`cluster "web": connect to 127.0.0.1:${port} failed: `), ra.failureDetail);
    // One connection for both streams.
    assertEquals(stat("upstream_cx_connect_fail"), 1);
    assertEquals(stat("upstream_cx_active"), 0);
    assertEquals(stat("upstream_rq_pending_failure_eject"), 2);
    assertEquals(pool.pendingStreams, 0);
    assertEquals(cluster.describe().hosts[0]!.cxConnectFail, 1);
    assertEquals(host.activeRequests, 0);
  } finally {
    cluster.shutdown();
  }
});

Deno.test("MuxConnPool reports connect timeouts", async () => {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hang: Connector = (host, { timeoutMs }) =>
    new Promise((_, rej) => {
      const t = setTimeout(() => {
        timers.delete(t);
        rej(new ConnectTimeoutError(`connect to ${host.key} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      timers.add(t);
    });
  const { pool, cluster, stat } = setup(9, { connect_timeout: "0.03s" }, { connect: hang });
  try {
    const r = await start(pool).done;
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

Deno.test("MuxConnPool enforces max_connections and max_pending_requests", async () => {
  const up = new MuxTestServer({ capacity: 1 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port, {
    circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] },
  }, { codec: { initialMaxConcurrentStreams: 1 } });
  try {
    const a = start(pool, "/a");
    await waitFor(() => up.heldCount === 1);
    const b = new Exchange("/b");
    assert(pool.newStream(b, b) !== undefined); // waits: the connection is full and no other may open
    assertEquals(stat("upstream_cx_overflow"), 1);
    const c = new Exchange("/c");
    assertEquals(pool.newStream(c, c), undefined);
    assertEquals(c.outcome.failure, "overflow");
    assertEquals(stat("upstream_rq_pending_overflow"), 1);
    up.release();
    await a.done;
    await waitFor(() => up.heldCount === 1);
    up.release();
    const rb = await b.done;
    assertEquals(rb.headers!.get("x-conn"), "1");
    assertEquals(stat("upstream_cx_total"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool enforces max_requests", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port, { circuit_breakers: { thresholds: [{ max_requests: 2 }] } });
  try {
    const a = start(pool, "/a");
    const b = start(pool, "/b");
    await waitFor(() => up.heldCount === 2);
    const c = new Exchange("/c");
    assertEquals(pool.newStream(c, c), undefined);
    assertEquals(c.outcome.failure, "overflow");
    assertEquals(c.outcome.failureDetail, 'cluster "web": too many requests (max_requests 2)');
    assertEquals(stat("upstream_rq_pending_overflow"), 1);
    up.reply = () => ({});
    up.release();
    await Promise.all([a.done, b.done]);
    assertEquals((await start(pool, "/d").done).status, 200);
  } finally {
    up.release();
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool cancel removes a waiting stream", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  const { pool, cluster, stat } = setup(up.port);
  try {
    const a = new Exchange("/a");
    const b = new Exchange("/b");
    const ha = pool.newStream(a, a)!;
    pool.newStream(b, b);
    ha.cancel();
    assertEquals(pool.pendingStreams, 1);
    assertEquals(stat("upstream_rq_pending_active"), 1);
    await b.done;
    await sleep(10);
    assertEquals(a.outcome.info, undefined);
    assertEquals(up.requests.length, 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool drain lets streams finish, then closes and calls back", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat } = setup(up.port);
  try {
    const a = start(pool, "/a");
    await waitFor(() => up.heldCount === 1);
    let drained = false;
    pool.drain(() => drained = true);
    assert(pool.draining);
    const b = new Exchange("/b");
    assertEquals(pool.newStream(b, b), undefined);
    assertEquals(b.outcome.failure, "closed");
    await sleep(10);
    assertEquals(drained, false);
    up.release();
    assertEquals((await a.done).status, 200);
    await waitFor(() => drained, 1000, "drained");
    assertEquals(pool.activeConnections, 0);
    assertEquals(stat("upstream_cx_destroy_local"), 1);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool close resets streams in progress and fails waiting ones", async () => {
  const up = new MuxTestServer({ capacity: 1 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat, host } = setup(up.port, {
    circuit_breakers: { thresholds: [{ max_connections: 1 }] },
  }, { codec: { initialMaxConcurrentStreams: 1 } });
  try {
    const a = start(pool, "/a");
    await waitFor(() => up.heldCount === 1);
    const b = start(pool, "/b");
    pool.close();
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assertEquals(ra.reset, "connection-termination");
    assertEquals(rb.failure, "closed");
    assertEquals(pool.activeConnections, 0);
    assertEquals(stat("upstream_cx_destroy_local_with_active_rq"), 1);
    assertEquals(stat("upstream_rq_rx_reset"), 1);
    assertEquals(host.activeRequests, 0);
    assertEquals(stat("upstream_cx_active"), 0);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool resets one stream for the caller and keeps the connection", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = (r) => r.headers[":path"] === "/slow" ? { hold: true } : { delayMs: 20 };
  const { pool, cluster, stat, host } = setup(up.port);
  try {
    const a = start(pool, "/slow");
    const b = start(pool, "/b");
    await waitFor(() => a.encoder !== undefined && up.heldCount === 1);
    a.encoder!.resetStream("local-reset");
    assertEquals(stat("upstream_rq_tx_reset"), 1);
    assertEquals((await b.done).status, 200);
    assertEquals(a.outcome.reset, undefined);
    assertEquals(pool.activeConnections, 1);
    assertEquals(stat("upstream_cx_destroy"), 0);
    await waitFor(() => host.activeRequests === 0);
    assertEquals(stat("upstream_rq_active"), 0);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool resets the streams of a connection the upstream closes", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const { pool, cluster, stat, host } = setup(up.port);
  try {
    const a = start(pool, "/a");
    const b = start(pool, "/b");
    await waitFor(() => up.heldCount === 2);
    up.closeConn(1);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assertEquals([ra.reset, rb.reset], ["connection-termination", "connection-termination"]);
    await waitFor(() => pool.activeConnections === 0);
    assertEquals(stat("upstream_cx_destroy_remote"), 1);
    assertEquals(stat("upstream_cx_destroy_remote_with_active_rq"), 1);
    assertEquals(stat("upstream_rq_rx_reset"), 2);
    assertEquals(host.activeRequests, 0);
    // The next stream gets a new connection.
    up.reply = () => ({});
    assertEquals((await start(pool).done).headers!.get("x-conn"), "2");
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool readDisable on a stream's connection view pauses that stream only", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ delayMs: 10 });
  const { pool, cluster, codec } = setup(up.port);
  try {
    const a = new Exchange("/a");
    const origReady = a.onPoolReady.bind(a);
    a.onPoolReady = (enc, info) => {
      info.connection.readDisable(true);
      origReady(enc, info);
    };
    pool.newStream(a, a);
    const b = start(pool, "/b");
    assertEquals((await b.done).status, 200);
    await sleep(30);
    assertEquals(a.outcome.status, undefined);
    const s = [...codec.clients[0]!.streams.values()][0]!;
    assertEquals(s.readDisabled, 1);
    a.outcome.info!.connection.readDisable(false);
    assertEquals((await a.done).status, 200);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

Deno.test("MuxConnPool passes the socket's write watermarks to the codec, which tells each stream", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = () => ({ hold: true });
  const handlers: ConnectionHandler[] = [];
  const spy: Connector = async (host, o) => {
    const conn = await connectHost(host, o);
    return new Proxy(conn, {
      get(t, p) {
        if (p === "setHandler") {
          return (h: ConnectionHandler) => {
            handlers.push(h);
            t.setHandler(h);
          };
        }
        const v = Reflect.get(t, p, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
    }) as NetConnection;
  };
  const { pool, cluster, codec } = setup(up.port, {}, { connect: spy });
  try {
    const a = start(pool, "/a");
    await waitFor(() => up.heldCount === 1);
    const events: string[] = [];
    (a.encoder as PoolStreamEncoder).setWatermarkCallbacks({
      onAboveWriteBufferHighWatermark: () => events.push("above"),
      onBelowWriteBufferLowWatermark: () => events.push("below"),
    });
    handlers[0]!.onWriteBlocked!();
    assertEquals(codec.clients[0]!.above, 1);
    assertEquals(events, ["above"]);
    handlers[0]!.onWriteDrained!();
    assertEquals(codec.clients[0]!.below, 1);
    assertEquals(events, ["above", "below"]);
    // Callbacks added on the encoder's stream hear the same, and a late subscriber learns of a high watermark.
    const stream = (a.encoder as PoolStreamEncoder).stream!;
    assertEquals(stream.protocol, "MUX/1");
    const seen: string[] = [];
    stream.addCallbacks({
      onAboveWriteBufferHighWatermark: () => seen.push("above"),
      onBelowWriteBufferLowWatermark: () => seen.push("below"),
    });
    handlers[0]!.onWriteBlocked!();
    assertEquals(seen, ["above"]);
    const late: string[] = [];
    (a.encoder as PoolStreamEncoder).setWatermarkCallbacks({
      onAboveWriteBufferHighWatermark: () => late.push("above"),
      onBelowWriteBufferLowWatermark: () => late.push("below"),
    });
    assertEquals(late, ["above"]);
    handlers[0]!.onWriteDrained!();
    assertEquals([seen, late], [["above", "below"], ["above", "below"]]);
    up.release();
    await a.done;
  } finally {
    cluster.shutdown();
    await up.close();
  }
});

// --- HTTP/2 (codecs/http2) against a node:http2 h2c server ---

interface H2Peer {
  port: number;
  /** Most streams open at once on any one session, and over all sessions. */
  maxOpenPerSession: number;
  maxOpen: number;
  sessions: Http2Session[];
  served: number;
  close(): Promise<void>;
}

async function h2Peer(maxConcurrentStreams: number, delayMs: number): Promise<H2Peer> {
  const server = http2.createServer({ settings: { maxConcurrentStreams } });
  const peer: H2Peer = {
    port: 0,
    maxOpenPerSession: 0,
    maxOpen: 0,
    sessions: [],
    served: 0,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const perSession = new Map<Http2Session, number>();
  let open = 0;
  server.on("session", (s: Http2Session) => {
    peer.sessions.push(s);
    perSession.set(s, 0);
  });
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const s = stream.session!;
    const n = (perSession.get(s) ?? 0) + 1;
    perSession.set(s, n);
    open++;
    peer.maxOpenPerSession = Math.max(peer.maxOpenPerSession, n);
    peer.maxOpen = Math.max(peer.maxOpen, open);
    stream.on("close", () => {
      perSession.set(s, (perSession.get(s) ?? 1) - 1);
      open--;
    });
    stream.on("data", () => {});
    stream.on("end", () => {
      setTimeout(() => {
        if (stream.closed || stream.destroyed) return;
        peer.served++;
        stream.respond({ ":status": 200, "x-path": String(headers[":path"]) });
        stream.end("ok");
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  peer.port = (server.address() as { port: number }).port;
  return peer;
}

function h2Setup(port: number, extra: Record<string, unknown> = {}) {
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
  const cluster = new ClusterImpl(config, { stats, httpCodec: http1CodecFactory, log: () => {} });
  const host = cluster.chooseHost()!;
  const pool = cluster.pool(host, http2CodecFactory) as MuxConnPool;
  const stat = (n: string) => stats.get(`cluster.web.${n}`);
  return { cluster, host, pool, stat };
}

/** A request that is re-sent when the upstream refuses it unprocessed, as the router does. */
async function send(pool: MuxConnPool, path: string): Promise<{ status?: number; tries: number; conn?: number }> {
  for (let tries = 1; tries <= 3; tries++) {
    const e = start(pool, path);
    const r = await e.done;
    if (r.reset === "remote-refused-stream") continue;
    if (r.status === undefined) throw new Error(`${path}: ${r.reset ?? r.failure} ${r.failureDetail ?? ""}`);
    return { status: r.status, tries, conn: r.info!.connection.localPort };
  }
  throw new Error(`${path}: refused three times`);
}

Deno.test("MuxConnPool over HTTP/2: 200 concurrent requests on at most 2 connections, 10 streams each", async () => {
  const peer = await h2Peer(10, 5);
  const { pool, cluster, stat } = h2Setup(peer.port, {
    circuit_breakers: { thresholds: [{ max_connections: 2 }] },
  });
  try {
    // The first connection learns the server's limit; a second one is then held to it until its SETTINGS arrive.
    assertEquals((await send(pool, "/warm")).status, 200);
    const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => send(pool, `/${i}`)));
    assertEquals(rs.filter((r) => r.status === 200).length, 200);
    assertEquals(rs.filter((r) => r.tries > 1).length, 0);
    assertEquals(new Set(rs.map((r) => r.conn)).size, 2);
    assert(peer.maxOpenPerSession <= 10, `max open per session ${peer.maxOpenPerSession}`);
    assertEquals(peer.maxOpen, 20);
    assertEquals(peer.sessions.length, 2);
    assertEquals(stat("upstream_cx_total"), 2);
    assertEquals(stat("upstream_cx_http2_total"), 2);
    assertEquals(stat("upstream_rq_total"), 201);
    assertEquals(stat("upstream_rq_completed"), 201);
    assertEquals(stat("upstream_rq_rx_reset"), 0);
    assertEquals(stat("upstream_rq_active"), 0);
    assertEquals(stat("upstream_rq_pending_active"), 0);
  } finally {
    cluster.shutdown();
    for (const s of peer.sessions) s.destroy();
    await peer.close();
  }
});

Deno.test("MuxConnPool over HTTP/2: a server GOAWAY mid-traffic loses no request", async () => {
  const peer = await h2Peer(50, 10);
  const { pool, cluster, stat } = h2Setup(peer.port);
  try {
    assertEquals((await send(pool, "/warm")).status, 200);
    const first = peer.sessions[0]!;
    const all: Promise<{ status?: number; tries: number; conn?: number }>[] = [];
    for (let i = 0; i < 100; i++) {
      all.push(send(pool, `/${i}`));
      if (i === 40) {
        await sleep(2);
        first.close(); // graceful: GOAWAY with the last stream it took, then finish those
      }
      if (i % 10 === 9) await sleep(1);
    }
    const rs = await Promise.all(all);
    assertEquals(rs.filter((r) => r.status === 200).length, 100);
    assertEquals(stat("upstream_cx_close_notify"), 1);
    assert(stat("upstream_cx_total") >= 2);
    assertEquals(stat("upstream_rq_active"), 0);
    // The GOAWAY connection closes once its streams are done; the others stay.
    await waitFor(() => stat("upstream_cx_destroy") === 1, 2000, "the GOAWAY connection closed");
    assertEquals(pool.activeConnections, stat("upstream_cx_total") - 1);
    assertEquals(stat("upstream_cx_destroy_local"), 1);
    assertEquals(stat("upstream_cx_destroy_with_active_rq"), 0);
    // Refused streams reached the caller as resets and were re-sent: every request got its answer once.
    assertEquals(stat("upstream_rq_rx_reset"), rs.reduce((n, r) => n + r.tries - 1, 0));
    assertEquals(peer.served, 101);
  } finally {
    cluster.shutdown();
    for (const s of peer.sessions) s.destroy();
    await peer.close();
  }
});

/** The toy codec without per-stream transport (`StreamEncoder.stream`) and without socket watermark hooks. */
function bareCodec(): CodecFactory {
  const inner = createMuxCodecFactory();
  return {
    name: "mux-bare",
    poolMode: "multiplex-stream-id",
    createServer: inner.createServer,
    createClient(write, options, callbacks) {
      const c = inner.createClient(write, options, callbacks);
      return {
        protocol: c.protocol,
        newStream(d: StreamDecoder): StreamEncoder {
          const e = c.newStream(d);
          return {
            encodeHeaders: (h, end) => e.encodeHeaders(h, end),
            encodeData: (b, end) => e.encodeData(b, end),
            encodeTrailers: (t) => e.encodeTrailers(t),
            resetStream: (r) => e.resetStream(r),
            get headersSent() {
              return e.headersSent;
            },
          };
        },
        dispatch: (d) => c.dispatch(d),
        onEof: () => c.onEof(),
        get reusable() {
          return c.reusable;
        },
        get activeStreams() {
          return c.activeStreams;
        },
        get maxConcurrentStreams(): number {
          return c.maxConcurrentStreams ?? 1;
        },
        onConnectionClose: () => c.onConnectionClose?.(),
      };
    },
  };
}

Deno.test("MuxConnPool holds one stream's response itself when the codec has no per-stream flow control", async () => {
  const up = new MuxTestServer({ capacity: 10 });
  up.reply = (r) => ({ delayMs: 10, body: `body of ${r.headers[":path"]}` });
  const handlers: ConnectionHandler[] = [];
  const spy: Connector = async (host, o) => {
    const conn = await connectHost(host, o);
    const setHandler = conn.setHandler.bind(conn);
    conn.setHandler = (h) => {
      handlers.push(h);
      setHandler(h);
    };
    return conn;
  };
  const stats = new TestStats();
  const cluster = new ClusterImpl(
    parseCluster({
      name: "web",
      load_assignment: {
        endpoints: [{
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: up.port } } } }],
        }],
      },
    }, "c"),
    { stats, httpCodec: http1CodecFactory, log: () => {}, connect: spy },
  );
  const pool = cluster.pool(cluster.chooseHost()!, bareCodec()) as MuxConnPool;
  try {
    const a = new Exchange("/a");
    const events: string[] = [];
    const origReady = a.onPoolReady.bind(a);
    a.onPoolReady = (enc, info) => {
      (enc as PoolStreamEncoder).setWatermarkCallbacks({
        onAboveWriteBufferHighWatermark: () => events.push("a above"),
        onBelowWriteBufferLowWatermark: () => events.push("a below"),
      });
      info.connection.readDisable(true);
      info.connection.readDisable(true); // nests
      origReady(enc, info);
    };
    pool.newStream(a, a);
    const b = start(pool, "/b");
    assertEquals((await b.done).body, "body of /b");
    await sleep(30);
    assertEquals(a.outcome.status, undefined);
    a.outcome.info!.connection.readDisable(false);
    await sleep(5);
    assertEquals(a.outcome.status, undefined);
    a.outcome.info!.connection.readDisable(false);
    const ra = await a.done;
    assertEquals([ra.status, ra.body], [200, "body of /a"]);
    // Socket watermarks go to every stream of the connection when the codec does not take them.
    const c = new Exchange("/c");
    up.reply = () => ({ hold: true });
    pool.newStream(c, c);
    await waitFor(() => up.heldCount === 1);
    const seen: string[] = [];
    (c.encoder as PoolStreamEncoder).setWatermarkCallbacks({
      onAboveWriteBufferHighWatermark: () => seen.push("above"),
      onBelowWriteBufferLowWatermark: () => seen.push("below"),
    });
    handlers[0]!.onWriteBlocked!();
    handlers[0]!.onWriteDrained!();
    assertEquals(seen, ["above", "below"]);
    assertEquals(events, []); // a had ended
    up.release();
    assertEquals((await c.done).status, 200);
  } finally {
    cluster.shutdown();
    await up.close();
  }
});
