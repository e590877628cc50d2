import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { generateTestPki } from "../crypto/certs_command.ts";
import { parseClientTransportSocket, parseServerTransportSocket } from "./transport_socket.ts";

const dir = Deno.makeTempDirSync({ prefix: "ferry-ts-" });
const files = generateTestPki({ gm: true, hosts: ["localhost"], ips: [] });
for (const [n, pem] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${n}`, pem);
const file = (n: string) => ({ filename: `${dir}/${n}` });
const DOWN = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UP = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const GM = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";

function down(extra: Record<string, unknown> = {}, common: Record<string, unknown> = {}) {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": DOWN,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: file("server_ecdsa.crt"), private_key: file("server_ecdsa.key") }],
        ...common,
      },
      ...extra,
    },
  };
}

Deno.test("parseServerTransportSocket reads a DownstreamTlsContext (files, inline, ALPN, versions)", () => {
  const ts = parseServerTransportSocket(
    down({}, { alpn_protocols: ["h2", "http/1.1"], tls_params: { tls_minimum_protocol_version: "TLSv1_3" } }),
    "ts",
  );
  assert(ts?.kind === "native");
  assertEquals(ts.context.alpn, ["h2", "http/1.1"]);
  assertEquals(ts.context.minVersion, "TLSv1.3");
  assertEquals(ts.context.certificates[0]!.names, ["localhost"]);
  assertEquals(ts.context.listenTlsCapable, false);
  const inline = parseServerTransportSocket(
    down({}, {
      tls_certificates: [{
        certificate_chain: { inline_string: files["server_ecdsa.crt"] },
        private_key: { inline_string: files["server_ecdsa.key"] },
      }],
    }),
    "ts",
  );
  assert(inline?.kind === "native" && inline.context.listenTlsCapable);
});

Deno.test("parseServerTransportSocket errors name the path", () => {
  const err = (raw: unknown) =>
    assertThrows(() => parseServerTransportSocket(raw, "l.filter_chains[0].transport_socket")).message;
  assertEquals(
    err(down({}, { tls_params: { cipher_suites: ["AES128-SHA"] } })).split(":").slice(0, 2).join(":"),
    "config: l.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_params.cipher_suites[0]",
  );
  assert(err(down({ require_client_certificate: true })).includes("require_client_certificate: needs"));
  assert(err(down({}, { tls_certificates: [] })).includes("tls_certificates: must have at least one entry"));
  assert(
    err(down({ ocsp_staple_policy: "STRICT_STAPLING" })).includes("typed_config.ocsp_staple_policy: is not supported"),
  );
  assert(
    err(
      down({}, { tls_certificates: [{ certificate_chain: file("nope.crt"), private_key: file("server_ecdsa.key") }] }),
    )
      .includes("certificate_chain.filename: cannot read"),
  );
  assert(err(down({}, { tls_params: { tls_maximum_protocol_version: "TLSv1_1" } })).includes("not supported"));
  assert(err({ name: "x", typed_config: { "@type": UP } }).includes("not an UpstreamTlsContext"));
  assert(err({ name: "x", typed_config: { "@type": "type.googleapis.com/nope" } }).includes("is not supported here"));
});

Deno.test("parseClientTransportSocket reads an UpstreamTlsContext and a gm client context", () => {
  const n = parseClientTransportSocket({
    name: "tls",
    typed_config: {
      "@type": UP,
      sni: "api.example",
      common_tls_context: { validation_context: { trusted_ca: file("ca_ecdsa.crt") } },
    },
  }, "c");
  assert(n?.kind === "native");
  assertEquals(n.context.sni, "api.example");
  assertEquals(n.context.validation?.roots.length, 1);
  const g = parseClientTransportSocket({
    name: "gm",
    typed_config: {
      "@type": GM,
      versions: ["TLCP"],
      trusted_ca: file("ca.crt"),
      sign_certificate: { certificate_chain: file("client_sign.crt"), private_key: file("client_sign.key") },
      enc_certificate: { certificate_chain: file("client_enc.crt"), private_key: file("client_enc.key") },
      tlcp_client_key_exchange: "LENGTH_PREFIXED",
    },
  }, "c");
  assert(g?.kind === "gm");
  assertEquals(g.context.tlcpClientKeyExchange, "LENGTH_PREFIXED");
  assertEquals(g.context.tlcpSuites.length, 4);
});

Deno.test("parseGmTlsContext checks certificates, suites, keys and roles", () => {
  const gm = (cfg: Record<string, unknown>) => ({ name: "gm", typed_config: { "@type": GM, ...cfg } });
  const err = (raw: unknown, client = false) =>
    assertThrows(() => client ? parseClientTransportSocket(raw, "p") : parseServerTransportSocket(raw, "p")).message;
  assert(err(gm({ versions: ["TLCP"] })).includes("sign_certificate: is required for TLCP"));
  assert(err(gm({ versions: ["SSLv3"] })).includes("versions[0]"));
  assert(err(gm({ versions: ["TLCP"], cipher_suites: ["TLS_AES_128_GCM_SHA256"] })).includes("is not a GM suite"));
  assert(
    err(gm({
      versions: ["TLCP"],
      sign_certificate: { certificate_chain: file("server_sign.crt"), private_key: file("server_enc.key") },
      enc_certificate: { certificate_chain: file("server_enc.crt"), private_key: file("server_enc.key") },
    })).includes("sign_certificate.private_key: does not match"),
  );
  assert(
    err(gm({
      versions: ["TLCP"],
      sign_certificate: { certificate_chain: file("server_ecdsa.crt"), private_key: file("server_ecdsa.key") },
    })).includes("not an SM2 key"),
  );
  assert(err(gm({ versions: ["TLCP"], sni: "x" })).includes("sni: applies to clients only"));
  assert(err(gm({ versions: ["TLCP"], require_client_certificate: true }), true).includes("applies to servers only"));
});
