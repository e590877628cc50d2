/**
 * RBAC through a running Ferry with real clients: the HTTP filter with curl over HTTP/1.1 and HTTP/2 (by header,
 * path, source IP, the trusted client of `x-forwarded-for`, per-route overrides, shadow rules), by the SAN of a
 * client certificate over native mTLS (curl --cert) and of an SM2 client certificate over GM TLCP and TLS 1.3-SM
 * (our GM client), and the network filter in front of tcp_proxy and of a GM connection manager.
 */
import { assert, assertEquals } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import {
  generateP256KeyPair,
  readP256PrivateKey,
  readSm2PrivateKey,
  writeP256PrivateKey,
  writeSm2PrivateKey,
} from "../../lib/crypto/pem.ts";
import { Sm2PrivateKey } from "../../lib/crypto/sm2.ts";
import { parseCertificate } from "../../lib/crypto/x509.ts";
import { issueCertificate, p256CertificateSigner, sm2CertificateSigner } from "../../lib/crypto/x509_issue.ts";
import { gmConnect } from "../helpers/gm_client.ts";
import { curl, itOpts, readAll, startFerry, startRawServer, stat } from "./_harness.ts";
import { echoCluster, echoConnection, tcpProxyFilter } from "../helpers/tcp_echo.ts";
import { boltCalls, startBoltProvider } from "../helpers/bolt_peers.ts";

type Obj = Record<string, unknown>;

const RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
const PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute";
const NET_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC";
const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

// ---- PKI: the test PKI plus client certificates with DNS SANs (ECDSA for curl, SM2 sign/enc for GM) ----
const dir = Deno.makeTempDirSync({ prefix: "ferry-rbac-" });
const files = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
{
  const now = Date.now();
  const validity = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 86400_000) };
  const clientAuth = "1.3.6.1.5.5.7.3.2";
  const ecCa = parseCertificate(files["ca_ecdsa.crt"]!);
  const ecCaKey = readP256PrivateKey(files["ca_ecdsa.key"]!);
  for (const name of ["client.example", "other.example"]) {
    const key = generateP256KeyPair();
    const cert = issueCertificate({
      subject: [["O", "Ferry"], ["CN", name]],
      publicKey: { curve: "p256", point: key.publicKey },
      issuer: ecCa,
      signer: p256CertificateSigner(ecCaKey),
      ...validity,
      keyUsage: ["digitalSignature"],
      extKeyUsage: [clientAuth],
      dnsNames: [name],
    });
    files[`ec_${name}.crt`] = cert.pem;
    files[`ec_${name}.key`] = writeP256PrivateKey(key);
  }
  const smCa = parseCertificate(files["ca.crt"]!);
  const smCaKey = readSm2PrivateKey(files["ca.key"]!);
  for (const [file, usage] of [["sign", ["digitalSignature"]], ["enc", ["keyEncipherment", "keyAgreement"]]] as const) {
    const key = Sm2PrivateKey.generate();
    const cert = issueCertificate({
      subject: [["C", "CN"], ["O", "Ferry"], ["CN", "gm client"]],
      publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
      issuer: smCa,
      signer: sm2CertificateSigner(smCaKey),
      ...validity,
      keyUsage: [...usage],
      extKeyUsage: [clientAuth],
      dnsNames: ["gm-client.example"],
    });
    files[`gmsan_${file}.crt`] = cert.pem;
    files[`gmsan_${file}.key`] = writeSm2PrivateKey(key);
  }
}
for (const [name, pem] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}`, pem);
const f = (n: string) => `${dir}/${n}`;
// A client certificate with a URI SAN (a SPIFFE id, as Istio's) and a DNS SAN no policy names, made by openssl (our
// issuer writes no URI SANs): the URI is what lets it in.
{
  const run = (args: string[]) => {
    const r = new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).outputSync();
    if (!r.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(r.stderr)}`);
  };
  Deno.writeTextFileSync(
    `${dir}/uri.cnf`,
    "subjectAltName=URI:spiffe://ferry.test/ns/default/sa/client,DNS:nobody.example\n" +
      "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
  );
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec_spiffe.key"]);
  run(["req", "-new", "-key", "ec_spiffe.key", "-subj", "/O=Ferry/CN=spiffe client", "-out", "spiffe.csr"]);
  run([
    "x509",
    "-req",
    "-in",
    "spiffe.csr",
    "-CA",
    "ca_ecdsa.crt",
    "-CAkey",
    "ca_ecdsa.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "uri.cnf",
    "-out",
    "ec_spiffe.crt",
  ]);
}
const pair = (n: string): Obj => ({
  certificate_chain: { filename: f(`${n}.crt`) },
  private_key: { filename: f(`${n}.key`) },
});

// ---- config helpers ----

function rbacFilter(config: Obj): Obj {
  return { name: "envoy.filters.http.rbac", typed_config: { "@type": RBAC, ...config } };
}

function hcm(statPrefix: string, httpFilters: Obj[], routes?: Obj[], extra: Obj = {}): Obj {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: statPrefix,
      route_config: {
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: routes ??
            [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }],
        }],
      },
      http_filters: [...httpFilters, {
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
      ...extra,
    },
  };
}

function bootstrap(filterChains: Obj[], clusters: Obj[] = []): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "l",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: filterChains,
      }],
      clusters,
    },
  };
}

const ANY = { any: true };
const allowSan = (name: string): Obj => ({
  action: "ALLOW",
  policies: { "san": { permissions: [ANY], principals: [{ authenticated: { principal_name: { exact: name } } }] } },
});

// ---- HTTP ----

Deno.test(
  "http rbac allows and denies by header and path, over HTTP/1.1 and HTTP/2, with shadow rules",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap([{
      filters: [hcm("t", [rbacFilter({
        rules: {
          action: "ALLOW",
          policies: {
            "admin-or-public": {
              permissions: [{
                or_rules: {
                  rules: [
                    { header: { name: "x-role", string_match: { exact: "admin" } } },
                    { url_path: { path: { prefix: "/public" } } },
                  ],
                },
              }],
              principals: [ANY],
            },
          },
        },
        shadow_rules: {
          action: "DENY",
          policies: {
            loopback: {
              permissions: [ANY],
              principals: [{ direct_remote_ip: { address_prefix: "127.0.0.1", prefix_len: 32 } }],
            },
          },
        },
        shadow_rules_stat_prefix: "audit_",
      })])],
    }]));
    try {
      const url = (p: string) => `http://127.0.0.1:${ferry.port()}${p}`;
      assertEquals((await curl(url("/public/a?x=1"))).status, 200);
      const denied = await curl(url("/private"));
      assertEquals(denied.status, 403);
      assertEquals(denied.body, "RBAC: access denied");
      assertEquals((await curl(url("/private"), ["-H", "x-role: admin"])).status, 200);
      const h2 = await curl(url("/private"), ["--http2-prior-knowledge"]);
      assertEquals(h2.status, 403, h2.stderr);
      assertEquals(h2.body, "RBAC: access denied");
      assertEquals((await curl(url("/private"), ["--http2-prior-knowledge", "-H", "x-role: admin"])).status, 200);
      assertEquals((await curl(url("/public"), ["--http2-prior-knowledge"])).status, 200);
      assertEquals(await stat(ferry, "http.t.rbac.allowed"), 4);
      assertEquals(await stat(ferry, "http.t.rbac.denied"), 2);
      assertEquals(await stat(ferry, "http.t.rbac.audit_shadow_denied"), 6);
    } finally {
      await ferry.stop();
    }
  },
);

Deno.test(
  "http rbac by source IP, the x-forwarded-for client, and per-route overrides (RBACPerRoute)",
  itOpts,
  async () => {
    const xffOnly = {
      "@type": PER_ROUTE,
      rbac: {
        rules: {
          action: "ALLOW",
          policies: {
            xff: { permissions: [ANY], principals: [{ remote_ip: { address_prefix: "203.0.113.0", prefix_len: 24 } }] },
          },
        },
      },
    };
    const direct = (body: string) => ({ status: 200, body: { inline_string: body } });
    const ferry = await startFerry(bootstrap([{
      filters: [hcm("ip", [rbacFilter({
        rules: {
          action: "DENY",
          policies: {
            loopback: {
              permissions: [ANY],
              principals: [{ direct_remote_ip: { address_prefix: "127.0.0.0", prefix_len: 8 } }],
            },
          },
        },
      })], [
        {
          match: { prefix: "/open" },
          direct_response: direct("open"),
          typed_per_filter_config: { "envoy.filters.http.rbac": { "@type": PER_ROUTE } },
        },
        {
          match: { prefix: "/xff" },
          direct_response: direct("xff"),
          typed_per_filter_config: { "envoy.filters.http.rbac": xffOnly },
        },
        { match: { prefix: "/" }, direct_response: direct("default") },
      ])],
    }]));
    try {
      const url = (p: string) => `http://127.0.0.1:${ferry.port()}${p}`;
      assertEquals((await curl(url("/"))).status, 403, "the loopback peer is denied");
      const open = await curl(url("/open"));
      assertEquals([open.status, open.body], [200, "open"], "an empty RBACPerRoute turns the filter off");
      assertEquals((await curl(url("/xff"))).status, 403);
      const viaXff = await curl(url("/xff"), ["-H", "x-forwarded-for: 203.0.113.7"]);
      assertEquals([viaXff.status, viaXff.body], [200, "xff"]);
      assertEquals((await curl(url("/xff"), ["-H", "x-forwarded-for: 198.51.100.1"])).status, 403);
      assertEquals(await stat(ferry, "http.ip.rbac.denied"), 3);
      assertEquals(await stat(ferry, "http.ip.rbac.allowed"), 1);
    } finally {
      await ferry.stop();
    }
  },
);

Deno.test(
  "http rbac by the URI and DNS SANs of a client certificate over native mTLS (curl --cert)",
  itOpts,
  async () => {
    const ferry = await startFerry(bootstrap([{
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": DOWNSTREAM,
          require_client_certificate: true,
          common_tls_context: {
            alpn_protocols: ["http/1.1"],
            tls_certificates: [pair("server_ecdsa")],
            validation_context: { trusted_ca: { filename: f("ca_ecdsa.crt") } },
          },
        },
      },
      filters: [hcm("mtls", [rbacFilter({
        rules: {
          action: "ALLOW",
          policies: {
            dns: {
              permissions: [ANY],
              principals: [{ authenticated: { principal_name: { exact: "client.example" } } }],
            },
            spiffe: {
              permissions: [ANY],
              principals: [{ authenticated: { principal_name: { prefix: "spiffe://ferry.test/ns/default/" } } }],
            },
          },
        },
      })])],
    }]));
    try {
      const port = ferry.port();
      const get = (cert: string) =>
        curl(`https://localhost:${port}/`, [
          "--cacert",
          f("ca_ecdsa.crt"),
          "--resolve",
          `localhost:${port}:127.0.0.1`,
          "--cert",
          f(`${cert}.crt`),
          "--key",
          f(`${cert}.key`),
        ]);
      const ok = await get("ec_client.example");
      assertEquals([ok.status, ok.body], [200, "ok"], ok.stderr);
      const other = await get("ec_other.example");
      assertEquals([other.status, other.body], [403, "RBAC: access denied"], other.stderr);
      const spiffe = await get("ec_spiffe");
      assertEquals([spiffe.status, spiffe.body], [200, "ok"], spiffe.stderr);
      assertEquals(await stat(ferry, "http.mtls.rbac.allowed"), 2);
      assertEquals(await stat(ferry, "http.mtls.rbac.denied"), 1);
    } finally {
      await ferry.stop();
    }
  },
);

/** A GM listener requiring client certificates, for TLCP and TLS 1.3-SM. */
function gmChain(filters: Obj[]): Obj {
  return {
    transport_socket: {
      name: "ferry.transport_sockets.gm",
      typed_config: {
        "@type": GM_TYPE,
        versions: ["TLSv1.3", "TLCP"],
        certificate: pair("server"),
        sign_certificate: pair("server_sign"),
        enc_certificate: pair("server_enc"),
        trusted_ca: { filename: f("ca.crt") },
        require_client_certificate: true,
      },
    },
    filters,
  };
}

/** Client-certificate fields of our GM client: the SAN-bearing pair, or the test PKI's subject-only one. */
function gmClientCert(version: "TLSv1.3" | "TLCP", san: boolean): Obj {
  const [s, e] = san ? ["gmsan_sign", "gmsan_enc"] : ["client_sign", "client_enc"];
  return version === "TLCP" ? { sign_certificate: pair(s), enc_certificate: pair(e) } : { certificate: pair(s) };
}

for (const version of ["TLCP", "TLSv1.3"] as const) {
  Deno.test(`http rbac by the SAN of an SM2 client certificate over GM ${version}`, itOpts, async () => {
    const ferry = await startFerry(
      bootstrap([gmChain([hcm("gm", [rbacFilter({ rules: allowSan("gm-client.example") })])])]),
    );
    try {
      const ok = await gmConnect(ferry.port(), version, gmClientCert(version, true));
      assertEquals(ok.conn.handshake.version, version);
      assertEquals(await ok.get(), "ok");
      ok.conn.close();
      const other = await gmConnect(ferry.port(), version, gmClientCert(version, false));
      assertEquals(await other.get(), "RBAC: access denied");
      other.conn.close();
      assertEquals(await stat(ferry, "http.gm.rbac.allowed"), 1);
      assertEquals(await stat(ferry, "http.gm.rbac.denied"), 1);
    } finally {
      await ferry.stop();
    }
  });
}

// ---- network ----

Deno.test("network rbac in front of tcp_proxy: an allowed peer is proxied, a denied one closed", itOpts, async () => {
  const echo = startRawServer(echoConnection);
  const netRbac = (statPrefix: string, action: string) => ({
    name: "envoy.filters.network.rbac",
    typed_config: {
      "@type": NET_RBAC,
      stat_prefix: statPrefix,
      rules: {
        action,
        policies: {
          lo: { permissions: [ANY], principals: [{ source_ip: { address_prefix: "127.0.0.0", prefix_len: 8 } }] },
        },
      },
    },
  });
  const tcp = tcpProxyFilter();
  const cluster = echoCluster(echo.port);
  const allow = await startFerry(bootstrap([{ filters: [netRbac("allow_lo", "ALLOW"), tcp] }], [cluster]));
  const deny = await startFerry(bootstrap([{ filters: [netRbac("deny_lo.", "DENY"), tcp] }], [cluster]));
  try {
    const talk = async (port: number) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await c.write(new TextEncoder().encode("hello"));
        return await readAll(c, 1000);
      } finally {
        c.close();
      }
    };
    assertEquals(await talk(allow.port()), "hello");
    assertEquals(await talk(deny.port()), "", "a denied connection is closed before any byte is proxied");
    assertEquals(await stat(allow, "allow_lo.rbac.allowed"), 1);
    assertEquals(await stat(deny, "deny_lo.rbac.denied"), 1);
  } finally {
    await allow.stop();
    await deny.stop();
    echo.close();
  }
});

Deno.test("network rbac on a GM TLCP listener: principals by SM2 client certificate SAN", itOpts, async () => {
  const ferry = await startFerry(bootstrap([gmChain([
    {
      name: "envoy.filters.network.rbac",
      typed_config: { "@type": NET_RBAC, stat_prefix: "gmnet", rules: allowSan("gm-client.example") },
    },
    hcm("gmh", []),
  ])]));
  try {
    const ok = await gmConnect(ferry.port(), "TLCP", gmClientCert("TLCP", true));
    assertEquals(await ok.get(), "ok");
    ok.conn.close();
    const other = await gmConnect(ferry.port(), "TLCP", gmClientCert("TLCP", false));
    // Take the connection over: the server must end it (EOF or close) without a byte of response.
    let got = "";
    const ended = new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), 5000);
      const end = (how: string) => {
        clearTimeout(timer);
        resolve(how);
      };
      other.conn.setHandler({
        onData: (d) => got += new TextDecoder().decode(d),
        onEof: () => end("eof"),
        onClose: () => end("close"),
      });
    });
    other.conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"));
    assert((await ended) !== "timeout", "the denied connection is closed by the server");
    assertEquals(got, "");
    other.conn.close();
    assertEquals(await stat(ferry, "gmnet.rbac.allowed"), 1);
    assertEquals(await stat(ferry, "gmnet.rbac.denied"), 1);
  } finally {
    await ferry.stop();
  }
});

// ---- RPC: the HTTP filter in an RPC proxy's rpc_filters, with real sofa-rpc-node peers over Bolt ----

Deno.test(
  "http rbac in an RPC proxy: Bolt calls allowed and denied by the service header (sofa-rpc-node)",
  itOpts,
  async () => {
    const provider = await startBoltProvider("p", "com.ferry.Echo:1.0,com.ferry.Secret:1.0");
    const port = provider.port;
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [{
          name: "rpc",
          address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
          filter_chains: [{
            filters: [{
              name: "ferry.filters.network.rpc_proxy",
              typed_config: {
                "@type": "type.googleapis.com/ferry.filters.network.rpc_proxy.v1.RpcProxy",
                stat_prefix: "rpc_in",
                protocol: "BOLT",
                route_config: {
                  virtual_hosts: [{
                    name: "all",
                    domains: ["*"],
                    routes: [{ match: { prefix: "/" }, route: { cluster: "p" } }],
                  }],
                },
                rpc_filters: [
                  rbacFilter({
                    rules: {
                      action: "DENY",
                      policies: {
                        secret: {
                          permissions: [{ header: { name: "service", string_match: { prefix: "com.ferry.Secret" } } }],
                          principals: [ANY],
                        },
                      },
                    },
                  }),
                  {
                    name: "envoy.filters.http.router",
                    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
                  },
                ],
              },
            }],
          }],
        }],
        clusters: [{
          name: "p",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: "p",
            endpoints: [{
              lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
            }],
          },
        }],
      },
    });
    try {
      const call = (iface: string) => boltCalls(ferry.port(), { iface, count: 5, concurrency: 1 });
      const ok = await call("com.ferry.Echo");
      assertEquals([ok.ok, ok.errors], [5, 0], JSON.stringify(ok.messages));
      const denied = await call("com.ferry.Secret");
      assertEquals([denied.ok, denied.errors], [0, 5], JSON.stringify(denied.messages));
      assertEquals(await stat(ferry, "rpc_in.rbac.allowed"), 5);
      assertEquals(await stat(ferry, "rpc_in.rbac.denied"), 5);
    } finally {
      await ferry.stop();
      await provider.kill();
    }
  },
);
