/**
 * Interop with GmSSL 3 (`gmssl tlcp_server` / `tlcp_client`) over loopback. Skipped unless `GMSSL_BIN` points
 * at a `gmssl` binary (its directory is added to LD_LIBRARY_PATH for libgmssl). Nothing here builds GmSSL.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseCertificate } from "../../../crypto/mod.ts";
import {
  createTlcpClient,
  createTlcpServer,
  type TlcpClientOptions,
  type TlcpCredentials,
  tlcpCredentialsFromPem,
} from "./engine.ts";
import { TLCP_SUITES, type TlcpCipherSuite } from "./suites.ts";
import { drive, freePort, type Outcome } from "./_interop_util.ts";
import {
  connectWhenUp,
  GMSSL_BIN as GMSSL,
  GMSSL_KEY_PASS as PASS,
  gmsslPki,
  spawnGmssl as gmssl,
} from "./_gmssl_util.ts";

const SUITES = Object.keys(TLCP_SUITES) as TlcpCipherSuite[];

/** The GmSSL-shaped PKI (server certificates name only the DNS name localhost; see `_gmssl_util.ts`). */
function pki() {
  const p = gmsslPki();
  const f = p.files;
  const creds = (who: "server" | "client"): TlcpCredentials =>
    tlcpCredentialsFromPem({
      signCert: f[`${who}_sign.crt`]!,
      signKey: f[`${who}_sign.key`]!,
      encCert: f[`${who}_enc.crt`]!,
      encKey: f[`${who}_enc.key`]!,
    });
  return { path: p.path, ca: parseCertificate(f["ca.crt"]!), server: creds("server"), client: creds("client") };
}

async function ourClientAgainstGmsslServer(
  suite: TlcpCipherSuite,
  clientCert: boolean,
  extra: Partial<TlcpClientOptions>,
): Promise<Outcome & { serverLog: string }> {
  const p = pki();
  const port = freePort();
  const args = ["tlcp_server", "-port", String(port), "-cert", p.path("gmssl_tlcp_server_chain.pem")];
  args.push("-key", p.path("gmssl_tlcp_server_keys.pem"), "-pass", PASS, "-cipher_suite", `TLS_${suite}`);
  if (clientCert) args.push("-cert_request", "-cacert", p.path("ca.crt"));
  const server = gmssl(args);
  const conn = await connectWhenUp(port);
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
  const p = pki();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const msg = `hello from gmssl ${suite}\n`;
  const input = p.path(`tlcp_in_${suite}.txt`);
  Deno.writeTextFileSync(input, msg);
  const args = [
    "tlcp_client",
    "-host",
    "localhost",
    "-port",
    String(port),
    "-cacert",
    p.path("ca.crt"),
    "-cipher_suite",
  ];
  args.push(`TLS_${suite}`, "-in", input);
  if (TLCP_SUITES[suite].kx === "ECDHE") {
    args.push("-cert", p.path("gmssl_tlcp_client_chain.pem"), "-key", p.path("gmssl_tlcp_client_keys.pem"));
    args.push("-pass", PASS);
  } else if (clientCert) {
    // GmSSL's client loads one chain for ECC suites: the signing certificate alone.
    args.push("-cert", p.path("gmssl_tlcp_client_sign.pem"), "-key", p.path("gmssl_tlcp_client_sign_key.pem"));
    args.push("-pass", PASS);
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
        credentials: p.server,
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
        // GmSSL 3 wants the ECDHE ClientKeyExchange inside a 2-byte length, CertificateVerify over the raw
        // messages and the signing certificate alone in ECC suites: the "gmssl" peer profile.
        const r = await ourClientAgainstGmsslServer(suite, clientCert, { peerProfile: "gmssl" });
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
