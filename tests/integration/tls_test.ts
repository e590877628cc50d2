/**
 * TLS on listeners and clusters over real sockets: curl and openssl s_client against the native provider, SNI
 * certificate selection and chain matching, client certificates, the tls_inspector on a mixed port, bad input,
 * upstream TLS, and the ssl.* stats and access-log fields.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";

function assertStringIncludes(actual: string, part: string, msg?: string): void {
  assert(
    actual.includes(part),
    msg ?? `expected ${JSON.stringify(actual.slice(0, 2000))} to include ${JSON.stringify(part)}`,
  );
}
import { concatBytes } from "../../lib/crypto/asn1.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { generateP256KeyPair, readP256PrivateKey, writeP256PrivateKey } from "../../lib/crypto/pem.ts";
import { parseCertificate } from "../../lib/crypto/x509.ts";
import { issueCertificate, p256CertificateSigner } from "../../lib/crypto/x509_issue.ts";
import { connectTcp } from "../../lib/network/connection.ts";
import { parseClientTransportSocket } from "../../lib/tls/transport_socket.ts";
import { flushAccessLogs } from "../../lib/observe/access_log.ts";
import { curl, itOpts, rawRequest, startFerry, startUpstream, stat } from "./_harness.ts";
import { epollAvailable, epollLoopCounts } from "../../lib/network/epoll.ts";

const dir = Deno.makeTempDirSync({ prefix: "ferry-tls-" });
const files = generateTestPki({ gm: false, hosts: ["localhost", "a.example.com"], ips: ["127.0.0.1"] });
// A second server certificate (for SNI selection) and an ECDSA client certificate, from the same test root.
{
  const caKey = readP256PrivateKey(files["ca_ecdsa.key"]!);
  const ca = parseCertificate(files["ca_ecdsa.crt"]!);
  const now = Date.now();
  const issue = (cn: string, dns: string[], eku: string) => {
    const key = generateP256KeyPair();
    const cert = issueCertificate({
      subject: [["O", "Ferry"], ["CN", cn]],
      publicKey: { curve: "p256", point: key.publicKey },
      issuer: ca,
      signer: p256CertificateSigner(caKey),
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 86400_000),
      keyUsage: ["digitalSignature"],
      extKeyUsage: [eku],
      dnsNames: dns,
    });
    return { cert: cert.pem, key: writeP256PrivateKey(key) };
  };
  const b = issue("b.example.com", ["b.example.com", "*.wild.example.com"], "1.3.6.1.5.5.7.3.1");
  files["b.crt"] = b.cert;
  files["b.key"] = b.key;
  const c = issue("client", ["client.example"], "1.3.6.1.5.5.7.3.2");
  files["client_ecdsa.crt"] = c.cert;
  files["client_ecdsa.key"] = c.key;
}
for (const [name, pem] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, pem);
// A self-signed client certificate no CA vouches for.
{
  const key = generateP256KeyPair();
  const now = Date.now();
  const self = issueCertificate({
    subject: [["CN", "stranger"]],
    publicKey: { curve: "p256", point: key.publicKey },
    signer: p256CertificateSigner(key),
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
  });
  Deno.writeTextFileSync(`${dir}/stranger.crt`, self.pem);
  Deno.writeTextFileSync(`${dir}/stranger.key`, writeP256PrivateKey(key));
}
const f = (n: string) => `${dir}/${n}`;

type Obj = Record<string, unknown>;

const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const INSPECTOR = {
  name: "envoy.filters.listener.tls_inspector",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" },
};

/** A DownstreamTlsContext transport socket with the named certificates. */
function tlsSocket(certs = ["server_ecdsa"], extra: Obj = {}, common: Obj = {}): Obj {
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

/** An HCM answering every request with `body` (its chain's name), or routing to a cluster. */
/** A tcp_proxy filter to `cluster`. */
function tcpProxy(statPrefix: string, cluster: string, extra: Obj = {}): Obj[] {
  return [{
    name: "envoy.filters.network.tcp_proxy",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
      stat_prefix: statPrefix,
      cluster,
      ...extra,
    },
  }];
}

function hcm(body: string, extra: Obj = {}, routes?: Obj[]): Obj[] {
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
      ...extra,
    },
  }];
}

function bootstrap(listener: Obj, clusters: Obj[] = []): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{ name: "tls", address: { socket_address: { address: "127.0.0.1", port_value: 0 } }, ...listener }],
      clusters,
    },
  };
}

function tlsCurl(port: number, args: string[] = [], host = "localhost") {
  return curl(`https://${host}:${port}/`, [
    "--cacert",
    f("ca_ecdsa.crt"),
    "--resolve",
    `${host}:${port}:127.0.0.1`,
    ...args,
  ]);
}

async function sClient(port: number, args: string[], input = "Q\n"): Promise<string> {
  const p = new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", f("ca_ecdsa.crt"), ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const timer = setTimeout(() => p.kill(), 4000);
  const out = await p.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

Deno.test("native listener (Deno.listenTls fast path) serves curl over TLS with ALPN", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "fast",
    filter_chains: [{ transport_socket: tlsSocket(["server_ecdsa", "b"]), filters: hcm("fast") }],
  }));
  try {
    const r = await tlsCurl(ferry.port(), ["-v"]);
    assertEquals(r.status, 200, r.stderr);
    assertEquals(r.body, "fast");
    assertStringIncludes(r.stderr, "ALPN: server accepted http/1.1");
    // Several certificates: the runtime's SNI resolver picks by name.
    const b = await tlsCurl(ferry.port(), ["-v"], "b.example.com");
    assertEquals(b.status, 200, b.stderr);
    assertStringIncludes(b.stderr, "CN=b.example.com");
    assertEquals(await stat(ferry, "listener.fast.ssl.handshake"), 2);
  } finally {
    await ferry.stop();
  }
});

Deno.test({
  name:
    "native listener: HTTP and TCP proxying reach the upstream on the runtime's loop, without hand-offs between loops",
  ...itOpts,
  ignore: !epollAvailable(),
  async fn() {
    // A plain listener keeps the epoll engine's loop running beside the native TLS one. An upstream connection on
    // that loop, serving a Deno.Conn downstream, cost about one hand-off of the loop's wait to a runtime thread per
    // request (and ~23% of the CPU of a resumed handshake with a request, measured with bench/ab_tls.sh native-res).
    const up = await startUpstream();
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [
          {
            name: "tls",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{
              transport_socket: tlsSocket(),
              filters: hcm("proxied", {}, [{ match: { prefix: "/" }, route: { cluster: "up" } }]),
            }],
          },
          {
            name: "tls_tcp",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{
              transport_socket: tlsSocket(),
              filters: tcpProxy("tls_tcp", "up"),
            }],
          },
          {
            name: "plain",
            address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
            filter_chains: [{ filters: hcm("plain") }],
          },
        ],
        clusters: [{
          name: "up",
          load_assignment: {
            cluster_name: "up",
            endpoints: [{
              lb_endpoints: [{
                endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: up.port } } },
              }],
            }],
          },
        }],
      },
    });
    try {
      const plain = await curl(ferry.url("/", "plain"));
      assertEquals([plain.status, plain.body], [200, "plain"]);
      const first = await tlsCurl(ferry.port("tls"));
      assertEquals([first.status, first.body], [200, "ok /"], first.stderr);
      const before = epollLoopCounts()!.handOffs;
      const n = 8;
      for (let i = 0; i < n; i++) {
        // Alternately through the HTTP connection manager and through tcp_proxy.
        const port = ferry.port(i % 2 === 0 ? "tls" : "tls_tcp");
        const r = await curl(`https://localhost:${port}/r${i}`, [
          "--cacert",
          f("ca_ecdsa.crt"),
          "--resolve",
          `localhost:${port}:127.0.0.1`,
        ]);
        assertEquals([r.status, r.body], [200, `ok /r${i}`], r.stderr);
      }
      const handOffs = epollLoopCounts()!.handOffs - before;
      // At most the one a loop makes when it goes idle; it was one or more per request.
      assert(handOffs <= 2, `${handOffs} hand-offs for ${n} proxied native TLS requests`);
      assertEquals(up.requests.length, n + 1);
    } finally {
      await ferry.stop();
      await up.close();
    }
  },
});

Deno.test("native listener selects the certificate by SNI and reports version, suite and SNI", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "sni",
    listener_filters: [INSPECTOR],
    filter_chains: [{
      transport_socket: tlsSocket(["server_ecdsa", "b"]),
      filters: hcm("sni", {
        access_log: [{
          name: "envoy.access_loggers.file",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            path: f("access.log"),
            log_format: {
              text_format_source: {
                inline_string: "%DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_TLS_CIPHER% %REQUESTED_SERVER_NAME%\n",
              },
            },
          },
        }],
      }),
    }],
  }));
  try {
    const a = await tlsCurl(ferry.port(), ["-v"], "localhost");
    assertEquals(a.status, 200, a.stderr);
    const b = await tlsCurl(ferry.port(), ["-v"], "b.example.com");
    assertEquals(b.status, 200, b.stderr);
    assertStringIncludes(b.stderr, "CN=b.example.com");
    const w = await tlsCurl(ferry.port(), [], "x.wild.example.com");
    assertEquals(w.status, 200, w.stderr);
    const t12 = await tlsCurl(ferry.port(), ["--tls-max", "1.2"], "localhost");
    assertEquals(t12.status, 200, t12.stderr);
    assertEquals(await stat(ferry, "listener.sni.ssl.handshake"), 4);
    assertEquals(await stat(ferry, "listener.sni.ssl.versions.TLSv1.2"), 1);
    assertEquals(await stat(ferry, "listener.sni.ssl.versions.TLSv1.3"), 3);
    await flushAccessLogs();
    const log = Deno.readTextFileSync(f("access.log")).trim().split("\n");
    assertMatch(log[0]!, /^TLSv1\.3 TLS_\S+ localhost$/);
    assertMatch(log[1]!, /^TLSv1\.3 TLS_\S+ b\.example\.com$/);
    assertMatch(log[3]!, /^TLSv1\.2 ECDHE-ECDSA-\S+ localhost$/);
  } finally {
    await ferry.stop();
  }
});

Deno.test("native listener requires and verifies client certificates", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "mtls",
    filter_chains: [{
      transport_socket: tlsSocket(["server_ecdsa"], { require_client_certificate: true }, {
        validation_context: {
          trusted_ca: { filename: f("ca_ecdsa.crt") },
          match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "client.example" } }],
        },
      }),
      filters: hcm("mtls"),
    }],
  }));
  try {
    const ok = await tlsCurl(ferry.port(), ["--cert", f("client_ecdsa.crt"), "--key", f("client_ecdsa.key")]);
    assertEquals(ok.status, 200, ok.stderr);
    const none = await tlsCurl(ferry.port());
    assert(none.status !== 200, "no client certificate must fail");
    const stranger = await tlsCurl(ferry.port(), ["--cert", f("stranger.crt"), "--key", f("stranger.key")]);
    assert(stranger.status !== 200, "an untrusted client certificate must fail");
    assertEquals(await stat(ferry, "listener.mtls.ssl.handshake"), 1);
    assertEquals(await stat(ferry, "listener.mtls.ssl.fail_verify_no_cert"), 1);
    assertEquals(await stat(ferry, "listener.mtls.ssl.fail_verify_error"), 1);
    assertEquals(await stat(ferry, "listener.mtls.ssl.connection_error"), 2);
  } finally {
    await ferry.stop();
  }
});

Deno.test(
  "static secrets: a listener's certificate and its client-certificate CA come from static_resources.secrets",
  itOpts,
  async () => {
    const cfg = bootstrap({
      stat_prefix: "sds",
      filter_chains: [{
        transport_socket: tlsSocket([], { require_client_certificate: true }, {
          tls_certificate_sds_secret_configs: [{ name: "server" }],
          // Envoy's MergeFrom: the default context's SAN matcher plus the secret's trusted CA.
          combined_validation_context: {
            default_validation_context: {
              match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "client.example" } }],
            },
            validation_context_sds_secret_config: { name: "clients" },
          },
        }),
        filters: hcm("sds"),
      }],
    });
    (cfg.static_resources as Obj).secrets = [
      {
        name: "server",
        tls_certificate: {
          certificate_chain: { filename: f("server_ecdsa.crt") },
          private_key: { inline_string: Deno.readTextFileSync(f("server_ecdsa.key")) },
        },
      },
      { name: "clients", validation_context: { trusted_ca: { filename: f("ca_ecdsa.crt") } } },
    ];
    const ferry = await startFerry(cfg);
    try {
      const ok = await tlsCurl(ferry.port(), ["--cert", f("client_ecdsa.crt"), "--key", f("client_ecdsa.key")]);
      assertEquals([ok.status, ok.body], [200, "sds"], ok.stderr);
      const stranger = await tlsCurl(ferry.port(), ["--cert", f("stranger.crt"), "--key", f("stranger.key")]);
      assert(stranger.status !== 200, "a client certificate the secret's CA does not vouch for must fail");
      assertEquals(await stat(ferry, "listener.sds.ssl.fail_verify_error"), 1);
      // The secret's inline key never shows in config_dump.
      const dump = await (await fetch(`${ferry.adminUrl}/config_dump`)).text();
      assert(!dump.includes("PRIVATE KEY"), "config_dump must redact the secret's key");
    } finally {
      await ferry.stop();
    }
  },
);

Deno.test("a native TLS handshake that stalls is closed after transport_socket_connect_timeout", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "stall",
    filter_chains: [{ transport_socket: tlsSocket(), filters: hcm("ok"), transport_socket_connect_timeout: "0.3s" }],
  }));
  try {
    const port = ferry.port();
    // A record header announcing a 512-byte ClientHello, then silence.
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]));
    const t0 = performance.now();
    let guard: ReturnType<typeof setTimeout> | undefined;
    const eof = await Promise.race([
      c.read(new Uint8Array(64)).then((n) => n === null, () => true),
      new Promise<false>((r) => guard = setTimeout(() => r(false), 8000)),
    ]);
    clearTimeout(guard);
    const waited = performance.now() - t0;
    c.close();
    assert(eof, "the stalled handshake was not closed");
    // Closed by the 0.3 s deadline, not by anything slower (the default is 10 s).
    assert(waited < 5000, `closed after ${waited.toFixed(0)} ms`);
    assertEquals(await stat(ferry, "listener.stall.ssl.connection_error"), 1);
    // Others are unaffected.
    assertEquals((await tlsCurl(port)).body, "ok");
    assertEquals(await stat(ferry, "listener.stall.ssl.handshake"), 1);
  } finally {
    await ferry.stop();
  }
});

Deno.test("filter chains match by SNI, transport protocol and default chain; bad input is closed", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "mix",
    listener_filters: [INSPECTOR],
    listener_filters_timeout: "1s",
    filter_chains: [
      {
        filter_chain_match: { server_names: ["b.example.com"], transport_protocol: "tls" },
        transport_socket: tlsSocket(["b"]),
        filters: hcm("chain_b"),
      },
      { filter_chain_match: { transport_protocol: "tls" }, transport_socket: tlsSocket(), filters: hcm("chain_tls") },
      {
        filter_chain_match: {
          transport_protocol: "raw_buffer",
          source_prefix_ranges: [{ address_prefix: "10.0.0.0", prefix_len: 8 }],
        },
        filters: hcm("chain_ten"),
      },
    ],
    default_filter_chain: { filters: hcm("chain_plain") },
  }));
  try {
    const port = ferry.port();
    assertEquals((await tlsCurl(port, [], "b.example.com")).body, "chain_b");
    assertEquals((await tlsCurl(port, [], "localhost")).body, "chain_tls");
    assertEquals((await curl(`http://127.0.0.1:${port}/`)).body, "chain_plain");
    // A handshake record that is not a ClientHello, a truncated ClientHello (times out), random bytes.
    const garbage = await rawRequest(port, new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0]), 300);
    assertEquals(garbage.includes("chain_tls"), false);
    const truncated = await rawRequest(port, new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]), 1500);
    assertEquals(truncated, "");
    const random = crypto.getRandomValues(new Uint8Array(512));
    random[0] = 0x16;
    random[1] = 0x03;
    await rawRequest(port, random, 300);
    // Others are unaffected.
    assertEquals((await tlsCurl(port, [], "localhost")).body, "chain_tls");
    assertEquals(await stat(ferry, "listener.mix.ssl.handshake"), 3);
    // The truncated ClientHello timed out; the non-hello handshake record and the random bytes found no TLS chain.
    assert((await stat(ferry, "listener.mix.ssl.connection_error"))! >= 1);
  } finally {
    await ferry.stop();
  }
});

Deno.test("HTTP on a TLS-only port is closed and counted; openssl s_client gets ALPN", itOpts, async () => {
  const ferry = await startFerry(bootstrap({
    stat_prefix: "only",
    filter_chains: [{
      filter_chain_match: { transport_protocol: "tls" },
      transport_socket: tlsSocket(),
      filters: hcm("only"),
    }],
  }));
  try {
    const r = await rawRequest(ferry.port(), "GET / HTTP/1.1\r\nhost: x\r\n\r\n", 500);
    assertEquals(r, "");
    assertEquals(await stat(ferry, "listener.only.no_filter_chain_match"), 1);
    const out = await sClient(ferry.port(), ["-servername", "localhost", "-alpn", "http/1.1", "-tls1_3"]);
    assertStringIncludes(out, "Verify return code: 0 (ok)");
    assertStringIncludes(out, "ALPN protocol: http/1.1");
  } finally {
    await ferry.stop();
  }
});

Deno.test("cluster originates TLS to a TLS upstream and verifies it", itOpts, async () => {
  const upstream = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: files["server_ecdsa.crt"]!,
    key: files["server_ecdsa.key"]!,
  });
  (async () => {
    for await (const c of upstream) {
      (async () => {
        const buf = new Uint8Array(4096);
        const n = await c.read(buf).catch(() => null);
        if (n) {
          const body = "secure upstream";
          await c.write(new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`))
            .catch(() => {});
        }
      })();
    }
  })().catch(() => {});
  const upstreamPort = (upstream.addr as Deno.NetAddr).port;
  const cluster = (name: string, ca: string): Obj => ({
    name,
    type: "STATIC",
    connect_timeout: "1s",
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": UPSTREAM,
        sni: "localhost",
        common_tls_context: { validation_context: { trusted_ca: { filename: ca } } },
      },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: upstreamPort } } },
        }],
      }],
    },
  });
  const ferry = await startFerry(bootstrap({
    filter_chains: [{
      filters: hcm("up", {}, [
        { match: { prefix: "/bad" }, route: { cluster: "wrong_ca" } },
        { match: { prefix: "/" }, route: { cluster: "secure" } },
      ]),
    }],
  }, [cluster("secure", f("ca_ecdsa.crt")), cluster("wrong_ca", f("b.crt"))]));
  try {
    const r = await curl(`http://127.0.0.1:${ferry.port()}/`);
    assertEquals(r.status, 200, r.stderr);
    assertEquals(r.body, "secure upstream");
    const bad = await curl(`http://127.0.0.1:${ferry.port()}/bad`);
    assertEquals(bad.status, 503);
    assertEquals(await stat(ferry, "cluster.secure.ssl.handshake"), 1);
    assertEquals(await stat(ferry, "cluster.wrong_ca.ssl.connection_error"), 1);
  } finally {
    await ferry.stop();
    upstream.close();
  }
});

// ---- GM: TLCP (and TLS 1.3-SM once its engine is in the build) on a listener, mixed with standard TLS ----

const gmFiles = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
for (const [name, pem] of Object.entries(gmFiles)) Deno.writeTextFileSync(`${dir}/gm_${name}`, pem);
const g = (n: string) => f(`gm_${n}`);
const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";

function pair(name: string): Obj {
  return { certificate_chain: { filename: g(`${name}.crt`) }, private_key: { filename: g(`${name}.key`) } };
}

function gmServerSocket(extra: Obj = {}): Obj {
  return {
    name: "ferry.transport_sockets.gm",
    typed_config: {
      "@type": GM_TYPE,
      versions: ["TLSv1.3", "TLCP"],
      certificate: pair("server"),
      sign_certificate: pair("server_sign"),
      enc_certificate: pair("server_enc"),
      alpn_protocols: ["http/1.1"],
      ...extra,
    },
  };
}

function gmClientConfig(extra: Obj = {}): Obj {
  return {
    name: "ferry.transport_sockets.gm",
    typed_config: {
      "@type": GM_TYPE,
      versions: ["TLCP"],
      trusted_ca: { filename: g("ca.crt") },
      sni: "localhost",
      ...extra,
    },
  };
}

/** Our GM client connection: TCP, then the gm provider's client handshake (`extra`: client config fields). */
async function gmConnect(port: number, extra: Obj) {
  const ts = parseClientTransportSocket(gmClientConfig(extra), "client")!;
  const tcp = await connectTcp("127.0.0.1", port, 2000);
  return ts.kind === "gm"
    ? await ts.provider.connect(tcp, ts.context, { timeoutMs: 3000 })
    : await ts.provider.connect(tcp, ts.context, { timeoutMs: 3000 });
}

/** Our GM client ({@link gmConnect}), then one HTTP/1.1 request. */
async function gmGet(port: number, extra: Obj = {}): Promise<{ text: string; version: string; cipher: string }> {
  const conn = await gmConnect(port, extra);
  let text = "";
  const done = new Promise<void>((resolve) => {
    conn.setHandler({
      onData: (d) => {
        text += new TextDecoder().decode(d);
        if (/\r\n\r\n[\s\S]*$/.test(text) && /content-length: (\d+)/i.test(text)) {
          const len = Number(/content-length: (\d+)/i.exec(text)![1]);
          if (text.length - text.indexOf("\r\n\r\n") - 4 >= len) resolve();
        }
      },
      onEof: () => resolve(),
      onClose: () => resolve(),
    });
  });
  conn.start();
  conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"));
  const timer = setTimeout(() => conn.close(), 3000);
  await done;
  clearTimeout(timer);
  conn.close();
  return { text, version: conn.handshake.version, cipher: conn.handshake.cipher };
}

const GM_SUITES = [
  "TLS_SM4_GCM_SM3",
  "TLS_SM4_CCM_SM3",
  "ECC_SM4_GCM_SM3",
  "ECC_SM4_CBC_SM3",
  "ECDHE_SM4_GCM_SM3",
  "ECDHE_SM4_CBC_SM3",
];
for (const suite of GM_SUITES) {
  const version = suite.startsWith("TLS_") ? "TLSv1.3" : "TLCP";
  Deno.test(`mixed port: our ${version} client (${suite}) and curl share one listener`, itOpts, async () => {
    const ferry = await startFerry(bootstrap({
      stat_prefix: "gm",
      filter_chains: [
        {
          filter_chain_match: { transport_protocol: "tls" },
          transport_socket: gmServerSocket({ trusted_ca: { filename: g("ca.crt") } }),
          filters: hcm("gm_chain"),
        },
        { filter_chain_match: { transport_protocol: "tls" }, transport_socket: tlsSocket(), filters: hcm("std_chain") },
      ],
    }));
    try {
      const ecdhe = suite.startsWith("ECDHE");
      const r = await gmGet(ferry.port(), {
        versions: [version],
        cipher_suites: [suite],
        ...(ecdhe ? { sign_certificate: pair("client_sign"), enc_certificate: pair("client_enc") } : {}),
      });
      assertStringIncludes(r.text, "gm_chain");
      assertEquals(r.version, version);
      assertEquals(r.cipher, suite);
      assertEquals((await tlsCurl(ferry.port())).body, "std_chain");
      assertEquals(await stat(ferry, `listener.gm.ssl.ciphers.${suite}`), 1);
      // curl speaks TLS 1.3 too.
      assertEquals(await stat(ferry, `listener.gm.ssl.versions.${version}`), version === "TLCP" ? 1 : 2);
      assertEquals(await stat(ferry, "listener.gm.ssl.handshake"), 2);
    } finally {
      await ferry.stop();
    }
  });
}

Deno.test("cluster originates TLCP to a Ferry GM origin", itOpts, async () => {
  const origin = await startFerry(bootstrap({
    stat_prefix: "origin",
    filter_chains: [{ transport_socket: gmServerSocket(), filters: hcm("gm origin") }],
  }));
  try {
    const edge = await startFerry(bootstrap({
      filter_chains: [{ filters: hcm("edge", {}, [{ match: { prefix: "/" }, route: { cluster: "gm" } }]) }],
    }, [{
      name: "gm",
      type: "STATIC",
      connect_timeout: "2s",
      transport_socket: gmClientConfig(),
      load_assignment: {
        cluster_name: "gm",
        endpoints: [{
          lb_endpoints: [{
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: origin.port() } } },
          }],
        }],
      },
    }]));
    try {
      const r = await curl(`http://127.0.0.1:${edge.port()}/`);
      assertEquals(r.status, 200, r.stderr);
      assertEquals(r.body, "gm origin");
      assertEquals(await stat(edge, "cluster.gm.ssl.versions.TLCP"), 1);
    } finally {
      await edge.stop();
    }
  } finally {
    await origin.stop();
  }
});

Deno.test(
  "tcp_proxy behind a TLS chain: plaintext reaches the upstream, the access log names the TLS facts",
  itOpts,
  async () => {
    const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of echo) {
        (async () => {
          const buf = new Uint8Array(1024);
          for (;;) {
            const n = await c.read(buf).catch(() => null);
            if (n === null) break;
            await c.write(buf.subarray(0, n)).catch(() => {});
          }
          c.close();
        })();
      }
    })().catch(() => {});
    const ferry = await startFerry(bootstrap({
      stat_prefix: "tcp",
      listener_filters: [INSPECTOR],
      filter_chains: [{
        transport_socket: tlsSocket(),
        filters: tcpProxy("tcp", "echo", {
          access_log: [{
            name: "envoy.access_loggers.file",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
              path: f("tcp_access.log"),
              log_format: {
                text_format_source: { inline_string: "%DOWNSTREAM_TLS_VERSION% %REQUESTED_SERVER_NAME%\n" },
              },
            },
          }],
        }),
      }],
    }, [{
      name: "echo",
      type: "STATIC",
      connect_timeout: "1s",
      load_assignment: {
        cluster_name: "echo",
        endpoints: [{
          lb_endpoints: [{
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: echo.addr.port } } },
          }],
        }],
      },
    }]));
    try {
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port: ferry.port(),
        caCerts: [files["ca_ecdsa.crt"]!],
      });
      await conn.write(new TextEncoder().encode("ping over tls\n"));
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "ping over tls\n");
      conn.close();
      await ferry.stop();
      await flushAccessLogs();
      assertEquals(Deno.readTextFileSync(f("tcp_access.log")).trim(), "TLSv1.3 localhost");
    } finally {
      await ferry.stop();
      echo.close();
    }
  },
);

Deno.test(
  "gm chain: garbage after a TLCP ClientHello and an oversized record end that connection only",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap({
      stat_prefix: "gmbad",
      filter_chains: [
        { filter_chain_match: { transport_protocol: "tls" }, transport_socket: gmServerSocket(), filters: hcm("gm") },
        { filter_chain_match: { transport_protocol: "tls" }, transport_socket: tlsSocket(), filters: hcm("std") },
      ],
    }));
    try {
      const hello = Deno.readFileSync(new URL("../../lib/tls/testdata/client_hello_tlcp.bin", import.meta.url));
      const junk = crypto.getRandomValues(new Uint8Array(300));
      junk.set([0x16, 0x01, 0x01, 0x01, 0x20]);
      const a = new Uint8Array(hello.length + junk.length);
      a.set(hello);
      a.set(junk, hello.length);
      const r1 = await rawRequest(ferry.port(), a, 500);
      // The server answered the hello (ServerHello...) and then an alert, or just closed: never plaintext.
      assertEquals(r1.includes("HTTP/1.1"), false);
      const big = new Uint8Array(hello.length + 5 + 20000);
      big.set(hello);
      big.set([0x16, 0x01, 0x01, (20000 >> 8) & 0xff, 20000 & 0xff], hello.length);
      await rawRequest(ferry.port(), big, 500);
      assertEquals((await gmGet(ferry.port(), { versions: ["TLCP"] })).text.includes("gm"), true);
      assertEquals((await tlsCurl(ferry.port())).body, "std");
      assert((await stat(ferry, "listener.gmbad.ssl.connection_error"))! >= 2);
      assertEquals(await stat(ferry, "listener.gmbad.ssl.handshake"), 2);
    } finally {
      await ferry.stop();
    }
  },
);

/** A GM client connection kept open for several keep-alive requests. */
async function gmSession(port: number, extra: Obj) {
  const conn = await gmConnect(port, extra);
  let text = "";
  let wake: (() => void) | undefined;
  let closed = false;
  conn.setHandler({
    onData: (d) => {
      text += new TextDecoder().decode(d);
      wake?.();
    },
    onEof: () => {
      closed = true;
      wake?.();
    },
    onClose: () => {
      closed = true;
      wake?.();
    },
  });
  conn.start();
  return {
    version: conn.handshake.version,
    /** One request on the open connection; resolves with the response body. */
    async get(): Promise<string> {
      text = "";
      conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"));
      const deadline = Date.now() + 3000;
      for (;;) {
        const m = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n/i.exec(text);
        if (m) {
          const body = text.slice(text.indexOf("\r\n\r\n") + 4);
          if (body.length >= Number(m[1])) return body;
        }
        if (closed) throw new Error(`gm session closed; got ${JSON.stringify(text)}`);
        if (Date.now() > deadline) throw new Error(`gm session timed out; got ${JSON.stringify(text)}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
    close: () => conn.close(),
  };
}

/** Sends `data` on a new raw connection and reads until the server closes it (or 3 s pass). */
async function hostile(
  port: number,
  data: Uint8Array,
  closeWrite = false,
): Promise<{ bytes: Uint8Array; eof: boolean }> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    try {
      await c.write(data);
      if (closeWrite) await c.closeWrite();
    } catch { /* the server may already have closed: that is a valid answer */ }
    const chunks: number[] = [];
    const buf = new Uint8Array(65536);
    const deadline = Date.now() + 3000;
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        c.read(buf).catch(() => null),
        new Promise<"wait">((r) => timer = setTimeout(() => r("wait"), Math.max(1, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
      if (n === "wait") return { bytes: new Uint8Array(chunks), eof: false };
      if (n === null) return { bytes: new Uint8Array(chunks), eof: true };
      for (let i = 0; i < n; i++) chunks.push(buf[i]!);
    }
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

/**
 * True if `b` is a sequence of whole TLS/TLCP records whose last one is an alert: a plaintext alert (type 21), or,
 * once handshake keys are in use (TLS 1.3), an encrypted record (type 23) carrying it.
 */
function endsWithAlert(b: Uint8Array): boolean {
  let last = -1;
  let i = 0;
  while (i + 5 <= b.length) {
    last = b[i]!;
    if (last < 20 || last > 23) return false;
    i += 5 + ((b[i + 3]! << 8) | b[i + 4]!);
  }
  return i === b.length && (last === 21 || last === 23);
}

Deno.test(
  "gm listener: random bytes, truncation, tiny-record floods, oversized records and HTTP end only their own connection",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap({
      stat_prefix: "gmhostile",
      listener_filters: [INSPECTOR],
      filter_chains: [
        { filter_chain_match: { transport_protocol: "tls" }, transport_socket: gmServerSocket(), filters: hcm("gm") },
      ],
    }));
    const td = (n: string) => Deno.readFileSync(new URL(`../../lib/tls/testdata/${n}`, import.meta.url));
    const helloTls13 = td("client_hello_tls13_sm.bin");
    const helloTlcp = td("client_hello_tlcp.bin");
    const record = (type: number, version: number, body: Uint8Array) =>
      concatBytes(new Uint8Array([type, version >> 8, version & 255, body.length >> 8, body.length & 255]), body);
    const sessions = [
      await gmSession(ferry.port(), { versions: ["TLSv1.3"] }),
      await gmSession(ferry.port(), { versions: ["TLCP"] }),
    ];
    try {
      for (const s of sessions) assertEquals(await s.get(), "gm");
      const random = crypto.getRandomValues(new Uint8Array(4096));
      random.set([0x16, 0x03, 0x01, 0x02, 0x00]); // looks like a handshake record so the TLS chain takes it
      const flood: Uint8Array[] = [];
      for (let i = 0; i < 3000; i++) flood.push(record(0x16, 0x0303, new Uint8Array(0)));
      const tinyHello: Uint8Array[] = []; // the TLCP ClientHello's body cut into 1-byte records, then a flood of them
      const helloBody = helloTlcp.subarray(5);
      for (let i = 0; i < helloBody.length; i++) tinyHello.push(record(0x16, 0x0101, helloBody.subarray(i, i + 1)));
      for (let i = 0; i < 3000; i++) tinyHello.push(record(0x17, 0x0101, new Uint8Array([0])));
      const cases: Array<{ name: string; data: Uint8Array; closeWrite?: boolean; tls: boolean }> = [
        { name: "random bytes", data: random, tls: true },
        { name: "TLS 1.3 ClientHello then random bytes", data: concatBytes(helloTls13, random.subarray(5)), tls: true },
        { name: "TLS 1.3 ClientHello then 3000 empty records", data: concatBytes(helloTls13, ...flood), tls: true },
        { name: "TLCP ClientHello in 1-byte records then a flood", data: concatBytes(...tinyHello), tls: true },
        {
          name: "TLCP ClientHello then a 2^14+2049-byte record",
          data: concatBytes(helloTlcp, record(0x16, 0x0101, new Uint8Array(16384 + 2049))),
          tls: true,
        },
        {
          name: "TLS 1.3 ClientHello then a 2^14+257-byte record",
          data: concatBytes(helloTls13, record(0x17, 0x0303, new Uint8Array(16384 + 257))),
          tls: true,
        },
        { name: "truncated ClientHello, then FIN", data: helloTls13.subarray(0, 40), closeWrite: true, tls: true },
        { name: "an HTTP request", data: new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"), tls: false },
      ];
      for (const c of cases) {
        const r = await hostile(ferry.port(), c.data, c.closeWrite);
        assert(r.eof, `${c.name}: Ferry must close the connection (got ${r.bytes.length} bytes, no EOF)`);
        assertEquals(new TextDecoder().decode(r.bytes).includes("HTTP/1."), false, `${c.name}: no plaintext answer`);
        // Whatever Ferry sent is whole TLS records ending in an alert, or nothing (no TLS chain took the bytes).
        if (c.tls && r.bytes.length > 0) {
          assert(endsWithAlert(r.bytes), `${c.name}: expected records ending in an alert, got ${r.bytes.length} bytes`);
        } else assertEquals(r.bytes.length, 0, `${c.name}: closed without an answer`);
      }
      // The sessions opened before the attacks carry on, and new handshakes still work.
      for (const s of sessions) assertEquals(await s.get(), "gm");
      assertEquals((await gmGet(ferry.port(), { versions: ["TLSv1.3"] })).text.endsWith("gm"), true);
      // Every case is counted: TLS failures (a ClientHello-shaped first record included) in ssl.connection_error,
      // bytes no TLS chain would take in no_filter_chain_match.
      const errors = (await stat(ferry, "listener.gmhostile.ssl.connection_error"))!;
      const unmatched = (await stat(ferry, "listener.gmhostile.no_filter_chain_match"))!;
      assert(errors >= 5, `ssl.connection_error counts the engine failures, got ${errors}`);
      assert(errors + unmatched >= cases.length, `every case counted: ${errors} + ${unmatched} < ${cases.length}`);
      assertEquals(await stat(ferry, "listener.gmhostile.ssl.handshake"), 3);
    } finally {
      for (const s of sessions) s.close();
      await ferry.stop();
    }
  },
);
