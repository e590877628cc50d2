/**
 * Secret rotation over real sockets: an HTTPS listener whose certificate comes from a static secret;
 * `Server.updateSecret` with a certificate openssl generates at test time reaches new handshakes (checked with
 * `openssl s_client`: serial and subject), while a TLS keep-alive connection opened before stays up and still
 * serves; an invalid update is one line and the current certificate keeps serving. The same for a GM listener
 * (TLS 1.3-SM certificate and TLCP signing certificate from secrets), with our GM client.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { parseCertificate } from "../../lib/crypto/x509.ts";
import { directResponseHcm, itOpts, startFerry } from "./_harness.ts";
import { gmConnect } from "../helpers/gm_client.ts";
import { mustOpenssl, openssl } from "../helpers/openssl.ts";

type Obj = Record<string, unknown>;

const dir = Deno.makeTempDirSync({ prefix: "ferry-rotate-" });
const f = (n: string) => `${dir}/${n}`;

/** A P-256 test root, and leaves `name` signed by it with the given serial (localhost, 127.0.0.1). */
async function makePki(): Promise<void> {
  await mustOpenssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-subj",
    "/CN=rotation test root",
    "-days",
    "2",
  ]);
  Deno.writeTextFileSync(
    f("leaf.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  for (const [name, serial] of [["a", "0x0A01"], ["b", "0x0B02"]] as const) {
    await mustOpenssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
      "-subj",
      `/O=Ferry/CN=rotation-${name}`,
    ]);
    await mustOpenssl([
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.crt"),
      "-CAkey",
      f("ca.key"),
      "-set_serial",
      serial,
      "-days",
      "2",
      "-extfile",
      f("leaf.ext"),
      "-out",
      f(`${name}.crt`),
    ]);
  }
}

/** The serial and subject of the certificate a new handshake to `port` gets. */
async function peerCertificate(port: number): Promise<string> {
  const r = await openssl([
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "localhost",
    "-CAfile",
    f("ca.crt"),
    "-verify_return_error",
  ]);
  const pem = r.out.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/)?.[0];
  if (!pem) throw new Error(`s_client got no certificate: ${r.err}`);
  assertMatch(r.out, /Verify return code: 0 \(ok\)/);
  const x = await openssl(["x509", "-noout", "-serial", "-subject"], pem);
  return x.out.trim();
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One HTTP/1.1 request on an open connection; returns the body (Content-Length framed). */
async function request(conn: Deno.Conn): Promise<string> {
  await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection closed mid-response: ${JSON.stringify(text)}`);
    text += dec.decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const len = Number(text.slice(0, end).match(/content-length:\s*(\d+)/i)?.[1] ?? "0");
    if (text.length >= end + 4 + len) {
      assertMatch(text, /^HTTP\/1\.1 200 /);
      return text.slice(end + 4, end + 4 + len);
    }
  }
}

function hcm(body: string): Obj[] {
  return [directResponseHcm(body, body)];
}

function bootstrap(): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      secrets: [{
        name: "server",
        tls_certificate: {
          certificate_chain: { filename: f("a.crt") },
          private_key: { filename: f("a.key") },
        },
      }],
      listeners: [{
        name: "https",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
              common_tls_context: {
                alpn_protocols: ["http/1.1"],
                tls_certificate_sds_secret_configs: [{ name: "server" }],
              },
            },
          },
          filters: hcm("hi"),
        }],
      }],
      clusters: [],
    },
  };
}

Deno.test(
  "Server.updateSecret: a rotated certificate reaches new handshakes while an open connection keeps serving",
  itOpts,
  async () => {
    await makePki();
    const ferry = await startFerry(bootstrap());
    try {
      const port = ferry.port();
      const before = await peerCertificate(port);
      assertMatch(before, /serial=0A01/);
      assertMatch(before, /CN ?= ?rotation-a/);

      // A keep-alive connection established with certificate A.
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port,
        caCerts: [Deno.readTextFileSync(f("ca.crt"))],
      });
      assertEquals(await request(conn), "hi");

      ferry.server.updateSecret("server", {
        name: "server",
        tls_certificate: {
          certificate_chain: { inline_string: Deno.readTextFileSync(f("b.crt")) },
          private_key: { filename: f("b.key") },
        },
      });
      assertEquals(ferry.server.config.secrets.get("server")?.version, 2);

      const after = await peerCertificate(port);
      assertMatch(after, /serial=0B02/);
      assertMatch(after, /CN ?= ?rotation-b/);

      // The connection opened before the update is still up and still serves.
      assertEquals(await request(conn), "hi");
      assertEquals(await request(conn), "hi");

      // Invalid updates: one line naming the path; nothing changes and certificate B keeps serving.
      const bad: [unknown, RegExp][] = [
        [
          // B's chain with A's key: the TLS context's own parser rejects it.
          {
            tls_certificate: {
              certificate_chain: { filename: f("b.crt") },
              private_key: { filename: f("a.key") },
            },
          },
          /^config: secret\.tls_certificate: static_resources\.listeners\[0\]\..*private_key: does not match/,
        ],
        [
          {
            tls_certificate: {
              certificate_chain: { inline_string: "not a pem" },
              private_key: { filename: f("b.key") },
            },
          },
          /^config: secret\.tls_certificate\.certificate_chain: /,
        ],
        [
          { validation_context: { trusted_ca: { filename: f("ca.crt") } } },
          /is a tls_certificate, not a validation_context/,
        ],
        [{ name: "other", tls_certificate: {} }, /^config: secret\.name: is "other"/],
      ];
      for (const [raw, want] of bad) {
        let message = "";
        try {
          ferry.server.updateSecret("server", raw);
        } catch (e) {
          message = (e as Error).message;
        }
        assertMatch(message, want);
        assert(!message.includes("\n"), `one line: ${message}`);
      }
      let unknown = "";
      try {
        ferry.server.updateSecret("nope", {});
      } catch (e) {
        unknown = (e as Error).message;
      }
      assertEquals(unknown, 'config: secret: unknown secret "nope" (known: server)');
      assertEquals(ferry.server.config.secrets.get("server")?.version, 2);
      assertMatch(await peerCertificate(port), /serial=0B02/);
      assertEquals(await request(conn), "hi");
      conn.close();
    } finally {
      await ferry.stop();
    }
  },
);

const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const gmOne = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
const gmTwo = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
const gmPair = (pki: Record<string, string>, name: string) => ({
  certificate_chain: { inline_string: pki[`${name}.crt`]! },
  private_key: { inline_string: pki[`${name}.key`]! },
});

Deno.test(
  "Server.updateSecret: a GM listener's TLS 1.3-SM and TLCP certificates rotate for new handshakes",
  itOpts,
  async () => {
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        secrets: [
          { name: "gm_cert", tls_certificate: gmPair(gmOne, "server") },
          { name: "gm_sign", tls_certificate: gmPair(gmOne, "server_sign") },
          { name: "gm_enc", tls_certificate: gmPair(gmOne, "server_enc") },
        ],
        listeners: [{
          name: "gm",
          address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
          filter_chains: [{
            transport_socket: {
              name: "ferry.transport_sockets.gm",
              typed_config: {
                "@type": GM_TYPE,
                versions: ["TLSv1.3", "TLCP"],
                certificate_sds_secret_config: { name: "gm_cert" },
                sign_certificate_sds_secret_config: { name: "gm_sign" },
                enc_certificate_sds_secret_config: { name: "gm_enc" },
                alpn_protocols: ["http/1.1"],
              },
            },
            filters: hcm("gm"),
          }],
        }],
        clusters: [],
      },
    });
    const der = (pem: string) => parseCertificate(pem).der;
    try {
      const port = ferry.port();
      for (
        const [version, secret, file] of [["TLSv1.3", "gm_cert", "server"], ["TLCP", "gm_sign", "server_sign"]] as const
      ) {
        const old = await gmConnect(port, version);
        assertEquals(old.peer, der(gmOne[`${file}.crt`]!));
        assertEquals(await old.get(), "gm");

        ferry.server.updateSecret(secret, { tls_certificate: gmPair(gmTwo, file) });
        const fresh = await gmConnect(port, version);
        assertEquals(fresh.peer, der(gmTwo[`${file}.crt`]!), `${version}: a new handshake gets the new certificate`);
        assertEquals(await fresh.get(), "gm");
        fresh.conn.close();

        // The connection from before the update is still up and serves.
        assertEquals(await old.get(), "gm");
        old.conn.close();
      }
      // A pair the gm provider cannot use (an ECDSA key): one line, nothing changes.
      let message = "";
      try {
        ferry.server.updateSecret("gm_cert", {
          tls_certificate: gmPair(gmOne, "server_ecdsa"),
        });
      } catch (e) {
        message = (e as Error).message;
      }
      assertMatch(message, /^config: secret\.tls_certificate: static_resources\.listeners\[0\].*not an SM2 key/);
      assert(!message.includes("\n"), message);
      assertEquals(ferry.server.config.secrets.get("gm_cert")?.version, 2);
      const after = await gmConnect(port, "TLSv1.3");
      assertEquals(after.peer, der(gmTwo["server.crt"]!));
      after.conn.close();
    } finally {
      await ferry.stop();
    }
  },
);
