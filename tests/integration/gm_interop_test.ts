/**
 * GM TLS interop through a running Ferry, against independent implementations, both directions, all six suites:
 *
 * - **peer client → Ferry**: Tongsuo `s_client` (`-enable_ntls -ntls` for TLCP, `-tls1_3` for RFC 8998) and GmSSL 3
 *   `tlcp_client` / `tls13_client` send an HTTP request to Ferry's mixed port (tls_inspector; a `gm` chain beside a
 *   standard-TLS chain) and get the plain-HTTP upstream's answer back;
 * - **Ferry → peer server**: curl sends plain HTTP to Ferry, whose cluster speaks GM TLS to Tongsuo `s_server -www`
 *   or GmSSL `tlcp_server -www` / `tls13_server -www`, and the peer's page comes back through Ferry.
 *
 * Each suite runs without client certificates and with them (the ECDHE suites always carry the client's double
 * certificates: their key exchange needs them); "with" means the server requires and verifies them. Tongsuo tests
 * are skipped unless `TONGSUO_BIN` points at Tongsuo's `tongsuo`/`openssl` binary (`TONGSUO_LIB` for its library
 * directory if needed), GmSSL tests unless `GMSSL_BIN` points at `gmssl`. The config tests at the end always run.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { parseBootstrap } from "../../lib/config/bootstrap.ts";
import { createRegistries } from "../../lib/server/registries.ts";
import {
  GMSSL_BIN,
  GMSSL_KEY_PASS,
  type GmsslPki,
  gmsslPki,
  spawnGmssl,
  waitForListen,
} from "../../lib/tls/engine/tlcp/_gmssl_util.ts";
import { curl, itOpts, startFerry, startUpstream, stat, type TestFerry } from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";
import { spawnTongsuo, TONGSUO_BIN, TONGSUO_TLCP_NAMES, tongsuoNtlsCertArgs } from "./_peers.ts";

const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const dec = new TextDecoder();

type Obj = Record<string, unknown>;
type Suite =
  | "TLS_SM4_GCM_SM3"
  | "TLS_SM4_CCM_SM3"
  | "ECC_SM4_CBC_SM3"
  | "ECC_SM4_GCM_SM3"
  | "ECDHE_SM4_CBC_SM3"
  | "ECDHE_SM4_GCM_SM3";
const SUITES: Suite[] = [
  "TLS_SM4_GCM_SM3",
  "TLS_SM4_CCM_SM3",
  "ECC_SM4_CBC_SM3",
  "ECC_SM4_GCM_SM3",
  "ECDHE_SM4_CBC_SM3",
  "ECDHE_SM4_GCM_SM3",
];
const isTls13 = (s: Suite) => s.startsWith("TLS_");
const isEcdhe = (s: Suite) => s.startsWith("ECDHE_");
/** Client-certificate variants a suite allows. */
const certModes = (s: Suite) => isEcdhe(s) ? [true] : [false, true];
const label = (s: Suite, cert: boolean) => `${s} ${cert ? "with" : "without"} client certificates`;

function pair(p: GmsslPki, name: string): Obj {
  return { certificate_chain: { filename: p.path(`${name}.crt`) }, private_key: { filename: p.path(`${name}.key`) } };
}

function routeTo(cluster: string): Obj[] {
  return [{
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: "interop",
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

function cluster(name: string, port: number, transportSocket?: Obj): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "3s",
    ...(transportSocket ? { transport_socket: transportSocket } : {}),
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

function bootstrap(listener: Obj, clusters: Obj[]): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{ name: "edge", address: { socket_address: { address: "127.0.0.1", port_value: 0 } }, ...listener }],
      clusters,
    },
  };
}

/**
 * Ferry with a mixed port (tls_inspector; the `gm` chain with TLCP and TLS 1.3-SM, all six suites; a standard TLS
 * chain) in front of a plain HTTP upstream. `clientCert`: the gm chain requires and verifies client certificates.
 */
function mixedPortFerry(p: GmsslPki, upstreamPort: number, clientCert: boolean): Promise<TestFerry> {
  return startFerry(bootstrap({
    stat_prefix: "edge",
    listener_filters: [{
      name: "envoy.filters.listener.tls_inspector",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
    }],
    filter_chains: [
      {
        name: "gm",
        filter_chain_match: { transport_protocol: "tls" },
        transport_socket: {
          name: "ferry.transport_sockets.gm",
          typed_config: {
            "@type": GM_TYPE,
            versions: ["TLSv1.3", "TLCP"],
            certificate: pair(p, "server"),
            sign_certificate: pair(p, "server_sign"),
            enc_certificate: pair(p, "server_enc"),
            cipher_suites: SUITES,
            ...(clientCert ? { trusted_ca: { filename: p.path("ca.crt") }, require_client_certificate: true } : {}),
          },
        },
        filters: routeTo("backend"),
      },
      {
        name: "standard",
        filter_chain_match: { transport_protocol: "tls" },
        transport_socket: {
          name: "envoy.transport_sockets.tls",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            common_tls_context: {
              tls_certificates: [{
                certificate_chain: { filename: p.path("server_ecdsa.crt") },
                private_key: { filename: p.path("server_ecdsa.key") },
              }],
            },
          },
        },
        filters: routeTo("backend"),
      },
    ],
  }, [cluster("backend", upstreamPort)]));
}

/** Runs a peer client to completion (killed after `ms`); stdout + stderr. */
async function finish(proc: Deno.ChildProcess, ms = 10_000): Promise<{ out: string; code: number }> {
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
  }, ms);
  const o = await proc.output();
  clearTimeout(timer);
  return { out: dec.decode(o.stdout) + dec.decode(o.stderr), code: o.code };
}

/** Tongsuo's name for a suite (TLS 1.3 suites keep theirs). */
const tongsuoCipher = (s: Suite) => isTls13(s) ? s : TONGSUO_TLCP_NAMES[s as keyof typeof TONGSUO_TLCP_NAMES];

/** Tongsuo's arguments for a suite (both s_client and s_server take them). */
function tongsuoSuiteArgs(suite: Suite): string[] {
  return isTls13(suite)
    ? ["-tls1_3", "-ciphersuites", suite, "-groups", "curveSM2", "-sigalgs", "sm2sig_sm3"]
    : ["-enable_ntls", "-cipher", tongsuoCipher(suite)];
}

/** Tongsuo's certificate arguments for `who` in a suite. */
function tongsuoCertArgs(p: GmsslPki, suite: Suite, who: "server" | "client"): string[] {
  if (isTls13(suite)) return ["-cert", p.path(`${who}.crt`), "-key", p.path(`${who}.key`)];
  return tongsuoNtlsCertArgs(p.path, who);
}

/** The request a peer client sends through Ferry, and what the upstream answers. */
function request(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
}

async function peerClientThroughFerry(
  suite: Suite,
  clientCert: boolean,
  run: (p: GmsslPki, port: number, path: string) => Promise<{ out: string; code: number }>,
): Promise<void> {
  const p = gmsslPki();
  const upstream = await startUpstream((req) => new Response(`upstream saw ${req.url.pathname}`));
  const ferry = await mixedPortFerry(p, upstream.port, clientCert);
  try {
    const path = `/interop/${suite}/${clientCert ? "mtls" : "tls"}`;
    const r = await run(p, ferry.port(), path);
    assert(r.out.includes("HTTP/1.1 200"), r.out);
    assert(r.out.includes(`upstream saw ${path}`), r.out);
    assertEquals(upstream.requests.map((q) => q.url.pathname), [path]);
    assertEquals(await stat(ferry, `listener.edge.ssl.ciphers.${suite}`), 1);
    assertEquals(await stat(ferry, `listener.edge.ssl.versions.${isTls13(suite) ? "TLSv1.3" : "TLCP"}`), 1);
    // The peer's certificate reached Ferry exactly when one was asked for (ECDHE: always).
    assertEquals(await stat(ferry, "listener.edge.ssl.no_certificate") ?? 0, clientCert ? 0 : 1);
    // The standard chain on the same port still serves plain TLS.
    const std = await curl(`https://localhost:${ferry.port()}/std`, [
      "--cacert",
      p.path("ca_ecdsa.crt"),
      "--resolve",
      `localhost:${ferry.port()}:127.0.0.1`,
    ]);
    assertEquals(std.status, 200, std.stderr);
    assertEquals(std.body, "upstream saw /std");
  } finally {
    await ferry.stop();
    await upstream.close();
  }
}

// ---- peer clients → Ferry ----

for (const suite of SUITES) {
  for (const clientCert of certModes(suite)) {
    Deno.test({
      name: `GM interop: Tongsuo s_client → Ferry ${label(suite, clientCert)}`,
      ignore: !TONGSUO_BIN,
      ...itOpts,
      fn: () =>
        peerClientThroughFerry(suite, clientCert, async (p, port, path) => {
          const args = ["s_client", "-connect", `127.0.0.1:${port}`, ...tongsuoSuiteArgs(suite)];
          if (!isTls13(suite)) args.push("-ntls");
          args.push("-CAfile", p.path("ca.crt"), "-verify_return_error", "-verify_hostname", "localhost");
          args.push("-servername", "localhost", "-quiet", "-ign_eof");
          if (clientCert) args.push(...tongsuoCertArgs(p, suite, "client"));
          const proc = spawnTongsuo(args, "piped");
          const w = proc.stdin.getWriter();
          await w.write(new TextEncoder().encode(request(path)));
          await w.close();
          return await finish(proc);
        }),
    });
    Deno.test({
      name: `GM interop: GmSSL ${isTls13(suite) ? "tls13" : "tlcp"}_client → Ferry ${label(suite, clientCert)}`,
      ignore: !GMSSL_BIN,
      ...itOpts,
      fn: () =>
        peerClientThroughFerry(suite, clientCert, async (p, port, path) => {
          const input = p.path(`req_${suite}_${clientCert}.txt`);
          Deno.writeTextFileSync(input, request(path));
          const args = [isTls13(suite) ? "tls13_client" : "tlcp_client", "-host", "127.0.0.1", "-port", String(port)];
          args.push("-server_name", "localhost", "-cacert", p.path("ca.crt"), "-in", input);
          if (isTls13(suite)) {
            args.push("-cipher_suite", suite, "-supported_group", "sm2p256v1", "-sig_alg", "sm2sig_sm3");
            if (clientCert) {
              args.push("-cert", p.path("gmssl_tls13_client_chain.pem"), "-key", p.path("gmssl_tls13_client_key.pem"));
            }
          } else {
            args.push("-cipher_suite", `TLS_${suite}`);
            // GmSSL's client loads the double chain for ECDHE, the signing certificate alone for ECC suites.
            if (isEcdhe(suite)) {
              args.push("-cert", p.path("gmssl_tlcp_client_chain.pem"), "-key", p.path("gmssl_tlcp_client_keys.pem"));
            } else if (clientCert) {
              args.push("-cert", p.path("gmssl_tlcp_client_sign.pem"));
              args.push("-key", p.path("gmssl_tlcp_client_sign_key.pem"));
            }
          }
          if (clientCert) args.push("-pass", GMSSL_KEY_PASS);
          return await finish(spawnGmssl(args));
        }),
    });
  }
}

// ---- Ferry → peer servers ----

/** Ferry's GM client config for a suite: verifies the peer (localhost), presents certificates if asked. */
function gmClientSocket(p: GmsslPki, suite: Suite, clientCert: boolean, extra: Obj = {}): Obj {
  const certs = !clientCert && !isEcdhe(suite)
    ? {}
    : isTls13(suite)
    ? { certificate: pair(p, "client") }
    : { sign_certificate: pair(p, "client_sign"), enc_certificate: pair(p, "client_enc") };
  return {
    name: "ferry.transport_sockets.gm",
    typed_config: {
      "@type": GM_TYPE,
      versions: [isTls13(suite) ? "TLSv1.3" : "TLCP"],
      cipher_suites: [suite],
      trusted_ca: { filename: p.path("ca.crt") },
      sni: "localhost",
      ...certs,
      ...extra,
    },
  };
}

/**
 * curl → Ferry (plain HTTP) → cluster `peer` (GM TLS, `socket`) → the peer server on `peerPort`. Returns curl's
 * result and the cluster's ssl stats (handshakes, handshakes with `suite`, connection errors).
 */
async function throughFerryToPeer(socket: Obj, peerPort: number, path: string, suite: Suite) {
  const ferry = await startFerry(bootstrap({ filter_chains: [{ filters: routeTo("peer") }] }, [
    cluster("peer", peerPort, socket),
  ]));
  try {
    const r = await curl(`http://127.0.0.1:${ferry.port()}${path}`);
    return {
      ...r,
      handshakes: await stat(ferry, "cluster.peer.ssl.handshake") ?? 0,
      ciphers: await stat(ferry, `cluster.peer.ssl.ciphers.${suite}`) ?? 0,
      errors: await stat(ferry, "cluster.peer.ssl.connection_error") ?? 0,
    };
  } finally {
    await ferry.stop();
  }
}

/** Starts a peer server on a free port, waits until it listens; `stop` ends it and returns its output. */
async function peerServer(spawn: (port: number) => Deno.ChildProcess) {
  const port = freePort();
  const proc = spawn(port);
  const output = proc.output();
  try {
    await waitForListen(port);
  } catch (e) {
    const o = await output;
    throw new Error(`${e}: ${dec.decode(o.stdout)}${dec.decode(o.stderr)}`);
  }
  return {
    port,
    stop: async () => {
      try {
        proc.kill("SIGTERM");
      } catch { /* exited */ }
      const o = await output;
      return dec.decode(o.stdout) + dec.decode(o.stderr);
    },
  };
}

for (const suite of SUITES) {
  for (const clientCert of certModes(suite)) {
    Deno.test({
      name: `GM interop: Ferry → Tongsuo s_server ${label(suite, clientCert)}`,
      ignore: !TONGSUO_BIN,
      ...itOpts,
      fn: async () => {
        const p = gmsslPki();
        const server = await peerServer((port) => {
          const args = ["s_server", "-accept", `127.0.0.1:${port}`, ...tongsuoSuiteArgs(suite)];
          args.push(...tongsuoCertArgs(p, suite, "server"), "-www");
          // -Verify: a client certificate is required and verified against the CA.
          if (clientCert) args.push("-Verify", "2", "-CAfile", p.path("ca.crt"), "-verify_return_error");
          return spawnTongsuo(args, "null");
        });
        let log = "";
        try {
          const r = await throughFerryToPeer(gmClientSocket(p, suite, clientCert), server.port, "/to-tongsuo", suite);
          log = await server.stop();
          assertEquals(r.status, 200, `${r.stderr}\n${r.body}\n${log}`);
          // s_server -www describes the session it served.
          assert(r.body.includes(`Cipher is ${tongsuoCipher(suite)}`), r.body);
          assert(r.body.includes(isTls13(suite) ? "TLSv1.3" : "NTLS"), r.body);
          assertEquals([r.handshakes, r.ciphers, r.errors], [1, 1, 0]);
        } finally {
          await server.stop();
        }
      },
    });
    Deno.test({
      name: `GM interop: Ferry → GmSSL ${isTls13(suite) ? "tls13" : "tlcp"}_server ${label(suite, clientCert)}`,
      ignore: !GMSSL_BIN,
      ...itOpts,
      fn: async () => {
        const p = gmsslPki();
        const server = await peerServer((port) => {
          const args = isTls13(suite)
            ? ["tls13_server", "-port", String(port), "-cert", p.path("gmssl_tls13_server_chain.pem")]
            : ["tlcp_server", "-port", String(port), "-cert", p.path("gmssl_tlcp_server_chain.pem")];
          args.push("-key", p.path(isTls13(suite) ? "gmssl_tls13_server_key.pem" : "gmssl_tlcp_server_keys.pem"));
          args.push("-pass", GMSSL_KEY_PASS, "-www");
          if (isTls13(suite)) {
            args.push("-cipher_suite", suite, "-supported_group", "sm2p256v1", "-sig_alg", "sm2sig_sm3");
          } else {
            args.push("-cipher_suite", `TLS_${suite}`);
          }
          if (clientCert) args.push("-cert_request", "-cacert", p.path("ca.crt"));
          return spawnGmssl(args);
        });
        const path = `/to-gmssl/${suite}`;
        const socket = gmClientSocket(p, suite, clientCert, isTls13(suite) ? {} : { tlcp_peer_profile: "GMSSL" });
        let log = "";
        try {
          const r = await throughFerryToPeer(socket, server.port, path, suite);
          log = await server.stop();
          assertEquals(r.status, 200, `${r.stderr}\n${r.body}\n${log}`);
          // -www echoes the request it got as text.
          assert(r.body.includes(`GET ${path} HTTP/1.1`), r.body);
          assertEquals([r.handshakes, r.ciphers, r.errors], [1, 1, 0]);
        } finally {
          await server.stop();
        }
      },
    });
  }
}

// The profile is what makes GmSSL's TLCP server answer: with Tongsuo's (the default), GmSSL refuses the ECDHE
// ClientKeyExchange and the ECC client certificates.
for (const suite of ["ECDHE_SM4_GCM_SM3", "ECC_SM4_GCM_SM3"] as const) {
  Deno.test({
    name: `GM interop: Ferry → GmSSL tlcp_server ${label(suite, true)} fails with tlcp_peer_profile STANDARD`,
    ignore: !GMSSL_BIN,
    ...itOpts,
    fn: async () => {
      const p = gmsslPki();
      const server = await peerServer((port) =>
        spawnGmssl([
          "tlcp_server",
          "-port",
          String(port),
          "-cert",
          p.path("gmssl_tlcp_server_chain.pem"),
          "-key",
          p.path("gmssl_tlcp_server_keys.pem"),
          "-pass",
          GMSSL_KEY_PASS,
          "-www",
          "-cipher_suite",
          `TLS_${suite}`,
          "-cert_request",
          "-cacert",
          p.path("ca.crt"),
        ])
      );
      try {
        const socket = gmClientSocket(p, suite, true, { tlcp_peer_profile: "STANDARD" });
        const r = await throughFerryToPeer(socket, server.port, "/standard-profile", suite);
        assertEquals(r.status, 503, r.body);
        assertEquals([r.handshakes, r.errors], [0, 1]);
      } finally {
        await server.stop();
      }
    },
  });
}

// ---- config: tlcp_peer_profile ----

function parseGmCluster(typed: Obj): unknown {
  const raw = {
    static_resources: {
      clusters: [cluster("c", 1, { name: "ferry.transport_sockets.gm", typed_config: { "@type": GM_TYPE, ...typed } })],
    },
  };
  return parseBootstrap(raw, createRegistries());
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("no config error");
}

Deno.test("GM config: tlcp_peer_profile is STANDARD or GMSSL, on clusters only", () => {
  parseGmCluster({ versions: ["TLCP"], tlcp_peer_profile: "GMSSL" });
  parseGmCluster({ versions: ["TLCP"], tlcp_peer_profile: "STANDARD", tlcp_client_key_exchange: "LENGTH_PREFIXED" });
  const at = "static_resources.clusters[0].transport_socket.typed_config.tlcp_peer_profile";
  const bad = configError(() => parseGmCluster({ tlcp_peer_profile: "TONGSUO" }));
  assert(bad.includes(at) && bad.includes("is not one of STANDARD, GMSSL"), bad);
  const wrongType = configError(() => parseGmCluster({ tlcp_peer_profile: 1 }));
  assert(wrongType.includes(at), wrongType);
  const p = gmsslPki();
  const onServer = configError(() =>
    parseBootstrap({
      static_resources: {
        listeners: [{
          name: "l",
          address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
          filter_chains: [{
            transport_socket: {
              name: "ferry.transport_sockets.gm",
              typed_config: {
                "@type": GM_TYPE,
                versions: ["TLCP"],
                sign_certificate: pair(p, "server_sign"),
                enc_certificate: pair(p, "server_enc"),
                tlcp_peer_profile: "GMSSL",
              },
            },
            filters: routeTo("c"),
          }],
        }],
        clusters: [cluster("c", 1)],
      },
    }, createRegistries())
  );
  assert(
    onServer.includes("static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.tlcp_peer_profile"),
    onServer,
  );
  assert(onServer.includes("applies to clients only"), onServer);
});
