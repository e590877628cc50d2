/**
 * Interop with GmSSL 3 (`gmssl tls13_server` / `tls13_client`) over loopback with the RFC 8998 suites
 * (TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3; curveSM2, sm2sig_sm3), both directions, with and without client
 * certificates. Skipped unless `GMSSL_BIN` points at a `gmssl` binary (its directory is added to
 * LD_LIBRARY_PATH for libgmssl). Nothing here builds GmSSL.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseCertificate } from "../../../crypto/mod.ts";
import { createTls13Client, createTls13Server, loadTls13Credential, type Tls13CipherSuiteName } from "./mod.ts";
import { runOverSocket } from "./testdata/socket.ts";
import { connectWhenUp, GMSSL_BIN, GMSSL_KEY_PASS, gmsslPki, spawnGmssl, waitForListen } from "../tlcp/_gmssl_util.ts";
import { freePort } from "../../../../tests/fakes/ports.ts";

const SUITES: Tls13CipherSuiteName[] = ["TLS_SM4_GCM_SM3", "TLS_SM4_CCM_SM3"];
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Our client against `gmssl tls13_server -www` (answers HTTP 200 with the request echoed). */
async function ourClient(suite: Tls13CipherSuiteName, clientCert: boolean) {
  const p = gmsslPki();
  const port = freePort();
  const args = ["tls13_server", "-port", String(port), "-cert", p.path("gmssl_tls13_server_chain.pem")];
  args.push("-key", p.path("gmssl_tls13_server_key.pem"), "-pass", GMSSL_KEY_PASS, "-cipher_suite", suite);
  args.push("-supported_group", "sm2p256v1", "-sig_alg", "sm2sig_sm3", "-www");
  if (clientCert) args.push("-cert_request", "-cacert", p.path("ca.crt"));
  const server = spawnGmssl(args);
  const killer = setTimeout(() => server.kill("SIGKILL"), 8000);
  let result;
  try {
    await waitForListen(port);
    const conn = await connectWhenUp(port);
    const request = `GET /gmssl-${suite} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
    let text = "";
    const s = runOverSocket(
      conn,
      (cb) =>
        createTls13Client({
          serverName: "localhost",
          trustedCertificates: [parseCertificate(p.files["ca.crt"]!)],
          cipherSuites: [suite],
          groups: ["curveSM2"],
          keyShares: ["curveSM2"],
          signatureSchemes: ["sm2sig_sm3"],
          ...(clientCert ? { certificate: loadTls13Credential(p.files["client.crt"]!, p.files["client.key"]!) } : {}),
        }, cb),
      {
        onData: (engine, data) => {
          text += dec.decode(data);
          // -www answers with the request echoed as the body, and keeps the connection open.
          if (!text.includes(request)) return;
          engine.close();
          s.close();
        },
      },
    );
    const info = await s.handshake;
    s.engine.send(enc.encode(request));
    const err = await s.done;
    result = { info, err, text, request };
  } finally {
    clearTimeout(killer);
    try {
      server.kill("SIGTERM");
    } catch { /* exited */ }
  }
  const out = await server.output();
  return { ...result, serverOut: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** `gmssl tls13_client -in FILE` against our server, which echoes what it got and closes. */
async function gmsslClient(suite: Tls13CipherSuiteName, clientCert: boolean) {
  const p = gmsslPki();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const msg = `hello from gmssl ${suite}\n`;
  const input = p.path(`tls13_in_${suite}.txt`);
  Deno.writeTextFileSync(input, msg);
  const args = ["tls13_client", "-host", "127.0.0.1", "-port", String(port), "-server_name", "localhost"];
  args.push("-cacert", p.path("ca.crt"), "-cipher_suite", suite, "-supported_group", "sm2p256v1");
  args.push("-sig_alg", "sm2sig_sm3", "-in", input);
  if (clientCert) {
    args.push("-cert", p.path("gmssl_tls13_client_chain.pem"), "-key", p.path("gmssl_tls13_client_key.pem"));
    args.push("-pass", GMSSL_KEY_PASS);
  }
  const client = spawnGmssl(args);
  const killer = setTimeout(() => client.kill("SIGKILL"), 8000);
  const exited = client.status.then(() => undefined);
  const conn = await Promise.race([listener.accept(), exited]);
  listener.close();
  if (!conn) {
    clearTimeout(killer);
    const out = await client.output();
    throw new Error(`gmssl tls13_client exited early: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
  }
  const s = runOverSocket(
    conn,
    (cb) =>
      createTls13Server({
        certificates: [loadTls13Credential(p.files["server.crt"]!, p.files["server.key"]!)],
        cipherSuites: [suite],
        groups: ["curveSM2"],
        ...(clientCert
          ? { clientAuth: "require" as const, clientCaCertificates: [parseCertificate(p.files["ca.crt"]!)] }
          : {}),
      }, cb),
    {
      onData: (engine, data) => {
        if (!dec.decode(data).includes("hello from gmssl")) return;
        engine.send(enc.encode(`echo: ${dec.decode(data)}`));
        engine.close();
      },
    },
  );
  let info;
  try {
    info = await s.handshake;
  } catch { /* reported through done */ }
  const err = await s.done;
  const out = await client.output();
  clearTimeout(killer);
  return {
    info,
    err,
    msg,
    received: dec.decode(s.received()),
    clientOut: dec.decode(out.stdout) + dec.decode(out.stderr),
  };
}

for (const suite of SUITES) {
  for (const clientCert of [false, true]) {
    const label = `${suite}${clientCert ? " with a client certificate" : ""}`;
    Deno.test({
      name: `tls13 client ↔ GmSSL tls13_server ${label}`,
      ignore: !GMSSL_BIN,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const r = await ourClient(suite, clientCert);
        assertEquals(r.err, undefined, r.serverOut);
        assertEquals([r.info.version, r.info.cipher, r.info.group], ["TLSv1.3", suite, "curveSM2"]);
        assert(r.text.startsWith("HTTP/1.0 200 OK"), `${r.text}\n${r.serverOut}`);
        assert(r.text.includes(r.request), r.text);
      },
    });
    Deno.test({
      name: `tls13 server ↔ GmSSL tls13_client ${label}`,
      ignore: !GMSSL_BIN,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const r = await gmsslClient(suite, clientCert);
        assertEquals(r.err, undefined, r.clientOut);
        assertEquals([r.info?.version, r.info?.cipher, r.info?.group], ["TLSv1.3", suite, "curveSM2"], r.clientOut);
        assertEquals(r.info?.peerCertificates.length ?? 0, clientCert ? 2 : 0, r.clientOut);
        assertEquals(r.received, r.msg);
        assert(r.clientOut.includes(`echo: ${r.msg}`), r.clientOut);
      },
    });
  }
}
