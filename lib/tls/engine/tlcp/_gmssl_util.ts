/**
 * GmSSL 3 interop-test support (shared by the TLCP and TLS 1.3 engine tests and `tests/integration/gm_interop_test.ts`):
 * the PBES2 (PBKDF2-HMAC-SM3, SM4-CBC) encrypted PKCS#8 keys GmSSL reads, a test PKI written in GmSSL's file
 * shapes, and spawning `gmssl` with its library directory on LD_LIBRARY_PATH. Nothing here builds GmSSL.
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  encodeElement,
  encodeOid,
  encodeSequence,
  encodeUnsignedInteger,
  generateTestPki,
  hmacSm3Key,
  pemDecode,
  pemEncode,
  Sm4Cbc,
  Tag,
  type TestPkiFiles,
} from "../../../crypto/mod.ts";

/** The `gmssl` binary, from `GMSSL_BIN` (undefined: GmSSL tests are skipped). */
export const GMSSL_BIN: string | undefined = Deno.env.get("GMSSL_BIN");

/** The password of every encrypted key file written here. */
export const GMSSL_KEY_PASS = "1234";

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
export function encryptKeyForGmssl(pkcs8Pem: string, password: string = GMSSL_KEY_PASS): string {
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

/** A test PKI on disk, for GmSSL and for Ferry. */
export interface GmsslPki {
  readonly dir: string;
  /** The PEM files as `ferry certs --gm` names them (plain PKCS#8 keys), also written under `dir`. */
  readonly files: TestPkiFiles;
  /** `dir`/name. */
  path(name: string): string;
}

let pki: GmsslPki | undefined;

/**
 * Writes (once per process) an SM2 test PKI whose server certificates carry the single DNS name `localhost`:
 * GmSSL's name check reads only the first subjectAltName and needs it to be the DNS name. Besides the
 * `ferry certs --gm` files, under `dir`:
 *
 * - `gmssl_tlcp_server_chain.pem` (sign, enc, CA) and `gmssl_tlcp_server_keys.pem` (sign key, enc key; encrypted);
 * - `gmssl_tls13_server_chain.pem` (server, CA) and `gmssl_tls13_server_key.pem`;
 * - `gmssl_tlcp_client_chain.pem` / `gmssl_tlcp_client_keys.pem` (double, for ECDHE),
 *   `gmssl_tlcp_client_sign.pem` / `gmssl_tlcp_client_sign_key.pem` (signing only, for ECC suites);
 * - `gmssl_tls13_client_chain.pem` / `gmssl_tls13_client_key.pem`.
 *
 * The directory is removed when the process unloads.
 */
export function gmsslPki(): GmsslPki {
  if (pki) return pki;
  const files = generateTestPki({ gm: true, hosts: ["localhost"], ips: [] });
  const dir = Deno.makeTempDirSync({ prefix: "ferry-gmssl-" });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* gone */ }
  });
  const w = (n: string, t: string) => Deno.writeTextFileSync(join(dir, n), t);
  for (const [name, pem] of Object.entries(files)) w(name, pem);
  const enc = (n: string) => encryptKeyForGmssl(files[n]!);
  const ca = files["ca.crt"]!;
  w("gmssl_tlcp_server_chain.pem", files["server_sign.crt"]! + files["server_enc.crt"]! + ca);
  w("gmssl_tlcp_server_keys.pem", enc("server_sign.key") + enc("server_enc.key"));
  w("gmssl_tls13_server_chain.pem", files["server.crt"]! + ca);
  w("gmssl_tls13_server_key.pem", enc("server.key"));
  w("gmssl_tlcp_client_chain.pem", files["client_sign.crt"]! + files["client_enc.crt"]! + ca);
  w("gmssl_tlcp_client_keys.pem", enc("client_sign.key") + enc("client_enc.key"));
  w("gmssl_tlcp_client_sign.pem", files["client_sign.crt"]! + ca);
  w("gmssl_tlcp_client_sign_key.pem", enc("client_sign.key"));
  w("gmssl_tls13_client_chain.pem", files["client.crt"]! + ca);
  w("gmssl_tls13_client_key.pem", enc("client.key"));
  pki = { dir, files, path: (n) => join(dir, n) };
  return pki;
}

/** Spawns `gmssl args…` with its library directory on LD_LIBRARY_PATH; stdout and stderr piped. */
export function spawnGmssl(args: string[], stdin: "piped" | "null" = "null"): Deno.ChildProcess {
  const lib = dirname(GMSSL_BIN!);
  const ld = Deno.env.get("LD_LIBRARY_PATH");
  return new Deno.Command(GMSSL_BIN!, {
    args,
    env: { LD_LIBRARY_PATH: ld ? `${lib}:${ld}` : lib },
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Connects to 127.0.0.1:`port` once a server listens there (retries for up to `ms`). */
export async function connectWhenUp(port: number, ms = 3000): Promise<Deno.TcpConn> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 30));
    }
  }
}

/**
 * Resolves once a socket listens on 127.0.0.1:`port`, read from /proc/net/tcp: GmSSL's servers serve a single
 * connection and exit, so a probing connection would use it up.
 */
export async function waitForListen(port: number, ms = 5000): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const deadline = Date.now() + ms;
  for (;;) {
    const table = await Deno.readTextFile("/proc/net/tcp");
    // sl local_address rem_address st: state 0A is LISTEN
    const listening = table.split("\n").some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1]?.endsWith(hex) && f[3] === "0A";
    });
    if (listening) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
