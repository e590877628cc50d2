import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "../../tests/assert.ts";
import { generateTestPki } from "../crypto/certs_command.ts";
import { publicKeyName } from "../crypto/pem.ts";
import { parseCertificate } from "../crypto/x509.ts";
import { connectTcp, DenoConnection } from "../network/connection.ts";
import { type NativeClientContext, nativeProvider, type NativeServerContext } from "./native.ts";
import { type SecureConnection, TlsHandshakeError } from "./provider.ts";
import { generateOpensslPki } from "./testdata/openssl_pki.ts";
import { parseClientTransportSocket, parseServerTransportSocket } from "./transport_socket.ts";

const pki = await generateOpensslPki(["rsa2048", "p384", "ed25519"]);
const f = pki.path;
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(pki.dir, { recursive: true });
  } catch { /* already gone */ }
});
const DOWN = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UP = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const PATH = "l.filter_chains[0].transport_socket";
const COMMON = `${PATH}.typed_config.common_tls_context`;
const CERT0 = `${COMMON}.tls_certificates[0]`;

async function openssl(args: string[]): Promise<string> {
  const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

type Source = { filename: string } | { inline_string: string };
type Pair = { chain: Source; key: Source };

const files = (name: string): Pair => ({
  chain: { filename: f(`${name}.crt`) },
  key: { filename: f(`${name}.key`) },
});

function tlsContext(type: string, pair: Pair | undefined, extra: Record<string, unknown> = {}, common = {}) {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": type,
      common_tls_context: {
        ...(pair ? { tls_certificates: [{ certificate_chain: pair.chain, private_key: pair.key }] } : {}),
        ...common,
      },
      ...extra,
    },
  };
}

function serverContext(raw: unknown): NativeServerContext {
  const ts = parseServerTransportSocket(raw, PATH);
  assert(ts?.kind === "native");
  return ts.context;
}

function clientContext(raw: unknown): NativeClientContext {
  const ts = parseClientTransportSocket(raw, "c.transport_socket");
  assert(ts?.kind === "native");
  return ts.context;
}

/** The config error `raw` fails with, checked to be one line. */
function configError(raw: unknown): string {
  const message = assertThrows(() => parseServerTransportSocket(raw, PATH)).message;
  assert(!message.includes("\n"), `one line: ${message}`);
  return message;
}

Deno.test("parseDownstreamTlsContext loads RSA, P-384 and Ed25519 pairs and reads their names for SNI", async () => {
  for (const t of ["rsa2048", "p384", "ed25519"]) {
    const ctx = serverContext(tlsContext(DOWN, files(`server_${t}`)));
    assertEquals(ctx.certificates[0]!.names, ["localhost", `${t}.example.com`]);
    assert(ctx.listenTlsCapable);
  }
  // Traditional key files (PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY") load as well as PKCS#8.
  for (const t of ["rsa2048", "p384"]) {
    const key = await openssl(["pkey", "-in", f(`server_${t}.key`), "-traditional"]);
    assertMatch(key, /-----BEGIN (RSA|EC) PRIVATE KEY-----/);
    serverContext(tlsContext(DOWN, { chain: { filename: f(`server_${t}.crt`) }, key: { inline_string: key } }));
  }
  // trusted_ca of several key types.
  const v = serverContext(
    tlsContext(DOWN, files("server_rsa2048"), { require_client_certificate: true }, {
      validation_context: { trusted_ca: { filename: f("cas.crt") } },
    }),
  ).validation!;
  assertEquals(v.roots.map((r) => publicKeyName(r.publicKey)), ["RSA", "P-384", "Ed25519"]);
});

Deno.test("parseDownstreamTlsContext errors are one line naming the field", async () => {
  const cert = pki.read("server_rsa2048.crt");
  const key = pki.read("server_rsa2048.key");
  const inline = (chain: string, k = key): Pair => ({ chain: { inline_string: chain }, key: { inline_string: k } });
  // Malformed PEM: bad base64, then good base64 of bytes that are no certificate.
  assertMatch(
    configError(tlsContext(DOWN, inline(cert.replace(/^MII/m, "MI*I")))),
    new RegExp(`^config: ${escape(CERT0)}\\.certificate_chain: is not a PEM certificate chain: .*invalid base64`),
  );
  const junk = `-----BEGIN CERTIFICATE-----\n${btoa("not a certificate")}\n-----END CERTIFICATE-----\n`;
  assertMatch(
    configError(tlsContext(DOWN, inline(junk))),
    new RegExp(`^config: ${escape(CERT0)}\\.certificate_chain: is not a PEM certificate chain: certificate: malformed`),
  );
  assertMatch(
    configError(tlsContext(DOWN, inline("hello"))),
    new RegExp(`^config: ${escape(CERT0)}\\.certificate_chain: holds no certificate$`),
  );
  // Keys: not PEM, PEM of nothing, another certificate's key.
  const keyPath = `^config: ${escape(CERT0)}\\.private_key: `;
  assertMatch(configError(tlsContext(DOWN, inline(cert, "secret"))), new RegExp(`${keyPath}is not a PEM private key$`));
  const badKey = `-----BEGIN PRIVATE KEY-----\n${btoa("nope")}\n-----END PRIVATE KEY-----\n`;
  assertMatch(configError(tlsContext(DOWN, inline(cert, badKey))), new RegExp(`${keyPath}is not a PEM private key: `));
  assertMatch(
    configError(tlsContext(DOWN, inline(cert, pki.read("server_ed25519.key")))),
    new RegExp(`${keyPath}does not match certificate "O=Ferry Test, CN=server rsa2048"`),
  );
  // Keys rustls cannot sign with: RSA-1024, Ed448, secp256k1.
  for (
    const [args, what] of [
      [["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "a 1024-bit RSA key"],
      [["-algorithm", "ED448"], "a key of type ed448"],
      [["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"], "an EC key on secp256k1"],
    ] as const
  ) {
    const k = await openssl(["genpkey", ...args]);
    const self = await selfSigned(k);
    assertMatch(
      configError(tlsContext(DOWN, inline(self, k))),
      new RegExp(`${keyPath}${what} is not supported by the native provider \\(rustls signs with RSA`),
    );
  }
  // An SM2 certificate belongs to the gm transport socket.
  const gm = generateTestPki({ gm: true, hosts: ["localhost"], ips: [] });
  assertMatch(
    configError(tlsContext(DOWN, inline(gm["server.crt"]!, gm["server.key"]!))),
    new RegExp(`^config: ${escape(CERT0)}\\.certificate_chain: certificate "[^"]+" has an SM2 key.*gm`),
  );
  // trusted_ca and an upstream client certificate.
  assertMatch(
    configError(tlsContext(DOWN, files("server_rsa2048"), {}, {
      validation_context: { trusted_ca: { inline_string: cert.replace(/^MII/m, "MI*I") } },
    })),
    new RegExp(`^config: ${escape(COMMON)}\\.validation_context\\.trusted_ca: is not a PEM certificate list: `),
  );
  const up = assertThrows(() =>
    parseClientTransportSocket(
      tlsContext(UP, { chain: { filename: f("client_p384.crt") }, key: { filename: f("client_ed25519.key") } }),
      "c.transport_socket",
    )
  ).message;
  assertMatch(
    up,
    /^config: c\.transport_socket\.typed_config\.common_tls_context\.tls_certificates\[0\]\.private_key: does not match/,
  );
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A self-signed certificate for `keyPem` (openssl reads the key from a temp file). */
async function selfSigned(keyPem: string): Promise<string> {
  const file = await Deno.makeTempFile({ dir: pki.dir, suffix: ".key" });
  await Deno.writeTextFile(file, keyPem);
  return await openssl(["req", "-x509", "-new", "-key", file, "-subj", "/CN=odd key", "-days", "1"]);
}

/** A loopback TCP listener whose next accepted connection runs the native server handshake. */
async function acceptOnce(
  ctx: NativeServerContext,
  client: (port: number) => Promise<unknown>,
): Promise<{ secure?: SecureConnection; error?: unknown }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    // Held, not thrown, until the server side is done: then a failed client assertion fails the test.
    const clientDone = client((l.addr as Deno.NetAddr).port).then(() => undefined, (e: unknown) => ({ e }));
    const tcp = new DenoConnection(await l.accept());
    let result: { secure?: SecureConnection; error?: unknown };
    try {
      result = { secure: await nativeProvider.accept(tcp, ctx, { timeoutMs: 5000 }) };
    } catch (error) {
      result = { error };
    }
    result.secure?.close();
    const failed = await clientDone;
    if (failed) throw failed.e;
    return result;
  } finally {
    l.close();
  }
}

Deno.test("nativeProvider.accept verifies RSA, P-384 and Ed25519 client certificates and reads their facts", async () => {
  const ctx = serverContext(
    tlsContext(DOWN, files("server_rsa2048"), { require_client_certificate: true }, {
      validation_context: { trusted_ca: { filename: f("cas.crt") } },
    }),
  );
  for (const t of ["rsa2048", "p384", "ed25519"]) {
    // curl (OpenSSL) as the client, over a real socket.
    const { secure, error } = await acceptOnce(ctx, (port) =>
      new Deno.Command("curl", {
        args: ["-sS", "--max-time", "5", "--cacert", f("ca_rsa2048.crt"), "--resolve", `localhost:${port}:127.0.0.1`]
          .concat(["--cert", f(`client_${t}.crt`), "--key", f(`client_${t}.key`), `https://localhost:${port}/`]),
        stdout: "null",
        stderr: "null",
      }).output());
    assert(secure, `${t}: ${error}`);
    const peer = parseCertificate(secure.handshake.peerCertificates[0]!);
    assertEquals(peer.subject, `O=Ferry Test, CN=client ${t}`);
    assertEquals(peer.dnsNames, [`client-${t}.example`]);
    assertEquals(publicKeyName(peer.publicKey), { rsa2048: "RSA", p384: "P-384", ed25519: "Ed25519" }[t]);
  }
  // The stranger's RSA certificate is refused as a verification failure.
  const { error } = await acceptOnce(ctx, (port) =>
    new Deno.Command("curl", {
      args: ["-sS", "--max-time", "5", "-k", "--cert", f("stranger.crt"), "--key", f("stranger.key")]
        .concat([`https://127.0.0.1:${port}/`]),
      stdout: "null",
      stderr: "null",
    }).output());
  assert(error instanceof TlsHandshakeError && error.kind === "verify", String(error));
  assertMatch(error.message, /unknown issuer "O=Ferry Test, CN=Stranger Root"/);
});

Deno.test("nativeProvider.connect verifies an Ed25519 server, matches its SANs and presents a P-384 certificate", async () => {
  const server = serverContext(
    tlsContext(DOWN, files("server_ed25519"), { require_client_certificate: true }, {
      validation_context: { trusted_ca: { filename: f("ca_p384.crt") } },
    }),
  );
  const client = (san: string) =>
    clientContext(
      tlsContext(UP, files("client_p384"), { sni: "ed25519.example.com" }, {
        validation_context: {
          trusted_ca: { filename: f("ca_ed25519.crt") },
          match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: san } }],
        },
      }),
    );
  let upstream: SecureConnection | undefined;
  const { secure } = await acceptOnce(server, async (port) => {
    upstream = await nativeProvider.connect(await connectTcp("127.0.0.1", port, 2000), client("ed25519.example.com"), {
      timeoutMs: 5000,
    });
  });
  assert(secure && upstream);
  assertEquals(parseCertificate(secure.handshake.peerCertificates[0]!).subject, "O=Ferry Test, CN=client p384");
  assertEquals(parseCertificate(upstream.handshake.peerCertificates[0]!).subject, "O=Ferry Test, CN=server ed25519");
  upstream.close();
  // The SAN matcher reads the Ed25519 leaf and refuses a name it does not carry.
  await acceptOnce(server, async (port) => {
    const e = await assertRejects(async () =>
      await nativeProvider.connect(await connectTcp("127.0.0.1", port, 2000), client("other.example.com"), {
        timeoutMs: 5000,
      })
    );
    assert(e instanceof TlsHandshakeError && e.kind === "verify", String(e));
    assertMatch(e.message, /"O=Ferry Test, CN=server ed25519": no subject alternative name matches/);
  });
});

Deno.test("nativeProvider.accept fails at once when the peer hangs up mid-handshake", async () => {
  const ctx = serverContext(tlsContext(DOWN, files("server_p384")));
  for (const hello of [new Uint8Array(0), new Uint8Array([0x16, 3, 1, 0, 200, 1, 0, 0, 196])]) {
    const started = performance.now();
    const { error } = await acceptOnce(ctx, async (port) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      if (hello.length > 0) await c.write(hello);
      c.close();
    });
    assert(error instanceof TlsHandshakeError && error.kind === "closed", String(error));
    assert(performance.now() - started < 2000, "not the 5 s handshake timeout");
  }
});
