/**
 * Interop with Tongsuo's NTLS (`openssl s_server -enable_ntls` / `s_client -enable_ntls -ntls`) over loopback.
 * Skipped unless `TONGSUO_BIN` points at Tongsuo's `openssl` (with `TONGSUO_LIB` for its library directory if it
 * is not installed system-wide). Nothing here builds Tongsuo. Our defaults (bare ECDHE ClientKeyExchange,
 * CertificateVerify over SM3 of the messages, double client certificates) are Tongsuo's.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { createTlcpClient, createTlcpServer, type TlcpEngine } from "./engine.ts";
import { type TlcpSession, TlcpSessionCache } from "./session_cache.ts";
import { TLCP_SUITES, type TlcpCipherSuite } from "./suites.ts";
import { drive, freePort, type Outcome } from "./_interop_util.ts";
import { testPki } from "./_test_util.ts";

const TONGSUO = Deno.env.get("TONGSUO_BIN");
const SUITES = Object.keys(TLCP_SUITES) as TlcpCipherSuite[];
const NAMES: Record<TlcpCipherSuite, string> = {
  ECC_SM4_CBC_SM3: "ECC-SM2-SM4-CBC-SM3",
  ECC_SM4_GCM_SM3: "ECC-SM2-SM4-GCM-SM3",
  ECDHE_SM4_CBC_SM3: "ECDHE-SM2-SM4-CBC-SM3",
  ECDHE_SM4_GCM_SM3: "ECDHE-SM2-SM4-GCM-SM3",
};

let dir: string | undefined;
globalThis.addEventListener("unload", () => {
  if (dir) Deno.removeSync(dir, { recursive: true });
});

function files(): string {
  if (dir) return dir;
  dir = Deno.makeTempDirSync({ prefix: "ferry-tongsuo-" });
  for (const [name, pem] of Object.entries(testPki().files)) Deno.writeTextFileSync(join(dir, name), pem);
  return dir;
}

function tongsuo(args: string[], stdin: "piped" | "null"): Deno.ChildProcess {
  const lib = Deno.env.get("TONGSUO_LIB");
  const ld = Deno.env.get("LD_LIBRARY_PATH");
  return new Deno.Command(TONGSUO!, {
    args,
    env: lib ? { LD_LIBRARY_PATH: ld ? `${lib}:${ld}` : lib } : {},
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function creds(d: string, who: "server" | "client"): string[] {
  return [
    "-sign_cert",
    join(d, `${who}_sign.crt`),
    "-sign_key",
    join(d, `${who}_sign.key`),
    "-enc_cert",
    join(d, `${who}_enc.crt`),
    "-enc_key",
    join(d, `${who}_enc.key`),
  ];
}

async function ourClient(suite: TlcpCipherSuite, clientCert: boolean): Promise<Outcome & { log: string }> {
  const d = files();
  const port = freePort();
  const args = ["s_server", "-enable_ntls", "-accept", `127.0.0.1:${port}`, "-cipher", NAMES[suite], "-rev"];
  args.push(...creds(d, "server"));
  if (clientCert) args.push("-Verify", "2", "-CAfile", join(d, "ca.crt"));
  const server = tongsuo(args, "null");
  let conn: Deno.Conn | undefined;
  for (let i = 0; i < 60 && !conn; i++) {
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert(conn, "tongsuo s_server did not start");
  const p = testPki();
  const msg = `hello ${suite}`;
  const reversed = [...msg].reverse().join("");
  const r = await drive(
    conn,
    (cb) =>
      createTlcpClient({
        ca: [p.ca],
        serverName: "localhost",
        cipherSuites: [suite],
        ...(clientCert || TLCP_SUITES[suite].kx === "ECDHE" ? { credentials: p.client } : {}),
      }, cb),
    (e) => e.send(new TextEncoder().encode(msg + "\n")),
    (data) => data.includes(reversed),
    4000,
  );
  server.kill("SIGTERM");
  const out = await server.output();
  return { ...r, log: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

async function ourServer(suite: TlcpCipherSuite, clientCert: boolean): Promise<Outcome & { log: string }> {
  const d = files();
  const p = testPki();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const args = ["s_client", "-enable_ntls", "-ntls", "-connect", `127.0.0.1:${port}`, "-cipher", NAMES[suite]];
  args.push("-CAfile", join(d, "ca.crt"), "-verify_return_error", "-verify_hostname", "localhost", "-ign_eof");
  args.push("-servername", "localhost");
  if (clientCert || TLCP_SUITES[suite].kx === "ECDHE") args.push(...creds(d, "client"));
  const client = tongsuo(args, "piped");
  const msg = `hello from tongsuo ${suite}\n`;
  const w = client.stdin.getWriter();
  await w.write(new TextEncoder().encode(msg));
  await w.close();
  const exited = client.status.then(() => undefined);
  const conn = await Promise.race([listener.accept(), exited]);
  listener.close();
  if (!conn) {
    const out = await client.output();
    throw new Error(`tongsuo s_client exited early: ${new TextDecoder().decode(out.stderr)}`);
  }
  const r = await drive(
    conn,
    (cb) =>
      createTlcpServer({
        credentials: p.server,
        cipherSuites: [suite],
        ...(clientCert ? { clientAuth: "require" as const, clientCa: [p.ca] } : {}),
      }, cb),
    () => {},
    (data, engine) => {
      if (!data.includes(msg)) return false;
      engine.send(new TextEncoder().encode(`echo: ${data}`));
      engine.close();
      return false;
    },
    4000,
  );
  const out = await client.output();
  return { ...r, log: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

for (const suite of SUITES) {
  const ecdhe = TLCP_SUITES[suite].kx === "ECDHE";
  for (const clientCert of ecdhe ? [true] : [false, true]) {
    const label = `${suite}${clientCert ? " with client certificates" : ""}`;
    Deno.test({
      name: `TlcpEngine client ↔ Tongsuo s_server ${label}`,
      ignore: !TONGSUO,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const r = await ourClient(suite, clientCert);
        assertEquals(r.error, undefined, r.log);
        assertEquals(r.info?.cipher, suite);
      },
    });
    Deno.test({
      name: `TlcpEngine server ↔ Tongsuo s_client ${label}`,
      ignore: !TONGSUO,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const r = await ourServer(suite, clientCert);
        assertEquals(r.error, undefined, r.log);
        assertEquals(r.info?.cipher, suite);
        assert(r.log.includes(`echo: hello from tongsuo ${suite}`), r.log);
        // Tongsuo sends sign, enc, then the CA certificate.
        if (clientCert) assert((r.info?.peerCertificates.length ?? 0) >= 2);
      },
    });
  }
}

Deno.test({
  name: "TlcpEngine client resumes a session with Tongsuo s_server",
  ignore: !TONGSUO,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = files();
    const p = testPki();
    const port = freePort();
    const suite: TlcpCipherSuite = "ECC_SM4_GCM_SM3";
    const args = ["s_server", "-enable_ntls", "-accept", `127.0.0.1:${port}`, "-cipher", NAMES[suite], "-rev"];
    const server = tongsuo([...args, ...creds(d, "server")], "null");
    try {
      let session: TlcpSession | undefined;
      const resumed: boolean[] = [];
      for (let i = 0; i < 2; i++) {
        let conn: Deno.Conn | undefined;
        for (let j = 0; j < 60 && !conn; j++) {
          try {
            conn = await Deno.connect({ hostname: "127.0.0.1", port });
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        assert(conn);
        let engine: TlcpEngine | undefined;
        const r = await drive(
          conn,
          (cb) =>
            engine = createTlcpClient({
              ca: [p.ca],
              serverName: "localhost",
              cipherSuites: [suite],
              ...(session ? { session } : {}),
            }, cb),
          (e) => e.send(new TextEncoder().encode("abc\n")),
          (data, e) => {
            if (!data.includes("cba")) return false;
            e.close(); // OpenSSL drops sessions of connections that end without close_notify
            return true;
          },
          4000,
        );
        assertEquals(r.error, undefined);
        resumed.push(r.info!.resumed);
        session = engine!.session;
        assert(session, "Tongsuo issued no session id");
      }
      assertEquals(resumed, [false, true]);
    } finally {
      server.kill("SIGTERM");
      await server.output();
    }
  },
});

Deno.test({
  name: "TlcpEngine server resumes Tongsuo s_client sessions (-reconnect)",
  ignore: !TONGSUO,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = files();
    const p = testPki();
    const cache = new TlcpSessionCache();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const args = ["s_client", "-enable_ntls", "-ntls", "-connect", `127.0.0.1:${port}`, "-cipher"];
    args.push(NAMES.ECC_SM4_CBC_SM3, "-CAfile", join(d, "ca.crt"), "-verify_return_error", "-reconnect");
    const client = tongsuo(args, "null");
    const infos: boolean[] = [];
    const exited = client.status.then(() => undefined);
    for (let i = 0; i < 6; i++) {
      const conn = await Promise.race([listener.accept(), exited]);
      if (!conn) break;
      const r = await drive(
        conn,
        (cb) => createTlcpServer({ credentials: p.server, sessionCache: cache }, cb),
        () => {},
        () => false,
        3000,
      );
      if (r.info) infos.push(r.info.resumed);
    }
    listener.close();
    const out = await client.output();
    const log = new TextDecoder().decode(out.stdout);
    assertEquals(infos, [false, true, true, true, true, true], log);
    assert(log.includes("Reused"), log);
  },
});
