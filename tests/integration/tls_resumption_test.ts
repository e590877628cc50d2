/**
 * Session resumption through a running Ferry on its GM listeners:
 *
 * - **Ferry → Ferry** (always runs): a cluster speaking TLS 1.3-SM (one request per connection) to another
 *   listener with `session_ticket_keys`: the second and later upstream connections resume with the tickets the
 *   first ones got (`ssl.session_reused` on both the listener and the cluster); a listener with other keys does full
 *   handshakes.
 * - **Tongsuo `s_client -sess_out` / `-sess_in`** (when `TONGSUO_BIN` is set): TLS 1.3-SM resumes with Ferry's
 *   ticket, also on another listener configured with the same keys, not on one with other keys; TLCP resumes by
 *   session ID, not with `disable_stateful_session_resumption`.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { type GmsslPki, gmsslPki } from "../../lib/tls/engine/tlcp/_gmssl_util.ts";
import {
  curl,
  directResponseHcm,
  type FerryProcess,
  itOpts,
  spawnFerry,
  startFerry,
  startUpstream,
  stat,
  type TestFerry,
} from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";
import { startControlPlane } from "../xds/control_plane_client.ts";
import { createTls13Client, Tls13SessionCache } from "../../lib/tls/engine/tls13/mod.ts";
import { createTlcpClient, type TlcpEngine, type TlcpSession } from "../../lib/tls/engine/tlcp/mod.ts";
import { runOverSocket } from "../../lib/tls/engine/tls13/testdata/socket.ts";
import { type Certificate, parseCertificates } from "../../lib/crypto/mod.ts";
import { spawnTongsuo, TONGSUO_BIN } from "./_peers.ts";

const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const dec = new TextDecoder();
type Obj = Record<string, unknown>;

if (!TONGSUO_BIN) console.log("tls_resumption_test: TONGSUO_BIN is not set: the Tongsuo s_client tests are skipped");

const KEY_A = btoa(String.fromCharCode(...new Uint8Array(80).fill(0xa1)));
const KEY_B = btoa(String.fromCharCode(...new Uint8Array(80).fill(0xb2)));

function pair(p: GmsslPki, name: string): Obj {
  return { certificate_chain: { filename: p.path(`${name}.crt`) }, private_key: { filename: p.path(`${name}.key`) } };
}

function routeTo(cluster: string, prefix: string): Obj[] {
  return [{
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: prefix,
      route_config: {
        virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster } }] }],
      },
      http_filters: [{
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  }];
}

function gmListener(p: GmsslPki, name: string, extra: Obj, cluster = "backend"): Obj {
  return {
    name,
    stat_prefix: name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      transport_socket: {
        name: "ferry.transport_sockets.gm",
        typed_config: {
          "@type": GM_TYPE,
          versions: ["TLSv1.3", "TLCP"],
          certificate: pair(p, "server"),
          sign_certificate: pair(p, "server_sign"),
          enc_certificate: pair(p, "server_enc"),
          ...extra,
        },
      },
      filters: routeTo(cluster, name),
    }],
  };
}

function cluster(name: string, port: number, extra: Obj = {}): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "3s",
    ...extra,
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

async function withFerry(
  listeners: (p: GmsslPki) => Obj[],
  clusters: (upstreamPort: number) => Obj[],
  run: (ferry: TestFerry, p: GmsslPki) => Promise<void>,
): Promise<void> {
  const p = gmsslPki();
  const upstream = await startUpstream((req) => new Response(`upstream saw ${req.url.pathname}`));
  const ferry = await startFerry({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: { listeners: listeners(p), clusters: clusters(upstream.port) },
  });
  try {
    await run(ferry, p);
  } finally {
    await ferry.stop();
    await upstream.close();
  }
}

Deno.test({
  name: "GM resumption: Ferry's clusters resume on Ferry's listeners (TLS 1.3-SM tickets, TLCP session IDs)",
  ...itOpts,
  async fn() {
    // front (plain HTTP) → cluster "gm_a" (TLS 1.3-SM, one request per connection) → listener "back_a" → upstream;
    // "gm_off" goes the same way to a listener with stateless resumption disabled; "gm_tlcp" speaks TLCP to a
    // listener with the session-ID cache (on by default).
    const gmClient = (extra: Obj = {}): Obj => ({
      name: "ferry.transport_sockets.gm",
      typed_config: {
        "@type": GM_TYPE,
        versions: ["TLSv1.3"],
        trusted_ca: { filename: gmsslPki().path("ca.crt") },
        sni: "localhost",
        ...extra,
      },
    });
    const p0 = gmsslPki();
    // Two Ferries: the back one first, so the front one's clusters know its ports.
    const upstream = await startUpstream((req) => new Response(`upstream saw ${req.url.pathname}`));
    const back = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [
          gmListener(p0, "back_a", { session_ticket_keys: { keys: [{ inline_bytes: KEY_A }] } }),
          gmListener(p0, "back_off", { disable_stateless_session_resumption: true }),
          gmListener(p0, "back_tlcp", {}),
        ],
        clusters: [cluster("backend", upstream.port)],
      },
    });
    const backPorts = { a: back.port("back_a"), off: back.port("back_off"), tlcp: back.port("back_tlcp") };
    const oneRequest = {
      typed_extension_protocol_options: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          common_http_protocol_options: { max_requests_per_connection: 1 },
          explicit_http_config: { http_protocol_options: {} },
        },
      },
    };
    const front = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [
          {
            name: "front_a",
            stat_prefix: "front_a",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{ filters: routeTo("gm_a", "front_a") }],
          },
          {
            name: "front_off",
            stat_prefix: "front_off",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{ filters: routeTo("gm_off", "front_off") }],
          },
          {
            name: "front_tlcp",
            stat_prefix: "front_tlcp",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{ filters: routeTo("gm_tlcp", "front_tlcp") }],
          },
        ],
        clusters: [
          cluster("gm_a", backPorts.a, { transport_socket: gmClient(), ...oneRequest }),
          cluster("gm_off", backPorts.off, { transport_socket: gmClient(), ...oneRequest }),
          cluster("gm_tlcp", backPorts.tlcp, {
            transport_socket: gmClient({ versions: ["TLCP"], cipher_suites: ["ECC_SM4_GCM_SM3"] }),
            ...oneRequest,
          }),
        ],
      },
    });
    try {
      for (let i = 0; i < 4; i++) {
        const r = await curl(front.url(`/a/${i}`, "front_a"));
        assertEquals([r.status, r.body], [200, `upstream saw /a/${i}`], r.stderr);
        const o = await curl(front.url(`/off/${i}`, "front_off"));
        assertEquals([o.status, o.body], [200, `upstream saw /off/${i}`], o.stderr);
        const t = await curl(front.url(`/tlcp/${i}`, "front_tlcp"));
        assertEquals([t.status, t.body], [200, `upstream saw /tlcp/${i}`], t.stderr);
      }
      assertEquals(await stat(back, "listener.back_a.ssl.handshake"), 4);
      // The first connection is full; each later one resumes with the ticket the one before it got.
      assertEquals(await stat(back, "listener.back_a.ssl.session_reused"), 3);
      assertEquals(await stat(front, "cluster.gm_a.ssl.session_reused"), 3);
      assertEquals(await stat(back, "listener.back_off.ssl.handshake"), 4);
      assertEquals(await stat(back, "listener.back_off.ssl.session_reused") ?? 0, 0);
      assertEquals(await stat(front, "cluster.gm_off.ssl.session_reused") ?? 0, 0);
      // TLCP: the cluster offers the last session ID it got, the listener's cache resumes it.
      assertEquals(await stat(back, "listener.back_tlcp.ssl.versions.TLCP"), 4);
      assertEquals(await stat(back, "listener.back_tlcp.ssl.session_reused"), 3);
      assertEquals(await stat(front, "cluster.gm_tlcp.ssl.session_reused"), 3);
    } finally {
      await front.stop();
      await back.stop();
      await upstream.close();
    }
  },
});

/** Runs Tongsuo s_client once with a request; returns stdout + stderr. */
async function sClient(port: number, p: GmsslPki, args: string[], path: string): Promise<string> {
  const proc = spawnTongsuo([
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-CAfile",
    p.path("ca.crt"),
    "-verify_return_error",
    "-servername",
    "localhost",
    "-ign_eof",
    ...args,
  ], "piped");
  const w = proc.stdin.getWriter();
  await w.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
  await w.close();
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
  }, 10_000);
  const o = await proc.output();
  clearTimeout(timer);
  return dec.decode(o.stdout) + dec.decode(o.stderr);
}

const TLS13_SM = ["-tls1_3", "-ciphersuites", "TLS_SM4_GCM_SM3", "-groups", "curveSM2", "-sigalgs", "sm2sig_sm3"];
const TLCP = ["-enable_ntls", "-ntls", "-cipher", "ECC-SM2-SM4-GCM-SM3"];

Deno.test({
  name: "TLS 1.3-SM resumption: Tongsuo s_client -sess_in resumes with Ferry's ticket, on listeners sharing the keys",
  ignore: !TONGSUO_BIN,
  ...itOpts,
  fn: () =>
    withFerry(
      (p) => [
        gmListener(p, "a", { session_ticket_keys: { keys: [{ inline_bytes: KEY_A }] } }),
        // Rotated: a new first key, the old one still opens.
        gmListener(p, "a2", { session_ticket_keys: { keys: [{ inline_bytes: KEY_B }, { inline_bytes: KEY_A }] } }),
        gmListener(p, "b", { session_ticket_keys: { keys: [{ inline_bytes: KEY_B }] } }),
      ],
      (port) => [cluster("backend", port)],
      async (ferry, p) => {
        const sess = p.path(`tls13_${crypto.randomUUID()}.pem`);
        const first = await sClient(ferry.port("a"), p, [...TLS13_SM, "-sess_out", sess], "/1");
        assert(first.includes("New, TLSv1.3, Cipher is TLS_SM4_GCM_SM3"), first);
        assert(first.includes("upstream saw /1"), first);
        const again = await sClient(ferry.port("a"), p, [...TLS13_SM, "-sess_in", sess], "/2");
        assert(again.includes("Reused, TLSv1.3, Cipher is TLS_SM4_GCM_SM3"), again);
        assert(again.includes("upstream saw /2"), again);
        const rotated = await sClient(ferry.port("a2"), p, [...TLS13_SM, "-sess_in", sess], "/3");
        assert(rotated.includes("Reused, TLSv1.3"), rotated);
        const other = await sClient(ferry.port("b"), p, [...TLS13_SM, "-sess_in", sess], "/4");
        assert(other.includes("New, TLSv1.3"), other);
        assert(other.includes("upstream saw /4"), other);
        assertEquals(await stat(ferry, "listener.a.ssl.handshake"), 2);
        assertEquals(await stat(ferry, "listener.a.ssl.session_reused"), 1);
        assertEquals(await stat(ferry, "listener.a2.ssl.session_reused"), 1);
        assertEquals(await stat(ferry, "listener.b.ssl.session_reused") ?? 0, 0);
      },
    ),
});

Deno.test({
  name:
    "TLCP resumption: Tongsuo s_client -sess_in resumes by session ID; not with disable_stateful_session_resumption",
  ignore: !TONGSUO_BIN,
  ...itOpts,
  fn: () =>
    withFerry(
      (p) => [
        gmListener(p, "on", {}),
        gmListener(p, "off", { disable_stateful_session_resumption: true }),
      ],
      (port) => [cluster("backend", port)],
      async (ferry, p) => {
        const sess = p.path(`tlcp_${crypto.randomUUID()}.pem`);
        const first = await sClient(ferry.port("on"), p, [...TLCP, "-sess_out", sess], "/on/1");
        assert(first.includes("New, NTLSv1.1"), first);
        assert(first.includes("upstream saw /on/1"), first);
        const again = await sClient(ferry.port("on"), p, [...TLCP, "-sess_in", sess], "/on/2");
        assert(again.includes("Reused, NTLSv1.1"), again);
        assert(again.includes("upstream saw /on/2"), again);
        assertEquals(await stat(ferry, "listener.on.ssl.handshake"), 2);
        assertEquals(await stat(ferry, "listener.on.ssl.session_reused"), 1);
        // Without the cache the server sends an empty session ID: nothing to store, and an offered ID is not resumed.
        const offSess = p.path(`tlcp_off_${crypto.randomUUID()}.pem`);
        const off1 = await sClient(ferry.port("off"), p, [...TLCP, "-sess_out", offSess], "/off/1");
        assert(off1.includes("New, NTLSv1.1") && off1.includes("upstream saw /off/1"), off1);
        const off2 = await sClient(ferry.port("off"), p, [...TLCP, "-sess_in", sess], "/off/2");
        assert(off2.includes("New, NTLSv1.1") && off2.includes("upstream saw /off/2"), off2);
        assertEquals(await stat(ferry, "listener.off.ssl.handshake"), 2);
        assertEquals(await stat(ferry, "listener.off.ssl.session_reused") ?? 0, 0);
      },
    ),
});

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

/** Debian's openssl s_client once against `port`; stdout + stderr. */
async function opensslClient(port: number, p: GmsslPki, args: string[], path: string): Promise<string> {
  const proc = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      p.path("ca_ecdsa.crt"),
      "-verify_return_error",
      "-servername",
      "localhost",
      "-ign_eof",
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = proc.stdin.getWriter();
  await w.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
  await w.close();
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
  }, 10_000);
  const o = await proc.output();
  clearTimeout(timer);
  return dec.decode(o.stdout) + dec.decode(o.stderr);
}

function nativeListener(p: GmsslPki, name: string, extra: Obj): Obj {
  return {
    name,
    stat_prefix: name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
          common_tls_context: { tls_certificates: [pair(p, "server_ecdsa")], ...extra },
          // Checked, then ignored with a warning: rustls keeps its own resumption state.
          session_ticket_keys: { keys: [{ inline_bytes: KEY_A }] },
        },
      },
      filters: routeTo("backend", name),
    }],
  };
}

Deno.test({
  name: "native resumption: rustls resumes TLS 1.3 and 1.2 on both the Deno.listenTls and the node:tls paths",
  ignore: !hasOpenssl,
  ...itOpts,
  fn: () =>
    withFerry(
      (p) => [
        nativeListener(p, "fast", {}),
        // A validation context (client certificates asked for, not required) takes the listener off the
        // Deno.listenTls path onto node:tls per connection.
        nativeListener(p, "node", { validation_context: { trusted_ca: { filename: p.path("ca_ecdsa.crt") } } }),
      ],
      (port) => [cluster("backend", port)],
      async (ferry, p) => {
        const seen: string[] = [];
        for (const name of ["fast", "node"]) {
          for (const v of ["-tls1_3", "-tls1_2"]) {
            const sess = p.path(`native_${name}_${v}_${crypto.randomUUID()}.pem`);
            // Only the handshakes are looked at: on the Deno.listenTls path s_client sees the connection close
            // before the response that Ferry wrote (curl, which keeps the connection open, gets it).
            const first = await opensslClient(ferry.port(name), p, [v, "-sess_out", sess], `/${name}`);
            assert(/New, TLSv1\.[23]/.test(first), first);
            const again = await opensslClient(ferry.port(name), p, [v, "-sess_in", sess], `/${name}`);
            seen.push(`${name} ${v} ${/Reused, TLS/.test(again) ? "reused" : "new"}`);
          }
        }
        assertEquals(seen, [
          "fast -tls1_3 reused",
          "fast -tls1_2 reused",
          "node -tls1_3 reused",
          "node -tls1_2 reused",
        ]);
        // node:tls reports reuse, so the listener counts it; the Deno.listenTls path does not say.
        assertEquals(await stat(ferry, "listener.node.ssl.handshake"), 4);
        assertEquals(await stat(ferry, "listener.node.ssl.session_reused"), 2);
        assertEquals(await stat(ferry, "listener.fast.ssl.handshake"), 4);
        assertEquals(await stat(ferry, "listener.fast.ssl.session_reused") ?? 0, 0);
      },
    ),
});

Deno.test({
  name: "TLS 1.3-SM resumption without configured keys works across --concurrency 2 worker threads",
  ...itOpts,
  async fn() {
    const p = gmsslPki();
    const { ferry, port } = await concurrentFerry(p, {});
    try {
      const ca = parseCertificates(Deno.readTextFileSync(p.path("ca.crt")));
      const cache = new Tls13SessionCache();
      const resumed: boolean[] = [];
      for (let i = 0; i < 10; i++) resumed.push(await tls13SmRequest(port, ca, cache));
      // SO_REUSEPORT spreads the connections over both event loops; each one opens the tickets of the other.
      assertEquals(resumed, [false, ...new Array(9).fill(true)]);
    } finally {
      await ferry.stop();
    }
  },
});

Deno.test({
  name: "TLCP session-ID resumption works across --concurrency 2 event loops (their session caches are shared)",
  ...itOpts,
  async fn() {
    const p = gmsslPki();
    const { ferry, port, adminPort } = await concurrentFerry(p, { versions: ["TLCP"] });
    try {
      const ca = parseCertificates(Deno.readTextFileSync(p.path("ca.crt")));
      let session: TlcpSession | undefined;
      const resumed: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const s = runOverSocket(
          conn,
          (cb) =>
            createTlcpClient(
              { ca, serverName: "localhost", cipherSuites: ["ECC_SM4_GCM_SM3"], ...(session ? { session } : {}) },
              cb,
            ),
        );
        resumed.push((await s.handshake).resumed);
        session = (s.engine as TlcpEngine).session;
        s.engine.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        assert(dec.decode(await s.waitFor(20)).startsWith("HTTP/1.1 200"));
        await s.done;
        // The session goes to the other loop's cache a turn of that loop later; a client is rarely back sooner.
        if (i === 0) await new Promise((r) => setTimeout(r, 50));
      }
      // SO_REUSEPORT spreads the connections over both event loops (checked below; all 12 on one loop would be
      // 1 in 2048); every one resumes the session of the first, whichever loop did the full handshake. With a cache
      // per loop, a client offering the last session it got did full handshakes 3 and 4 times of 11 (two runs).
      assertEquals(resumed, [false, ...new Array(11).fill(true)]);
      // The stats merge both loops': 11 resumed on the listener; each loop accepted some of the 12 connections.
      const r = await fetch(`http://127.0.0.1:${adminPort}/stats?format=json`);
      const j = await r.json() as { stats: { name?: string; value?: number }[] };
      const value = (name: string) => j.stats.find((x) => x.name === name)?.value ?? 0;
      assertEquals(value("listener.edge.ssl.session_reused"), 11);
      const perLoop = [0, 1].map((w) => value(`listener.edge.worker_${w}.downstream_cx_total`));
      assert(perLoop.every((n) => n > 0) && perLoop[0]! + perLoop[1]! === 12, `connections per loop: ${perLoop}`);
    } finally {
      await ferry.stop();
    }
  },
});

/** A Ferry with `--concurrency 2` and one GM listener "edge" (`extra` in its context) answering 200 itself. */
async function concurrentFerry(
  p: GmsslPki,
  extra: Obj,
): Promise<{ ferry: FerryProcess; port: number; adminPort: number }> {
  const port = freePort();
  const adminPort = freePort();
  const cfg = p.path(`concurrency_${crypto.randomUUID()}.json`);
  const listener = gmListener(p, "edge", extra);
  (listener.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  (listener.filter_chains as Obj[])[0]!.filters = [directResponseHcm("edge")];
  Deno.writeTextFileSync(
    cfg,
    JSON.stringify({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
      static_resources: { listeners: [listener] },
    }),
  );
  return {
    ferry: await spawnFerry(["-c", cfg, "--concurrency", "2"], { adminPort, timeoutMs: 30_000 }),
    port,
    adminPort,
  };
}

Deno.test({
  name: "LDS GM listeners with --concurrency 2: TLCP sessions resume on their own listener in every loop, not another",
  ...itOpts,
  async fn() {
    // Two TLCP listeners from LDS, same certificates. The workers parse a pushed listener at the main thread's
    // config path (they used one path for every pushed listener), so each listener's session cache is shared with
    // its own copies in the other loop and with no other listener's.
    const p = gmsslPki();
    const ports = { a: freePort(), b: freePort() };
    const admin = freePort();
    const ads = { ads: {}, resource_api_version: "V3" };
    const lds = Object.entries(ports).map(([name, port]) => {
      const l = gmListener(p, name, {});
      (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
      (l.filter_chains as Obj[])[0]!.filters = [directResponseHcm(name)];
      return l;
    });
    const cp = await startControlPlane({ snapshot: { version: "v1", resources: { lds } } });
    const bootstrap = {
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: admin } } },
      node: { id: "ferry-lds-tlcp", cluster: "test" },
      dynamic_resources: {
        ads_config: {
          api_type: "GRPC",
          transport_api_version: "V3",
          grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
        },
        lds_config: { ...ads, initial_fetch_timeout: "10s" },
      },
      static_resources: { clusters: [cluster("xds", cp.grpcPort)] },
    };
    const ferry = await spawnFerry(["--config-yaml", JSON.stringify(bootstrap), "--concurrency", "2"], {
      adminPort: admin,
      timeoutMs: 30_000,
    });
    try {
      const r = await cp.waitAcked("lds", "v1", { timeoutMs: 15_000 });
      assert("acked" in r, JSON.stringify(r));
      const ca = parseCertificates(Deno.readTextFileSync(p.path("ca.crt")));
      const connect = async (port: number, session: TlcpSession | undefined) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const s = runOverSocket(conn, (cb) =>
          createTlcpClient(
            { ca, serverName: "localhost", cipherSuites: ["ECC_SM4_GCM_SM3"], ...(session ? { session } : {}) },
            cb,
          ));
        const { resumed } = await s.handshake;
        const got = (s.engine as TlcpEngine).session;
        s.engine.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        assert(dec.decode(await s.waitFor(20)).startsWith("HTTP/1.1 200"));
        await s.done;
        return { resumed, session: got };
      };
      let session = (await connect(ports.a, undefined)).session;
      await new Promise((r) => setTimeout(r, 50));
      const onA: boolean[] = [];
      for (let i = 0; i < 10; i++) {
        const c = await connect(ports.a, session);
        onA.push(c.resumed);
        session = c.session;
      }
      assertEquals(onA, new Array(10).fill(true), "listener a resumes its sessions in both loops");
      // Listener b has the same certificates but its own cache: a's session is not resumed there, in any loop.
      const onB: boolean[] = [];
      for (let i = 0; i < 6; i++) onB.push((await connect(ports.b, session)).resumed);
      assertEquals(onB, new Array(6).fill(false), "listener b does not resume listener a's session");
      // TLS 1.3-SM: without session_ticket_keys each listener seals tickets with a key of its own (derived from
      // its config path), the same in every loop; the workers' pushed listeners used to share one.
      const tickets = new Tls13SessionCache();
      const tls13 = (port: number) => tls13SmRequest(port, ca, tickets);
      const tls13OnA = [];
      for (let i = 0; i < 6; i++) tls13OnA.push(await tls13(ports.a));
      assertEquals(tls13OnA, [false, true, true, true, true, true], "listener a resumes its tickets in both loops");
      const tls13OnB = [];
      for (let i = 0; i < 6; i++) tls13OnB.push(await tls13(ports.b));
      // The first offers a's ticket and does a full handshake; it gets one of b's, which the next ones resume.
      assertEquals(tls13OnB, [false, true, true, true, true, true], "listener b opens only its own tickets");
      const s = await (await fetch(`http://127.0.0.1:${admin}/stats?format=json`)).json() as {
        stats: { name?: string; value?: number }[];
      };
      const value = (name: string) => s.stats.find((x) => x.name === name)?.value ?? 0;
      const perLoop = [0, 1].map((w) => value(`listener.a.worker_${w}.downstream_cx_total`));
      assert(perLoop.every((n) => n > 0), `listener a's connections per loop: ${perLoop}`);
    } finally {
      await ferry.stop();
      await cp.kill();
    }
  },
});

/**
 * One TLS 1.3-SM connection with Ferry's client (offering a ticket from `cache`, keeping the ones it gets: they come
 * before the response) and one request answered 200; whether it resumed.
 */
async function tls13SmRequest(port: number, ca: Certificate[], cache: Tls13SessionCache): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const s = runOverSocket(conn, (cb) =>
    createTls13Client({
      serverName: "localhost",
      trustedCertificates: ca,
      cipherSuites: ["TLS_SM4_GCM_SM3"],
      groups: ["curveSM2"],
      signatureSchemes: ["sm2sig_sm3"],
      sessionCache: cache,
    }, cb));
  const { resumed } = await s.handshake;
  s.engine.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  assert(dec.decode(await s.waitFor(20)).startsWith("HTTP/1.1 200"));
  await s.done;
  return resumed;
}
