/**
 * `auto_config` over real TLS peers: Ferry offers ALPN `h2`, `http/1.1` to a `node:http2` secure server that also
 * speaks HTTP/1.1 (it picks h2) and to a `node:https` server (it picks http/1.1), and speaks what each chose, for
 * HTTP/1.1 and HTTP/2 downstream requests alike. An UpstreamTlsContext naming its own `alpn_protocols` keeps them.
 */
import http2 from "node:http2";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { assert, assertEquals } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { parseClientTransportSocket } from "../../lib/tls/transport_socket.ts";
import { SslStats } from "../../lib/tls/stats.ts";
import { tlsConnector } from "../../lib/tls/upstream.ts";
import { connectHost } from "../../lib/upstream/connect.ts";
import { AUTO_ALPN_PROTOCOLS } from "../../lib/upstream/mixed_pool.ts";
import { TestStats } from "../fakes/stats.ts";
import { curl, itOpts, startFerry, stat } from "./_harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "ferry-alpn-" });
const files = generateTestPki({ gm: false, hosts: ["localhost"], ips: ["127.0.0.1"] });
for (const [name, pem] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, pem);
const CA = `${dir}/ca_ecdsa.crt`;
const KEY = files["server_ecdsa.key"]!;
const CERT = files["server_ecdsa.crt"]!;

const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const HPO = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
type Obj = Record<string, unknown>;

/** A TLS peer that answers `v<httpVersion>` and counts its TLS connections and the versions it saw. */
interface Peer {
  readonly port: number;
  readonly versions: string[];
  /** The TLS connections accepted, with the ALPN protocol each negotiated ("" for none). */
  readonly alpns: string[];
  close(): Promise<void>;
}

function answer(versions: string[]) {
  return (req: { httpVersion: string }, res: { setHeader(k: string, v: string): void; end(b: string): void }) => {
    versions.push(req.httpVersion);
    res.setHeader("content-type", "text/plain");
    res.end(`v${req.httpVersion}`);
  };
}

/** `node:http2` secure server with `allowHTTP1`: h2 to a client offering it, else HTTP/1.1. */
async function startH2Peer(): Promise<Peer> {
  const versions: string[] = [];
  const alpns: string[] = [];
  const sockets = new Set<TLSSocket>();
  const server = http2.createSecureServer({ key: KEY, cert: CERT, allowHTTP1: true }, answer(versions));
  server.on("secureConnection", (s: TLSSocket) => {
    sockets.add(s);
    alpns.push(typeof s.alpnProtocol === "string" ? s.alpnProtocol : "");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    versions,
    alpns,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** `node:https` server: ALPN http/1.1 only. */
async function startH1Peer(): Promise<Peer> {
  const versions: string[] = [];
  const alpns: string[] = [];
  const server = https.createServer({ key: KEY, cert: CERT, ALPNProtocols: ["http/1.1"] }, answer(versions));
  server.on("secureConnection", (s: TLSSocket) => alpns.push(typeof s.alpnProtocol === "string" ? s.alpnProtocol : ""));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    versions,
    alpns,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function tlsSocket(common: Obj = {}): Obj {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": UPSTREAM_TLS,
      sni: "localhost",
      common_tls_context: { validation_context: { trusted_ca: { filename: CA } }, ...common },
    },
  };
}

function autoCluster(name: string, port: number, common: Obj = {}): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "2s",
    transport_socket: tlsSocket(common),
    typed_extension_protocol_options: { [HPO]: { "@type": `type.googleapis.com/${HPO}`, auto_config: {} } },
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

function bootstrap(clusters: Obj[]): Obj {
  const routes = clusters.map((c) => ({ match: { prefix: `/${c.name}` }, route: { cluster: c.name } }));
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "test",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type":
                "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "test",
              codec_type: "AUTO",
              route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes }] },
              http_filters: [{
                name: "envoy.filters.http.router",
                typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
              }],
            },
          }],
        }],
      }],
      clusters,
    },
  };
}

/** `n` concurrent GETs of `path` over one HTTP/2 (h2c) connection to Ferry; the bodies. */
async function h2Requests(port: number, path: string, n: number): Promise<string[]> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await Promise.all(Array.from({ length: n }, () =>
      new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": path });
        let body = "";
        let status = 0;
        req.setEncoding("utf8");
        req.on("response", (h) => status = Number(h[":status"]));
        req.on("data", (d: string) => body += d);
        req.on("end", () => status === 200 ? resolve(body) : reject(new Error(`status ${status}: ${body}`)));
        req.on("error", reject);
        req.end();
      })));
  } finally {
    session.close();
  }
}

Deno.test(
  "tlsConnector offers h2,http/1.1 when asked and reports the server's choice as tls.alpn",
  itOpts,
  async () => {
    const h2 = await startH2Peer();
    const h1 = await startH1Peer();
    try {
      const plain = parseClientTransportSocket(tlsSocket(), "ts")!;
      const pinned = parseClientTransportSocket(tlsSocket({ alpn_protocols: ["http/1.1"] }), "ts")!;
      const stats = new SslStats(new TestStats().scope("c"));
      const opts = { timeoutMs: 2000 };
      const hostAt = (port: number) =>
        ({ address: "127.0.0.1", port, key: `127.0.0.1:${port}`, hostname: "localhost" }) as unknown as Parameters<
          typeof connectHost
        >[0];
      const alpnOf = async (c: ReturnType<typeof tlsConnector>, port: number) => {
        const conn = await c(hostAt(port), opts);
        conn.close();
        return conn.tls?.alpn;
      };
      const auto = tlsConnector(connectHost, plain, stats, { alpnFallback: AUTO_ALPN_PROTOCOLS });
      assertEquals(await alpnOf(auto, h2.port), "h2");
      assertEquals(await alpnOf(auto, h1.port), "http/1.1");
      // The context's own alpn_protocols win over the fallback (Envoy); without either, nothing is offered.
      assertEquals(
        await alpnOf(tlsConnector(connectHost, pinned, stats, { alpnFallback: ["h2"] }), h2.port),
        "http/1.1",
      );
      assertEquals(await alpnOf(tlsConnector(connectHost, plain, stats), h2.port), undefined);
    } finally {
      await h2.close();
      await h1.close();
    }
  },
);

Deno.test(
  "auto_config: h2 to a server that picks it, HTTP/1.1 to one that does not, from either downstream protocol",
  itOpts,
  async () => {
    const h2 = await startH2Peer();
    const h1 = await startH1Peer();
    const pinnedPeer = await startH2Peer();
    const ferry = await startFerry(bootstrap([
      autoCluster("both", h2.port),
      autoCluster("h1only", h1.port),
      autoCluster("pinned", pinnedPeer.port, { alpn_protocols: ["http/1.1"] }),
    ]));
    try {
      const port = ferry.port();
      // HTTP/1.1 downstream.
      const a = await curl(`http://127.0.0.1:${port}/both`);
      assertEquals([a.status, a.body], [200, "v2.0"], a.stderr);
      const b = await curl(`http://127.0.0.1:${port}/h1only`);
      assertEquals([b.status, b.body], [200, "v1.1"], b.stderr);
      const c = await curl(`http://127.0.0.1:${port}/pinned`);
      assertEquals([c.status, c.body], [200, "v1.1"], c.stderr);
      // HTTP/2 downstream.
      assertEquals(await h2Requests(port, "/both", 3), ["v2.0", "v2.0", "v2.0"]);
      assertEquals(await h2Requests(port, "/h1only", 3), ["v1.1", "v1.1", "v1.1"]);
      assertEquals(await h2Requests(port, "/pinned", 2), ["v1.1", "v1.1"]);

      assert(h2.versions.every((v) => v === "2.0"), h2.versions.join());
      assert(h1.versions.every((v) => v === "1.1"), h1.versions.join());
      assert(pinnedPeer.versions.every((v) => v === "1.1"), pinnedPeer.versions.join());
      assertEquals(h2.alpns, ["h2"]);
      assert(h1.alpns.every((p) => p === "http/1.1"), h1.alpns.join());
      assert(pinnedPeer.alpns.every((p) => p === "http/1.1"), pinnedPeer.alpns.join());
      assertEquals(await stat(ferry, "cluster.both.upstream_cx_http2_total"), 1);
      assertEquals(await stat(ferry, "cluster.both.upstream_cx_http1_total"), 0);
      assert((await stat(ferry, "cluster.h1only.upstream_cx_http1_total") ?? 0) >= 1);
      assertEquals(await stat(ferry, "cluster.h1only.upstream_cx_http2_total"), 0);
      assertEquals(await stat(ferry, "cluster.both.upstream_rq_total"), 4);
      assertEquals(await stat(ferry, "cluster.both.ssl.handshake"), 1);
    } finally {
      await ferry.stop();
      await h2.close();
      await h1.close();
      await pinnedPeer.close();
    }
  },
);

Deno.test(
  "auto_config: 200 concurrent requests through the h2 host use at most 2 upstream connections",
  itOpts,
  async () => {
    const h2 = await startH2Peer();
    const ferry = await startFerry(bootstrap([autoCluster("both", h2.port)]));
    try {
      const port = ferry.port();
      // From a cold pool: all 200 arrive before the first connection knows its protocol.
      const bodies = await h2Requests(port, "/both", 200);
      assertEquals(bodies.length, 200);
      assert(bodies.every((b) => b === "v2.0"));
      assertEquals(h2.versions.length, 200);
      assert(h2.versions.every((v) => v === "2.0"));
      assert(h2.alpns.length <= 2, `${h2.alpns.length} upstream connections`);
      assert(h2.alpns.every((p) => p === "h2"), h2.alpns.join());
      // HTTP/1.1 downstream, 200 at once (several connections to Ferry), on the now-known HTTP/2 host.
      const more = await Promise.all(
        Array.from({ length: 200 }, () => fetch(`http://127.0.0.1:${port}/both`).then((r) => r.text())),
      );
      assert(more.every((b) => b === "v2.0"), more.find((b) => b !== "v2.0"));
      assert(h2.alpns.length <= 2, `${h2.alpns.length} upstream connections`);
      assertEquals(await stat(ferry, "cluster.both.upstream_rq_total"), 400);
      assert((await stat(ferry, "cluster.both.upstream_cx_total") ?? 0) <= 2);
    } finally {
      await ferry.stop();
      await h2.close();
    }
  },
);
