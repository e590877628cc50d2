/**
 * Our client against our server, in memory: every suite × group × signature scheme, HelloRetryRequest, client
 * authentication, ALPN, SNI certificate choice, KeyUpdate under data, close_notify, large transfers in random
 * splits, and certificate failures.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { TlsEngineCallbacks } from "../../../api/tls.ts";
import { ContentType } from "./_codec.ts";
import { createTls13Client, createTls13Server, SM2_DEFAULT_SIGNER_ID } from "./mod.ts";
import type { Tls13ClientOptions } from "./client.ts";
import type { Tls13ServerOptions } from "./server.ts";
import type { Tls13CipherSuiteName } from "./suites.ts";
import type { Tls13GroupName } from "./groups.ts";
import { type Endpoint, endpoint, joined, prng, pump, type PumpOptions, randomSplitter } from "./testdata/harness.ts";
import { testPki } from "./testdata/pki.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function pair(
  clientOptions: Partial<Tls13ClientOptions>,
  serverOptions: Partial<Tls13ServerOptions>,
  echo = true,
): { c: Endpoint; s: Endpoint } {
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client({
      serverName: "localhost",
      trustedCertificates: [pki.sm2Root, pki.ecdsaRoot],
      ...clientOptions,
    }, cb)
  );
  const s = endpoint(
    (cb: TlsEngineCallbacks) =>
      createTls13Server({ certificates: [pki.sm2Server, pki.ecdsaServer], ...serverOptions }, cb),
    echo ? { onData: (ep, d) => ep.engine.send(d) } : {},
  );
  return { c, s };
}

function handshake(
  clientOptions: Partial<Tls13ClientOptions>,
  serverOptions: Partial<Tls13ServerOptions>,
  pumpOptions: PumpOptions = {},
): { c: Endpoint; s: Endpoint } {
  const p = pair(clientOptions, serverOptions);
  p.c.engine.start();
  p.s.engine.start();
  pump(p.c, p.s, pumpOptions);
  return p;
}

const SUITES: readonly Tls13CipherSuiteName[] = [
  "TLS_SM4_GCM_SM3",
  "TLS_SM4_CCM_SM3",
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];
const GROUPS: readonly Tls13GroupName[] = ["curveSM2", "x25519", "secp256r1"];

for (const suite of SUITES) {
  Deno.test(`tls13 engine ${suite} completes with every group and signature scheme and echoes data`, () => {
    const pki = testPki();
    for (const group of GROUPS) {
      for (const credential of [pki.sm2Server, pki.ecdsaServer]) {
        const { c, s } = pair({ cipherSuites: [suite], groups: [group] }, { certificates: [credential] });
        c.engine.start();
        c.engine.send(enc.encode(`hello ${suite} ${group}`)); // queued until the handshake completes
        pump(c, s);
        const what = `${suite}/${group}/${credential.scheme}`;
        assertEquals(c.error, undefined, what);
        assertEquals(s.error, undefined, what);
        assertEquals(c.info?.cipher, suite);
        assertEquals(s.info?.cipher, suite);
        assertEquals([c.info?.group, s.info?.group], [group, group]);
        assertEquals(c.info?.version, "TLSv1.3");
        assertEquals(c.info?.peerCertificates[0], credential.chain[0]);
        assertEquals(s.info?.sni, "localhost");
        assertEquals(dec.decode(joined(c.received)), `hello ${suite} ${group}`);
      }
    }
  });
}

Deno.test("tls13 engine sends a HelloRetryRequest when the client has no share for the server's group", () => {
  let sawHrr = false;
  const { c, s } = handshake(
    { groups: ["x25519", "curveSM2"], keyShares: ["x25519"], cipherSuites: ["TLS_SM4_GCM_SM3"] },
    { groups: ["curveSM2"] },
    {
      tamper: (d, from) => {
        // The HRR is a plaintext ServerHello record carrying the special random.
        if (from === "b" && d[0] === ContentType.handshake && d[5] === 2 && d[11] === 0xcf && d[12] === 0x21) {
          sawHrr = true;
        }
        return d;
      },
    },
  );
  assert(sawHrr);
  assertEquals([c.error, s.error], [undefined, undefined]);
  assertEquals([c.info?.group, s.info?.group], ["curveSM2", "curveSM2"]);
});

Deno.test("tls13 engine server-preference group selection forces a retry", () => {
  const { c, s } = handshake(
    { groups: ["x25519", "secp256r1"], keyShares: ["x25519"] },
    { groups: ["secp256r1", "x25519"], groupSelection: "server-preference" },
  );
  assertEquals([c.error, s.error], [undefined, undefined]);
  assertEquals(s.info?.group, "secp256r1");
});

Deno.test("tls13 engine uses the client's share by default (no retry)", () => {
  const { c, s } = handshake({ groups: ["x25519", "secp256r1"], keyShares: ["x25519"] }, {
    groups: ["secp256r1", "x25519"],
  });
  assertEquals([c.error, s.error], [undefined, undefined]);
  assertEquals(s.info?.group, "x25519");
});

Deno.test("tls13 engine without a common group fails with handshake_failure", () => {
  const { c, s } = handshake({ groups: ["x25519"] }, { groups: ["curveSM2"] });
  assertEquals(s.error?.alert, "handshake_failure");
  assertEquals([c.error?.alert, c.error?.sent], ["handshake_failure", false]);
});

Deno.test("tls13 engine without a common suite fails with handshake_failure", () => {
  const { c, s } = handshake({ cipherSuites: ["TLS_SM4_CCM_SM3"] }, { cipherSuites: ["TLS_SM4_GCM_SM3"] });
  assertEquals(s.error?.alert, "handshake_failure");
  assertEquals(c.error?.alert, "handshake_failure");
});

Deno.test("tls13 engine client authentication: required and presented (SM2 and ECDSA)", () => {
  const pki = testPki();
  for (const cred of [pki.sm2Client, pki.ecdsaClient]) {
    const { c, s } = handshake({ certificate: cred }, {
      clientAuth: "require",
      clientCaCertificates: [pki.sm2Root, pki.ecdsaRoot],
    });
    assertEquals([c.error, s.error], [undefined, undefined]);
    assertEquals(s.info?.peerCertificates, cred.chain);
  }
});

Deno.test("tls13 engine client authentication: optional and absent", () => {
  const pki = testPki();
  const { c, s } = handshake({}, { clientAuth: "request", clientCaCertificates: [pki.sm2Root] });
  assertEquals([c.error, s.error], [undefined, undefined]);
  assertEquals(s.info?.peerCertificates, []);
});

Deno.test("tls13 engine client authentication: required and absent gives certificate_required", () => {
  const pki = testPki();
  const { c, s } = handshake({}, { clientAuth: "require", clientCaCertificates: [pki.sm2Root] });
  assertEquals([s.error?.alert, s.error?.sent], ["certificate_required", true]);
  assertEquals([c.error?.alert, c.error?.sent], ["certificate_required", false]);
  assertEquals(s.info, undefined);
});

Deno.test("tls13 engine client authentication: certificate from an unknown CA gives unknown_ca", () => {
  const pki = testPki();
  const { c, s } = handshake({ certificate: pki.ecdsaClient }, {
    clientAuth: "require",
    clientCaCertificates: [pki.sm2Root],
  });
  assertEquals(s.error?.alert, "unknown_ca");
  assertEquals(c.error?.alert, "unknown_ca");
});

Deno.test("tls13 engine negotiates ALPN in server preference order", () => {
  const { c, s } = handshake({ alpn: ["http/1.1", "h2"] }, { alpn: ["h2", "http/1.1"] });
  assertEquals([c.info?.alpn, s.info?.alpn], ["h2", "h2"]);
  const none = handshake({ alpn: ["h2"] }, {});
  assertEquals([none.c.info?.alpn, none.s.info?.alpn], [undefined, undefined]);
});

Deno.test("tls13 engine without an ALPN overlap fails with no_application_protocol", () => {
  const { c, s } = handshake({ alpn: ["spdy/3"] }, { alpn: ["h2"] });
  assertEquals(s.error?.alert, "no_application_protocol");
  assertEquals(c.error?.alert, "no_application_protocol");
});

Deno.test("tls13 engine chooses the server certificate by SNI", () => {
  const pki = testPki();
  const servers = [pki.ecdsaServer, pki.otherServer];
  const a = handshake({ serverName: "other.test", trustedCertificates: [pki.otherRoot] }, { certificates: servers });
  assertEquals(a.c.error, undefined);
  assertEquals(a.c.info?.peerCertificates[0], pki.otherServer.chain[0]);
  const b = handshake({ serverName: "localhost", trustedCertificates: [pki.ecdsaRoot] }, { certificates: servers });
  assertEquals(b.c.error, undefined);
  assertEquals(b.c.info?.peerCertificates[0], pki.ecdsaServer.chain[0]);
  // GM suite and both certificates acceptable: the SM2 one is preferred for the SM suite.
  const g = handshake({ cipherSuites: ["TLS_SM4_GCM_SM3"] }, { certificates: [pki.ecdsaServer, pki.sm2Server] });
  assertEquals(g.c.info?.peerCertificates[0], pki.sm2Server.chain[0]);
  // A callback overrides the choice.
  const cb = handshake({ serverName: "gm.test" }, {
    certificates: servers,
    selectCertificate: (q) => (q.serverName === "gm.test" ? pki.sm2Server : undefined),
  });
  assertEquals(cb.c.error, undefined);
  assertEquals(cb.c.info?.peerCertificates[0], pki.sm2Server.chain[0]);
});

Deno.test("tls13 engine refuses a client that cannot verify any server certificate", () => {
  const pki = testPki();
  const { c, s } = handshake({ signatureSchemes: ["sm2sig_sm3"] }, { certificates: [pki.ecdsaServer] });
  assertEquals(s.error?.alert, "handshake_failure");
  assertEquals(c.error?.alert, "handshake_failure");
});

Deno.test("tls13 engine client rejects bad server certificates with the matching alert", () => {
  const pki = testPki();
  const expired = handshake({ trustedCertificates: [pki.expiredRoot] }, { certificates: [pki.expiredServer] });
  assertEquals(expired.c.error?.alert, "certificate_expired");
  assertEquals([expired.s.error?.alert, expired.s.error?.sent], ["certificate_expired", false]);
  const unknown = handshake({ trustedCertificates: [pki.otherRoot] }, {});
  assertEquals(unknown.c.error?.alert, "unknown_ca");
  const name = handshake({ serverName: "nope.test" }, {});
  assertEquals(name.c.error?.alert, "bad_certificate");
  const skip = handshake({ serverName: "nope.test", verifyServerCertificate: false, trustedCertificates: [] }, {});
  assertEquals(skip.c.error, undefined);
});

Deno.test("tls13 engine SM2 CertificateVerify ID: RFC 8998 by default, configurable, both accepted", () => {
  const gm = { cipherSuites: ["TLS_SM4_GCM_SM3"] as Tls13CipherSuiteName[], groups: ["curveSM2"] as Tls13GroupName[] };
  const pki = testPki();
  // Server signs with the SM2 default ID; the client accepts it by default.
  const a = handshake(gm, { certificates: [pki.sm2Server], sm2SignerId: SM2_DEFAULT_SIGNER_ID });
  assertEquals(a.c.error, undefined);
  // A client that insists on the RFC 8998 ID refuses it.
  const b = handshake({ ...gm, sm2VerifyIds: [new TextEncoder().encode("TLSv1.3+GM+Cipher+Suite")] }, {
    certificates: [pki.sm2Server],
    sm2SignerId: SM2_DEFAULT_SIGNER_ID,
  });
  assertEquals(b.c.error?.alert, "decrypt_error");
});

Deno.test("tls13 engine KeyUpdate in both directions under data", () => {
  const rand = prng(7);
  const { c, s } = pair({ cipherSuites: ["TLS_SM4_GCM_SM3"] }, {});
  c.engine.start();
  pump(c, s);
  assert(c.engine.handshakeComplete && s.engine.handshakeComplete);
  const sent: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const d = crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 3000)));
    sent.push(d);
    c.engine.send(d);
    if (i % 5 === 0) c.engine.keyUpdate!(i % 10 === 0); // sometimes asks the server to update too
    if (i % 7 === 0) s.engine.keyUpdate!(false);
    if (i % 3 === 0) pump(c, s, { split: randomSplitter(rand, 700) });
  }
  pump(c, s, { split: randomSplitter(rand, 700) });
  assertEquals([c.error, s.error], [undefined, undefined]);
  assertEquals(joined(s.received), joined(sent));
  assertEquals(joined(c.received), joined(sent)); // the echo came back across server key updates
});

Deno.test("tls13 engine close_notify: half-close both ways", () => {
  const { c, s } = pair({}, {}, false);
  c.engine.start();
  pump(c, s);
  c.engine.send(enc.encode("request"));
  c.engine.close();
  c.engine.send(enc.encode("ignored after close"));
  pump(c, s);
  assert(s.closed);
  assertEquals(dec.decode(joined(s.received)), "request");
  s.engine.send(enc.encode("response after the client's close_notify"));
  s.engine.close();
  pump(c, s);
  assert(c.closed);
  assertEquals(dec.decode(joined(c.received)), "response after the client's close_notify");
  assertEquals([c.error, s.error, c.errors, s.errors], [undefined, undefined, 0, 0]);
});

for (const suite of ["TLS_SM4_GCM_SM3", "TLS_AES_128_GCM_SHA256"] as const) {
  Deno.test(`tls13 engine ${suite} moves 1 MiB each way through random splits`, () => {
    const rand = prng(suite.length);
    const { c, s } = pair({ cipherSuites: [suite] }, {});
    const split = randomSplitter(rand, 20000);
    c.engine.start();
    pump(c, s, { split });
    const data = new Uint8Array(1 << 20);
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    for (let i = 0; i < data.length;) {
      const n = Math.min(data.length - i, 1 + Math.floor(rand() * 100000));
      c.engine.send(data.subarray(i, i + n));
      i += n;
    }
    pump(c, s, { split });
    assertEquals([c.error, s.error], [undefined, undefined]);
    assert(joined(s.received).every((b, i) => b === data[i]) && joined(s.received).length === data.length);
    assert(joined(c.received).every((b, i) => b === data[i]) && joined(c.received).length === data.length);
  });
}

Deno.test("tls13 engine without middlebox compatibility mode sends no change_cipher_spec", () => {
  let ccs = 0;
  const { c, s } = handshake({ middleboxCompat: false }, {}, {
    tamper: (d) => {
      for (let o = 0; o + 5 <= d.length; o += 5 + ((d[o + 3]! << 8) | d[o + 4]!)) {
        if (d[o] === ContentType.changeCipherSpec) ccs++;
      }
      return d;
    },
  });
  assertEquals([c.error, s.error, ccs], [undefined, undefined, 0]);
  const compat = handshake({}, {}, {
    tamper: (d) => {
      for (let o = 0; o + 5 <= d.length; o += 5 + ((d[o + 3]! << 8) | d[o + 4]!)) {
        if (d[o] === ContentType.changeCipherSpec) ccs++;
      }
      return d;
    },
  });
  assertEquals([compat.c.error, compat.s.error, ccs], [undefined, undefined, 2]);
});

Deno.test("tls13 engine completes with the byte stream cut into one-byte chunks", () => {
  const rand = prng(99);
  const { c, s } = handshake({}, {}, { split: randomSplitter(rand, 1) });
  assertEquals([c.error, s.error], [undefined, undefined]);
});
