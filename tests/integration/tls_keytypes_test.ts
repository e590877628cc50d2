/**
 * Standard TLS with every key type rustls takes (RSA-2048, RSA-4096, ECDSA P-256 and P-384, Ed25519), over real
 * sockets against real peers: curl against Ferry listeners (the `Deno.listenTls` fast path and the `node:tls`
 * path), client certificates of each type checked against `trusted_ca`, SNI choosing between chains with
 * different key types, and Ferry originating TLS to `openssl s_server` upstreams (trusted_ca, a wrong CA, a
 * client certificate the upstream requires). Certificates are made by `openssl` at test time.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { generateOpensslPki, KEY_TYPE_NAMES, KEY_TYPES, type KeyType } from "../../lib/tls/testdata/openssl_pki.ts";
import { curl, itOpts, startFerry, stat } from "./_harness.ts";

const pki = await generateOpensslPki();
const f = pki.path;
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(pki.dir, { recursive: true });
  } catch { /* already gone */ }
});

type Obj = Record<string, unknown>;

const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const INSPECTOR = {
  name: "envoy.filters.listener.tls_inspector",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
};

/** A DownstreamTlsContext serving the named certificates (`server_<t>` files). */
function tlsSocket(certs: readonly string[], extra: Obj = {}, common: Obj = {}): Obj {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": DOWNSTREAM,
      common_tls_context: {
        alpn_protocols: ["http/1.1"],
        tls_certificates: certs.map((c) => ({
          certificate_chain: { filename: f(`${c}.crt`) },
          private_key: { filename: f(`${c}.key`) },
        })),
        ...common,
      },
      ...extra,
    },
  };
}

/** An HCM answering `body`, or routing by prefix to clusters. */
function hcm(body: string, routes?: Obj[]): Obj[] {
  return [{
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: body,
      route_config: {
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: routes ??
            [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }],
        }],
      },
      http_filters: [{
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  }];
}

function listener(name: string, body: Obj): Obj {
  return {
    name,
    stat_prefix: name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    ...body,
  };
}

function bootstrap(listeners: Obj[], clusters: Obj[] = []): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: { listeners, clusters },
  };
}

/** curl to `https://<host>:<port>/` resolved to loopback, trusting `ca` (a file name in the PKI). */
function tlsCurl(port: number, ca: string, args: string[] = [], host = "localhost") {
  return curl(`https://${host}:${port}/`, ["--cacert", f(ca), "--resolve", `${host}:${port}:127.0.0.1`, ...args]);
}

/** The leaf subject curl printed with `-v`. */
function servedSubject(stderr: string): string | undefined {
  return /^\*\s+subject: (.*)$/m.exec(stderr)?.[1];
}

for (const t of KEY_TYPES) {
  Deno.test(
    `native listener serves curl with a ${KEY_TYPE_NAMES[t]} certificate (Deno.listenTls and node:tls paths)`,
    itOpts,
    async () => {
      const ferry = await startFerry(bootstrap([
        // One chain, no listener filter: Ferry binds with Deno.listenTls.
        listener("fast", { filter_chains: [{ transport_socket: tlsSocket([`server_${t}`]), filters: hcm("fast") }] }),
        // tls_inspector peeks the ClientHello: node:tls runs the handshake over the accepted connection.
        listener("peeked", {
          listener_filters: [INSPECTOR],
          filter_chains: [{ transport_socket: tlsSocket([`server_${t}`]), filters: hcm("peeked") }],
        }),
      ]));
      try {
        for (const name of ["fast", "peeked"]) {
          const port = ferry.port(name);
          const r13 = await tlsCurl(port, `ca_${t}.crt`, ["-v", "--tlsv1.3"]);
          assertEquals([r13.status, r13.body], [200, name], r13.stderr);
          assertEquals(servedSubject(r13.stderr), `O=Ferry Test; CN=server ${t}`);
          assertMatch(r13.stderr, /SSL connection using TLSv1\.3/);
          const r12 = await tlsCurl(port, `ca_${t}.crt`, ["-v", "--tls-max", "1.2"]);
          assertEquals([r12.status, r12.body], [200, name], r12.stderr);
          // TLS 1.2 names the certificate's signature kind in the suite (EdDSA certificates use ECDHE-ECDSA).
          assertMatch(r12.stderr, t.startsWith("rsa") ? /TLSv1\.2 \/ ECDHE-RSA-/ : /TLSv1\.2 \/ ECDHE-ECDSA-/);
          assertEquals(await stat(ferry, `listener.${name}.ssl.handshake`), 2);
        }
        // The same root does not vouch for another type's server: curl refuses it.
        const other: KeyType = t === "p384" ? "ed25519" : "p384";
        const wrong = await tlsCurl(ferry.port("fast"), `ca_${other}.crt`);
        assert(wrong.code !== 0, "curl must reject a server certificate its CA did not issue");
      } finally {
        await ferry.stop();
      }
    },
  );
}

Deno.test(
  "native listener verifies RSA-2048, RSA-4096, P-256, P-384 and Ed25519 client certificates against trusted_ca",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap([
      listener("mtls", {
        filter_chains: [{
          transport_socket: tlsSocket(["server_rsa2048"], { require_client_certificate: true }, {
            validation_context: {
              trusted_ca: { filename: f("cas.crt") },
              // The SAN of every client certificate is read, whatever its key type.
              match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { prefix: "client-" } }],
            },
          }),
          filters: hcm("mtls"),
        }],
      }),
      // Only the Ed25519 root: other types' client certificates are strangers here.
      listener("ed_only", {
        filter_chains: [{
          transport_socket: tlsSocket(["server_p384"], { require_client_certificate: true }, {
            validation_context: { trusted_ca: { filename: f("ca_ed25519.crt") } },
          }),
          filters: hcm("ed_only"),
        }],
      }),
    ]));
    try {
      const port = ferry.port("mtls");
      for (const t of KEY_TYPES) {
        const r = await tlsCurl(port, "ca_rsa2048.crt", [
          "--cert",
          f(`client_${t}.crt`),
          "--key",
          f(`client_${t}.key`),
        ]);
        assertEquals([r.status, r.body], [200, "mtls"], `${t}: ${r.stderr}`);
      }
      // An RSA client certificate under a CA nobody trusts, and no certificate at all.
      const stranger = await tlsCurl(port, "ca_rsa2048.crt", ["--cert", f("stranger.crt"), "--key", f("stranger.key")]);
      assert(stranger.status !== 200, "a client certificate from an untrusted CA must fail");
      const none = await tlsCurl(port, "ca_rsa2048.crt");
      assert(none.status !== 200, "no client certificate must fail");
      assertEquals(await stat(ferry, "listener.mtls.ssl.handshake"), KEY_TYPES.length);
      assertEquals(await stat(ferry, "listener.mtls.ssl.fail_verify_error"), 1);
      assertEquals(await stat(ferry, "listener.mtls.ssl.fail_verify_no_cert"), 1);

      const ed = ferry.port("ed_only");
      const edOk = await tlsCurl(ed, "ca_p384.crt", [
        "--cert",
        f("client_ed25519.crt"),
        "--key",
        f("client_ed25519.key"),
      ]);
      assertEquals([edOk.status, edOk.body], [200, "ed_only"], edOk.stderr);
      for (const t of ["rsa4096", "p384"] as const) {
        const r = await tlsCurl(ed, "ca_p384.crt", ["--cert", f(`client_${t}.crt`), "--key", f(`client_${t}.key`)]);
        assert(r.status !== 200, `a ${t} client certificate must fail where only the Ed25519 root is trusted`);
      }
      assertEquals(await stat(ferry, "listener.ed_only.ssl.fail_verify_error"), 2);
    } finally {
      await ferry.stop();
    }
  },
);

Deno.test(
  "SNI selects between filter chains with RSA and P-384 certificates, and between RSA and Ed25519 in one chain",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap([
      listener("chains", {
        listener_filters: [INSPECTOR],
        filter_chains: [
          {
            filter_chain_match: { server_names: ["rsa2048.example.com"] },
            transport_socket: tlsSocket(["server_rsa2048"]),
            filters: hcm("chain_rsa"),
          },
          {
            filter_chain_match: { server_names: ["p384.example.com"] },
            transport_socket: tlsSocket(["server_p384"]),
            filters: hcm("chain_p384"),
          },
        ],
      }),
      // One chain with two certificates, chosen by the names in each certificate: node:tls (peeked) and
      // Deno.listenTls (the runtime's SNI resolver).
      listener("certs_peeked", {
        listener_filters: [INSPECTOR],
        filter_chains: [{ transport_socket: tlsSocket(["server_rsa4096", "server_ed25519"]), filters: hcm("two") }],
      }),
      listener("certs_fast", {
        filter_chains: [{ transport_socket: tlsSocket(["server_rsa4096", "server_ed25519"]), filters: hcm("two") }],
      }),
    ]));
    try {
      const chains = ferry.port("chains");
      const rsa = await tlsCurl(chains, "cas.crt", ["-v"], "rsa2048.example.com");
      assertEquals([rsa.status, rsa.body], [200, "chain_rsa"], rsa.stderr);
      assertEquals(servedSubject(rsa.stderr), "O=Ferry Test; CN=server rsa2048");
      const ec = await tlsCurl(chains, "cas.crt", ["-v"], "p384.example.com");
      assertEquals([ec.status, ec.body], [200, "chain_p384"], ec.stderr);
      assertEquals(servedSubject(ec.stderr), "O=Ferry Test; CN=server p384");
      for (const name of ["certs_peeked", "certs_fast"]) {
        const port = ferry.port(name);
        const ed = await tlsCurl(port, "cas.crt", ["-v"], "ed25519.example.com");
        assertEquals([ed.status, ed.body], [200, "two"], ed.stderr);
        assertEquals(servedSubject(ed.stderr), "O=Ferry Test; CN=server ed25519", name);
        const r = await tlsCurl(port, "cas.crt", ["-v"], "rsa4096.example.com");
        assertEquals(servedSubject(r.stderr), "O=Ferry Test; CN=server rsa4096", name);
        // No match: the first certificate, as Envoy does.
        const first = await tlsCurl(port, "cas.crt", ["-v"], "localhost");
        assertEquals(servedSubject(first.stderr), "O=Ferry Test; CN=server rsa4096", name);
      }
    } finally {
      await ferry.stop();
    }
  },
);

/** An `openssl s_server -www` upstream (OpenSSL's TLS stack, not ours); `args` adds e.g. client-certificate checks. */
async function startSServer(cert: string, args: string[] = []): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command("openssl", {
    args: ["s_server", "-accept", "127.0.0.1:0", "-cert", f(`${cert}.crt`), "-key", f(`${cert}.key`), "-www", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let port: number | undefined;
  const timer = setTimeout(() => child.kill(), 10_000);
  while (port === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`openssl s_server did not start: ${seen}`);
    seen += value;
    const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(seen);
    if (m) port = Number(m[1]);
  }
  clearTimeout(timer);
  // Keep draining its output so it never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return {
    port,
    async stop() {
      try {
        child.kill();
      } catch { /* exited */ }
      await child.status;
    },
  };
}

function tlsCluster(name: string, port: number, tls: Obj): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "2s",
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: { "@type": UPSTREAM, sni: "localhost", ...tls },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

function edgeFor(clusters: Obj[]): Obj {
  return bootstrap([
    listener("edge", {
      filter_chains: [{
        filters: hcm("edge", clusters.map((c) => ({ match: { prefix: `/${c.name}` }, route: { cluster: c.name } }))),
      }],
    }),
  ], clusters);
}

Deno.test(
  "cluster originates TLS to RSA-2048, P-384 and Ed25519 upstreams verified by trusted_ca; a wrong CA fails",
  itOpts,
  async () => {
    const servers = await Promise.all(
      (["rsa2048", "p384", "ed25519"] as const).map(async (t) => ({ t, s: await startSServer(`server_${t}`) })),
    );
    try {
      const clusters = servers.map(({ t, s }) =>
        tlsCluster(`up_${t}`, s.port, {
          common_tls_context: { validation_context: { trusted_ca: { filename: f(`ca_${t}.crt`) } } },
        })
      );
      // The RSA upstream checked against the P-384 root, the Ed25519 one against the RSA root.
      clusters.push(tlsCluster("wrong_rsa", servers[0]!.s.port, {
        common_tls_context: { validation_context: { trusted_ca: { filename: f("ca_p384.crt") } } },
      }));
      clusters.push(tlsCluster("wrong_ed", servers[2]!.s.port, {
        common_tls_context: { validation_context: { trusted_ca: { filename: f("ca_rsa2048.crt") } } },
      }));
      const ferry = await startFerry(edgeFor(clusters));
      try {
        for (const { t } of servers) {
          const r = await curl(ferry.url(`/up_${t}`, "edge"));
          assertEquals(r.status, 200, `${t}: ${r.stderr} ${r.body}`);
          // s_server -www answers with the session it negotiated.
          assertMatch(r.body, /New, TLSv1\.3, Cipher is TLS_/);
          assertEquals(await stat(ferry, `cluster.up_${t}.ssl.handshake`), 1);
        }
        for (const name of ["wrong_rsa", "wrong_ed"]) {
          const bad = await curl(ferry.url(`/${name}`, "edge"));
          assertEquals(bad.status, 503, name);
          assertEquals(await stat(ferry, `cluster.${name}.ssl.handshake`) ?? 0, 0, name);
          assert((await stat(ferry, `cluster.${name}.ssl.connection_error`))! >= 1, name);
        }
      } finally {
        await ferry.stop();
      }
    } finally {
      await Promise.all(servers.map(({ s }) => s.stop()));
    }
  },
);

Deno.test(
  "cluster presents RSA-4096, P-384 and Ed25519 client certificates to an upstream that requires one",
  itOpts,
  async () => {
    // The upstream (RSA-2048) demands a client certificate under one of the test roots.
    const server = await startSServer("server_rsa2048", [
      "-Verify",
      "1",
      "-verify_return_error",
      "-CAfile",
      f("cas.crt"),
    ]);
    try {
      const validation = { validation_context: { trusted_ca: { filename: f("ca_rsa2048.crt") } } };
      const withCert = (t: KeyType) =>
        tlsCluster(`client_${t}`, server.port, {
          common_tls_context: {
            ...validation,
            tls_certificates: [{
              certificate_chain: { filename: f(`client_${t}.crt`) },
              private_key: { filename: f(`client_${t}.key`) },
            }],
          },
        });
      const clusters = [withCert("rsa4096"), withCert("p384"), withCert("ed25519")];
      clusters.push(tlsCluster("no_cert", server.port, { common_tls_context: validation }));
      const ferry = await startFerry(edgeFor(clusters));
      try {
        for (const t of ["rsa4096", "p384", "ed25519"] as const) {
          const r = await curl(ferry.url(`/client_${t}`, "edge"));
          assertEquals(r.status, 200, `${t}: ${r.stderr} ${r.body}`);
          // The upstream prints the client certificate it verified.
          assertMatch(r.body, new RegExp(`Subject: O ?= ?Ferry Test, CN ?= ?client ${t}`));
        }
        const none = await curl(ferry.url("/no_cert", "edge"));
        assertEquals(none.status, 503, none.body);
      } finally {
        await ferry.stop();
      }
    } finally {
      await server.stop();
    }
  },
);
