/** Our GM client against our GM server over real TCP sockets (TLS_SM4_GCM_SM3 / TLS_SM4_CCM_SM3, mutual auth). */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createTls13Client, createTls13Server } from "./mod.ts";
import type { Tls13CipherSuiteName } from "./suites.ts";
import { testPki } from "./testdata/pki.ts";
import { runOverSocket } from "./testdata/socket.ts";

for (const suite of ["TLS_SM4_GCM_SM3", "TLS_SM4_CCM_SM3"] as Tls13CipherSuiteName[]) {
  Deno.test(`tls13 ${suite} over TCP: curveSM2, sm2sig_sm3, client certificate, 256 KiB echo`, async () => {
    const pki = testPki();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const accepted = listener.accept();
    const clientConn = await Deno.connect({ hostname: "127.0.0.1", port });
    const serverConn = await accepted;
    listener.close();
    const server = runOverSocket(serverConn, (cb) =>
      createTls13Server({
        certificates: [pki.sm2Server],
        cipherSuites: [suite],
        groups: ["curveSM2"],
        clientAuth: "require",
        clientCaCertificates: [pki.sm2Root],
        alpn: ["h2", "http/1.1"],
      }, cb), { onData: (engine, data) => engine.send(data), onClose: (engine) => engine.close() });
    const client = runOverSocket(clientConn, (cb) =>
      createTls13Client({
        serverName: "localhost",
        trustedCertificates: [pki.sm2Root],
        cipherSuites: [suite],
        groups: ["curveSM2"],
        keyShares: ["curveSM2"],
        signatureSchemes: ["sm2sig_sm3"],
        certificate: pki.sm2Client,
        alpn: ["http/1.1"],
      }, cb));
    const [ci, si] = await Promise.all([client.handshake, server.handshake]);
    assertEquals([ci.cipher, ci.group, ci.alpn, si.sni], [suite, "curveSM2", "http/1.1", "localhost"]);
    assertEquals(si.peerCertificates, pki.sm2Client.chain);
    const data = crypto.getRandomValues(new Uint8Array(65536));
    const all = new Uint8Array(4 * data.length);
    for (let i = 0; i < 4; i++) {
      client.engine.send(data);
      all.set(data, i * data.length);
    }
    const echoed = await client.waitFor(all.length);
    assert(echoed.length === all.length && echoed.every((b, i) => b === all[i]));
    client.engine.close();
    client.close();
    const [ce, se] = await Promise.all([client.done, server.done]);
    assertEquals([ce, se], [undefined, undefined]);
  });
}
