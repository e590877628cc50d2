/**
 * Interop with GmSSL 3 (`gmssl tlcp_server` / `tlcp_client`) over loopback. Skipped unless `GMSSL_BIN` points
 * at a `gmssl` binary (its directory is added to LD_LIBRARY_PATH for libgmssl). Nothing here builds GmSSL.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  encodeElement,
  encodeOid,
  encodeSequence,
  encodeUnsignedInteger,
  hmacSm3Key,
  issueCertificate,
  type KeyUsageName,
  pemDecode,
  pemEncode,
  readSm2PrivateKey,
  sm2CertificateSigner,
  Sm2PrivateKey,
  Sm4Cbc,
  Tag,
  writeSm2PrivateKey,
} from "../../../crypto/mod.ts";
import { createTlcpClient, createTlcpServer, type TlcpClientOptions, type TlcpCredentials } from "./engine.ts";
import { TLCP_SUITES, type TlcpCipherSuite } from "./suites.ts";
import { drive, freePort, type Outcome } from "./_interop_util.ts";
import { testPki } from "./_test_util.ts";

const GMSSL = Deno.env.get("GMSSL_BIN");
const PASS = "1234";
const SUITES = Object.keys(TLCP_SUITES) as TlcpCipherSuite[];

/** PBKDF2-HMAC-SM3. */
function pbkdf2Sm3(password: Uint8Array, salt: Uint8Array, iter: number, len: number): Uint8Array {
  const key = hmacSm3Key(password);
  const out = new Uint8Array(len);
  for (let block = 1, off = 0; off < len; block++, off += 32) {
    let u = key.mac(salt, new Uint8Array([block >>> 24, block >>> 16, block >>> 8, block]));
    const t = u.slice();
    for (let i = 1; i < iter; i++) {
      u = key.mac(u);
      for (let j = 0; j < 32; j++) t[j]! ^= u[j]!;
    }
    out.set(t.subarray(0, Math.min(32, len - off)), off);
  }
  return out;
}

/** PKCS#8 → the PBES2 (PBKDF2-HMAC-SM3, SM4-CBC) EncryptedPrivateKeyInfo that GmSSL reads. */
function encryptKeyForGmssl(pkcs8Pem: string, password: string): string {
  const der = pemDecode(pkcs8Pem, "PRIVATE KEY").der;
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const iter = 10_000; // GmSSL refuses fewer
  const k = pbkdf2Sm3(new TextEncoder().encode(password), salt, iter, 16);
  const ct = new Sm4Cbc(k).encrypt(iv, der);
  const oid = (s: string) => encodeOid(s);
  const pbkdf2 = encodeSequence(
    oid("1.2.840.113549.1.5.12"),
    encodeSequence(
      encodeElement(Tag.OCTET_STRING, salt),
      encodeUnsignedInteger(BigInt(iter)),
      encodeSequence(oid("1.2.156.10197.1.401.2")), // hmacWithSM3 as GmSSL spells it, no NULL
    ),
  );
  const scheme = encodeSequence(oid("1.2.156.10197.1.104.2"), encodeElement(Tag.OCTET_STRING, iv));
  const alg = encodeSequence(oid("1.2.840.113549.1.5.13"), encodeSequence(pbkdf2, scheme));
  return pemEncode("ENCRYPTED PRIVATE KEY", encodeSequence(alg, encodeElement(Tag.OCTET_STRING, ct)));
}

let dir: string | undefined;
globalThis.addEventListener("unload", () => {
  if (dir) Deno.removeSync(dir, { recursive: true });
});

/**
 * Server credentials with a DNS-only subjectAltName: GmSSL's name check reads only the first SAN entry and needs
 * it to be the DNS name, so the shared test PKI (DNS + IP) does not pass it.
 */
function dnsOnlyServer(): { creds: TlcpCredentials; signPem: string; encPem: string; signKey: string; encKey: string } {
  const p = testPki();
  const caKey = readSm2PrivateKey(p.files["ca.key"]!);
  const now = Date.now();
  const issue = (key: Sm2PrivateKey, ku: KeyUsageName[]) =>
    issueCertificate({
      subject: [["C", "CN"], ["O", "Ferry"], ["CN", "localhost"]],
      publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
      issuer: p.ca,
      signer: sm2CertificateSigner(caKey),
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 24 * 3600_000),
      keyUsage: ku,
      dnsNames: ["localhost"],
    });
  const sk = Sm2PrivateKey.generate(), ek = Sm2PrivateKey.generate();
  const sign = issue(sk, ["digitalSignature"]);
  const enc = issue(ek, ["keyEncipherment", "keyAgreement", "dataEncipherment"]);
  return {
    creds: { signCertificate: sign.der, signKey: sk, encCertificate: enc.der, encKey: ek },
    signPem: sign.pem,
    encPem: enc.pem,
    signKey: writeSm2PrivateKey(sk),
    encKey: writeSm2PrivateKey(ek),
  };
}

let server: ReturnType<typeof dnsOnlyServer> | undefined;

/** Writes the test PKI in GmSSL's shape: chains (sign, enc) and key files (sign key, enc key; encrypted). */
function files(): string {
  if (dir) return dir;
  const f = testPki().files;
  dir = Deno.makeTempDirSync({ prefix: "ferry-gmssl-" });
  const w = (n: string, t: string) => Deno.writeTextFileSync(join(dir!, n), t);
  w("ca.crt", f["ca.crt"]!);
  server = dnsOnlyServer();
  w("server_chain.pem", server.signPem + server.encPem);
  w("server_keys.pem", encryptKeyForGmssl(server.signKey, PASS) + encryptKeyForGmssl(server.encKey, PASS));
  w("client_sign.pem", f["client_sign.crt"]!);
  w("client_sign_key.pem", encryptKeyForGmssl(f["client_sign.key"]!, PASS));
  w("client_chain.pem", f["client_sign.crt"]! + f["client_enc.crt"]!);
  w(
    "client_keys.pem",
    encryptKeyForGmssl(f["client_sign.key"]!, PASS) + encryptKeyForGmssl(f["client_enc.key"]!, PASS),
  );
  return dir;
}

function gmssl(args: string[]): Deno.ChildProcess {
  const lib = dirname(GMSSL!);
  const ld = Deno.env.get("LD_LIBRARY_PATH");
  return new Deno.Command(GMSSL!, {
    args,
    env: { LD_LIBRARY_PATH: ld ? `${lib}:${ld}` : lib },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function ourClientAgainstGmsslServer(
  suite: TlcpCipherSuite,
  clientCert: boolean,
  extra: Partial<TlcpClientOptions>,
): Promise<Outcome & { serverLog: string }> {
  const d = files();
  const port = freePort();
  const args = [
    "tlcp_server",
    "-port",
    String(port),
    "-cert",
    join(d, "server_chain.pem"),
    "-key",
    join(d, "server_keys.pem"),
    "-pass",
    PASS,
    "-cipher_suite",
    `TLS_${suite}`,
  ];
  if (clientCert) args.push("-cert_request", "-cacert", join(d, "ca.crt"));
  const server = gmssl(args);
  let conn: Deno.Conn | undefined;
  for (let i = 0; i < 50 && !conn; i++) {
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert(conn, "gmssl tlcp_server did not start");
  const p = testPki();
  const msg = `hello ${suite}`;
  const result = await drive(
    conn,
    (cb) =>
      createTlcpClient({
        ca: [p.ca],
        serverName: "localhost",
        cipherSuites: [suite],
        ...(clientCert || TLCP_SUITES[suite].kx === "ECDHE" ? { credentials: p.client } : {}),
        ...extra,
      }, cb),
    (e) => e.send(new TextEncoder().encode(msg)),
    (data) => data.includes(msg),
    4000,
  );
  server.kill("SIGTERM");
  const log = new TextDecoder().decode((await server.output()).stderr);
  return { ...result, serverLog: log };
}

async function gmsslClientAgainstOurServer(suite: TlcpCipherSuite, clientCert: boolean): Promise<
  Outcome & {
    clientOut: string;
  }
> {
  const d = files();
  const p = testPki();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const msg = `hello from gmssl ${suite}\n`;
  const input = join(d, `in_${suite}.txt`);
  Deno.writeTextFileSync(input, msg);
  const args = [
    "tlcp_client",
    "-host",
    "localhost",
    "-port",
    String(port),
    "-cacert",
    join(d, "ca.crt"),
    "-cipher_suite",
  ];
  args.push(`TLS_${suite}`, "-in", input);
  if (TLCP_SUITES[suite].kx === "ECDHE") {
    args.push("-cert", join(d, "client_chain.pem"), "-key", join(d, "client_keys.pem"), "-pass", PASS);
  } else if (clientCert) {
    // GmSSL's client loads one chain for ECC suites: the signing certificate alone.
    args.push("-cert", join(d, "client_sign.pem"), "-key", join(d, "client_sign_key.pem"), "-pass", PASS);
  }
  const client = gmssl(args);
  const exited = client.status.then(() => undefined);
  const conn = await Promise.race([listener.accept(), exited]);
  listener.close();
  if (!conn) {
    const out = await client.output();
    throw new Error(`gmssl tlcp_client exited early: ${new TextDecoder().decode(out.stderr)}`);
  }
  const result = await drive(
    conn,
    (cb) =>
      createTlcpServer({
        credentials: server!.creds,
        cipherSuites: [suite],
        ...(clientCert ? { clientAuth: "require" as const, clientCa: [p.ca] } : {}),
      }, cb),
    () => {},
    (data, engine) => {
      if (!data.includes(msg)) return false;
      engine.send(new TextEncoder().encode(`echo: ${data}`));
      engine.close();
      return false; // wait for the client's close_notify or EOF
    },
    4000,
  );
  const out = await client.output();
  return { ...result, clientOut: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

for (const suite of SUITES) {
  const ecdhe = TLCP_SUITES[suite].kx === "ECDHE";
  for (const clientCert of ecdhe ? [true] : [false, true]) {
    Deno.test({
      name: `TlcpEngine client ↔ GmSSL tlcp_server ${suite}${clientCert ? " with client certificates" : ""}`,
      ignore: !GMSSL,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        // GmSSL 3 wants the ECDHE ClientKeyExchange inside a 2-byte length and CertificateVerify over the raw messages.
        const r = await ourClientAgainstGmsslServer(suite, clientCert, {
          ecdheKeyExchangeEncoding: "length-prefixed",
          certificateVerifyInput: "transcript",
          eccClientCertificates: "sign-only",
        });
        assertEquals(r.error, undefined, r.serverLog);
        assertEquals(r.info?.cipher, suite);
        assert(r.data.includes(`hello ${suite}`));
      },
    });
    Deno.test({
      name: `TlcpEngine server ↔ GmSSL tlcp_client ${suite}${clientCert ? " with client certificates" : ""}`,
      ignore: !GMSSL,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const r = await gmsslClientAgainstOurServer(suite, clientCert);
        assertEquals(r.error, undefined, r.clientOut);
        assertEquals(r.info?.cipher, suite);
        assert(r.data.includes(`hello from gmssl ${suite}`), r.clientOut);
        assert(r.clientOut.includes(`echo: hello from gmssl ${suite}`), r.clientOut);
      },
    });
  }
}
