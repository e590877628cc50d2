import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { TLCP_SUITES, type TlcpCipherSuite } from "./suites.ts";
import { joined, makePair, seededRandom, testPki } from "./_test_util.ts";
import { TlcpSessionCache } from "./session_cache.ts";
import { createTlcpClient, createTlcpServer, TLCP_PEER_PROFILES, type TlcpClientOptions } from "./engine.ts";

const ALL = Object.keys(TLCP_SUITES) as TlcpCipherSuite[];
const enc = new TextEncoder();

function payload(n: number, seed: number): Uint8Array {
  const r = seededRandom(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

for (const suite of ALL) {
  const ecdhe = TLCP_SUITES[suite].kx === "ECDHE";
  for (const clientCert of [false, true]) {
    Deno.test(`TlcpEngine handshake ${suite} ${clientCert ? "with" : "without"} client certificates`, () => {
      const p = testPki();
      const pair = makePair(
        { cipherSuites: [suite], ...(clientCert ? { clientAuth: "require", clientCa: [p.ca] } : {}) },
        { cipherSuites: [suite], ...(clientCert ? { credentials: p.client } : {}) },
      );
      pair.client.engine.send(enc.encode("ping"));
      pair.pump();
      if (ecdhe && !clientCert) {
        // ECDHE needs the client's double certificates: the client cannot run the key exchange without them.
        assertEquals(pair.client.errors.map((e) => [e.alert, e.sent]), [["handshake_failure", true]]);
        assertEquals(pair.server.errors.map((e) => [e.alert, e.sent]), [["handshake_failure", false]]);
        return;
      }
      assertEquals(pair.server.errors, []);
      assertEquals(pair.client.errors, []);
      assert(pair.server.info && pair.client.info);
      assertEquals(pair.client.info.cipher, suite);
      assertEquals(pair.server.info.cipher, suite);
      assertEquals(pair.server.info.version, "TLCP");
      assertEquals(pair.server.info.group, TLCP_SUITES[suite].kx);
      assertEquals(pair.server.info.sni, "localhost");
      assertEquals(pair.client.info.peerCertificates, [p.server.signCertificate, p.server.encCertificate]);
      assertEquals(
        pair.server.info.peerCertificates,
        clientCert || ecdhe ? [p.client.signCertificate, p.client.encCertificate] : [],
      );
      assertEquals(new TextDecoder().decode(joined(pair.server.received)), "ping");
      pair.server.engine.send(enc.encode("pong"));
      pair.pump();
      assertEquals(new TextDecoder().decode(joined(pair.client.received)), "pong");
    });
  }
}

Deno.test("TlcpEngine ECDHE works with a server that does not otherwise ask for client certificates", () => {
  const p = testPki();
  const pair = makePair({ cipherSuites: ["ECDHE_SM4_GCM_SM3"] }, { credentials: p.client });
  pair.pump();
  assertEquals(pair.server.errors, []);
  assertEquals(pair.client.info?.cipher, "ECDHE_SM4_GCM_SM3");
});

Deno.test("TlcpEngine client without credentials offers only the ECC suites", () => {
  let pair = makePair({ cipherSuites: ["ECDHE_SM4_GCM_SM3", "ECC_SM4_CBC_SM3"] }, {});
  pair.pump();
  assertEquals(pair.client.info?.cipher, "ECC_SM4_CBC_SM3");
  pair = makePair({ cipherSuites: ["ECDHE_SM4_GCM_SM3", "ECC_SM4_CBC_SM3"] }, {
    cipherSuites: ["ECDHE_SM4_GCM_SM3", "ECC_SM4_CBC_SM3"],
  });
  pair.pump();
  assertEquals(pair.client.info?.cipher, "ECC_SM4_CBC_SM3");
});

Deno.test("TlcpEngine server requiring a client certificate rejects a client without one", () => {
  const p = testPki();
  const pair = makePair({ clientAuth: "require", clientCa: [p.ca] }, {});
  pair.pump();
  assertEquals(pair.server.errors.map((e) => e.alert), ["handshake_failure"]);
  assertEquals(pair.client.errors.map((e) => [e.alert, e.sent]), [["handshake_failure", false]]);
});

Deno.test("TlcpEngine server with clientAuth request accepts a client without certificates", () => {
  const p = testPki();
  const pair = makePair({ clientAuth: "request", clientCa: [p.ca] }, {});
  pair.pump();
  assertEquals(pair.server.errors, []);
  assertEquals(pair.server.info?.peerCertificates, []);
});

Deno.test("TlcpEngine client certificate from an unknown CA gets unknown_ca", () => {
  const p = testPki();
  const pair = makePair({ clientAuth: "require", clientCa: [p.otherCa] }, { credentials: p.client });
  pair.pump();
  assertEquals(pair.server.errors.map((e) => e.alert), ["unknown_ca"]);
  assertEquals(pair.client.errors.map((e) => e.alert), ["unknown_ca"]);
});

Deno.test("TlcpEngine client rejects a server from an unknown CA and a wrong name", () => {
  const p = testPki();
  let pair = makePair({}, { ca: [p.otherCa] });
  pair.pump();
  assertEquals(pair.client.errors.map((e) => [e.alert, e.sent]), [["unknown_ca", true]]);
  assertEquals(pair.server.errors.map((e) => [e.alert, e.sent]), [["unknown_ca", false]]);
  pair = makePair({}, { serverName: "example.com" });
  pair.pump();
  assertEquals(pair.client.errors.map((e) => e.alert), ["bad_certificate"]);
});

Deno.test("TlcpEngine client rejects an encryption certificate with signing-only key usage", () => {
  const p = testPki();
  const pair = makePair({ credentials: p.serverSignOnlyEnc }, {});
  pair.pump();
  assertEquals(pair.client.errors.map((e) => e.alert), ["unsupported_certificate"]);
  const unverified = makePair({ credentials: p.serverSignOnlyEnc }, { verifyServer: false });
  unverified.pump();
  assertEquals(unverified.client.errors.map((e) => e.alert), ["unsupported_certificate"]);
});

for (const suite of ALL) {
  Deno.test(`TlcpEngine session resumption ${suite}`, () => {
    const p = testPki();
    const cache = new TlcpSessionCache({ maxSize: 4 });
    const first = makePair({ sessionCache: cache, cipherSuites: [suite] }, {
      credentials: p.client,
      cipherSuites: [suite],
    });
    first.pump();
    const session = first.client.engine.session;
    assert(session && first.client.info && !first.client.info.resumed);
    assertEquals(cache.size, 1);
    const second = makePair({ sessionCache: cache, cipherSuites: [suite] }, {
      credentials: p.client,
      session,
      cipherSuites: [suite],
    });
    second.client.engine.send(enc.encode("again"));
    second.pump();
    assertEquals(second.server.errors, []);
    assert(second.client.info?.resumed && second.server.info?.resumed);
    assertEquals(second.server.info.peerCertificates, first.server.info!.peerCertificates);
    assertEquals(new TextDecoder().decode(joined(second.server.received)), "again");
    second.server.engine.send(enc.encode("back"));
    second.pump();
    assertEquals(new TextDecoder().decode(joined(second.client.received)), "back");
  });
}

Deno.test("TlcpEngine falls back to a full handshake for an unknown or evicted session", () => {
  const p = testPki();
  const cache = new TlcpSessionCache({ maxSize: 1 });
  const a = makePair({ sessionCache: cache }, {});
  a.pump();
  const b = makePair({ sessionCache: cache }, {});
  b.pump(); // evicts a's session
  const c = makePair({ sessionCache: cache }, { session: a.client.engine.session! });
  c.pump();
  assertEquals(c.client.errors, []);
  assertEquals(c.client.info?.resumed, false);
  const noCache = makePair({}, { session: b.client.engine.session!, credentials: p.client });
  noCache.pump();
  assertEquals(noCache.client.info?.resumed, false);
  assertEquals(noCache.client.engine.session, undefined); // no cache, no session id
});

Deno.test("TlcpEngine a session that ended in a fatal alert is not resumed", () => {
  const cache = new TlcpSessionCache();
  const a = makePair({ sessionCache: cache }, {});
  a.pump();
  assertEquals(cache.size, 1);
  a.server.engine.receive(new Uint8Array([23, 1, 1, 0, 40, ...new Uint8Array(40)])); // garbage: bad_record_mac
  assertEquals(a.server.errors.map((e) => e.alert), ["bad_record_mac"]);
  assertEquals(cache.size, 0);
  const b = makePair({ sessionCache: cache }, { session: a.client.engine.session! });
  b.pump();
  assertEquals(b.client.info?.resumed, false);
});

Deno.test("TlcpSessionCache expires sessions", () => {
  let now = 0;
  const cache = new TlcpSessionCache({ lifetimeMs: 1000, now: () => now });
  const s = { id: new Uint8Array([1]), masterSecret: new Uint8Array(48), cipher: "ECC_SM4_GCM_SM3" as const };
  cache.set({ ...s, peerCertificates: [], createdAt: 0 });
  assert(cache.get(s.id));
  now = 2000;
  assertEquals(cache.get(s.id), undefined);
});

Deno.test("TlcpSessionCache keeps 20480 sessions by default (OpenSSL's default), least recently used out", () => {
  const cache = new TlcpSessionCache();
  const id = (i: number) => new Uint8Array([i >> 16, (i >> 8) & 255, i & 255]);
  const add = (i: number) =>
    cache.set({
      id: id(i),
      masterSecret: new Uint8Array(48),
      cipher: "ECC_SM4_GCM_SM3",
      peerCertificates: [],
      createdAt: Date.now(),
    });
  for (let i = 0; i < 20480; i++) add(i);
  assertEquals(cache.size, 20480);
  assert(cache.get(id(0)), "the oldest of 20480 is still there");
  add(20480); // evicts the least recently used: 1 (0 was just used)
  assertEquals(cache.size, 20480);
  assert(cache.get(id(0)));
  assertEquals(cache.get(id(1)), undefined);
});

for (const suite of ["ECC_SM4_CBC_SM3", "ECDHE_SM4_GCM_SM3"] as const) {
  Deno.test(`TlcpEngine large transfers with random splits ${suite}`, () => {
    const p = testPki();
    for (const seed of [1, 2]) {
      const pair = makePair({ cipherSuites: [suite] }, { cipherSuites: [suite], credentials: p.client }, {
        splitSeed: seed,
      });
      const up = payload(100_000 + seed, seed);
      const down = payload(70_001, seed + 10);
      // Queued before the handshake, in uneven pieces.
      for (let off = 0; off < up.length; off += 33_333) pair.client.engine.send(up.subarray(off, off + 33_333));
      pair.pump();
      for (let off = 0; off < down.length; off += 7_000) pair.server.engine.send(down.subarray(off, off + 7_000));
      pair.pump();
      assertEquals(pair.server.errors, []);
      assertEquals(pair.client.errors, []);
      assertEquals(joined(pair.server.received), up);
      assertEquals(joined(pair.client.received), down);
    }
  });
}

Deno.test("TlcpEngine close_notify both ways", () => {
  const pair = makePair({}, {});
  pair.pump();
  pair.client.engine.send(enc.encode("last"));
  pair.client.engine.close();
  pair.client.engine.send(enc.encode("ignored"));
  pair.pump();
  assertEquals(new TextDecoder().decode(joined(pair.server.received)), "last");
  assert(pair.server.closed);
  assert(pair.client.closed); // the server answered with its own close_notify
  assertEquals(pair.server.errors, []);
  assertEquals(pair.client.errors, []);
});

Deno.test("TlcpEngine ALPN and SNI", () => {
  const pair = makePair({ alpnProtocols: ["h2", "http/1.1"] }, { alpnProtocols: ["http/1.1", "h2"] });
  pair.pump();
  assertEquals(pair.client.info?.alpn, "h2");
  assertEquals(pair.server.info?.alpn, "h2");
  assertEquals(pair.server.info?.sni, "localhost");
  const none = makePair({ alpnProtocols: ["h2"] }, { alpnProtocols: ["http/1.1"] });
  none.pump();
  assertEquals(none.server.errors.map((e) => e.alert), ["no_application_protocol"]);
  const ip = makePair({}, { serverName: "127.0.0.1" });
  ip.pump();
  assertEquals(ip.client.errors, []);
  assertEquals(ip.server.info?.sni, undefined);
});

Deno.test("TlcpEngine interop encodings: length-prefixed ECDHE key exchange and transcript CertificateVerify", () => {
  const p = testPki();
  for (const ecdheKeyExchangeEncoding of ["bare", "length-prefixed"] as const) {
    for (const certificateVerifyInput of ["sm3-hash", "transcript"] as const) {
      const pair = makePair({ cipherSuites: ["ECDHE_SM4_CBC_SM3"], clientAuth: "require", clientCa: [p.ca] }, {
        credentials: p.client,
        ecdheKeyExchangeEncoding,
        certificateVerifyInput,
      });
      pair.pump();
      assertEquals(pair.server.errors, []);
      assert(pair.server.info);
    }
  }
});

Deno.test("TlcpEngine server accepts a returning client whose CertificateVerify input changes either way", () => {
  // The server tries first the input this client key signed last time; both orders must still verify.
  const p = testPki();
  const inputs = ["transcript", "transcript", "sm3-hash", "sm3-hash", "transcript", "sm3-hash"] as const;
  for (const certificateVerifyInput of inputs) {
    const pair = makePair({ cipherSuites: ["ECC_SM4_GCM_SM3"], clientAuth: "require", clientCa: [p.ca] }, {
      credentials: p.client,
      certificateVerifyInput,
    });
    pair.pump();
    assertEquals(pair.server.errors, [], certificateVerifyInput);
    assert(pair.server.info);
  }
});

Deno.test("TlcpEngine no common suite is handshake_failure", () => {
  const pair = makePair({ cipherSuites: ["ECC_SM4_GCM_SM3"] }, { cipherSuites: ["ECC_SM4_CBC_SM3"] });
  pair.pump();
  assertEquals(pair.server.errors.map((e) => e.alert), ["handshake_failure"]);
  assertEquals(pair.client.errors.map((e) => [e.alert, e.sent]), [["handshake_failure", false]]);
});

Deno.test("TlcpEngine rejects bad options", () => {
  let threw = 0;
  try {
    makePair({ clientAuth: "require" }, {});
  } catch (e) {
    threw += e instanceof RangeError ? 1 : 0;
  }
  try {
    makePair({}, { ca: [] });
  } catch (e) {
    threw += e instanceof RangeError ? 1 : 0;
  }
  assertEquals(threw, 2);
});

Deno.test("TlcpEngine peerProfile sets the client's interop switches; an explicit switch wins", () => {
  const p = testPki();
  const server = { cipherSuites: ["ECC_SM4_GCM_SM3" as const], clientAuth: "require" as const, clientCa: [p.ca] };
  const certsSent = (client: Partial<TlcpClientOptions>) => {
    const pair = makePair(server, { credentials: p.client, ...client });
    pair.pump();
    assertEquals(pair.server.errors, []);
    return pair.server.info?.peerCertificates.length;
  };
  // standard: signing + encryption certificates; gmssl: the signing certificate alone.
  assertEquals(certsSent({}), 2);
  assertEquals(certsSent({ peerProfile: "standard" }), 2);
  assertEquals(certsSent({ peerProfile: "gmssl" }), 1);
  assertEquals(certsSent({ peerProfile: "gmssl", eccClientCertificates: "double" }), 2);
  assertEquals(TLCP_PEER_PROFILES.gmssl, {
    ecdheKeyExchangeEncoding: "length-prefixed",
    certificateVerifyInput: "transcript",
    eccClientCertificates: "sign-only",
  });
  // Our server takes either profile's ECDHE key exchange and CertificateVerify.
  for (const peerProfile of ["standard", "gmssl"] as const) {
    const pair = makePair({ cipherSuites: ["ECDHE_SM4_GCM_SM3"], clientAuth: "require", clientCa: [p.ca] }, {
      credentials: p.client,
      peerProfile,
    });
    pair.pump();
    assertEquals(pair.server.errors, []);
    assertEquals(pair.server.info?.cipher, "ECDHE_SM4_GCM_SM3");
  }
  assertThrowsRange(() => makePair({}, { peerProfile: "tongsuo" as "standard" }));
});

function assertThrowsRange(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert(e instanceof RangeError, String(e));
    return;
  }
  throw new Error("did not throw");
}

Deno.test("TlcpEngine with a copying transport (writeCopies) seals large writes through the shared scratch intact", () => {
  const p = testPki();
  for (const suite of ["ECC_SM4_GCM_SM3", "ECC_SM4_CBC_SM3"] as const) {
    const toClient: Uint8Array[] = [], toServer: Uint8Array[] = [], got: Uint8Array[] = [];
    const base = {
      onHandshake() {},
      onClose() {},
      onError: (e: Error) => {
        throw e;
      },
    };
    const server = createTlcpServer({ credentials: p.server, cipherSuites: [suite] }, {
      ...base,
      writeCopies: true,
      write: (b) => toClient.push(b.slice()), // copies, as the contract requires with writeCopies
      onData() {},
    });
    const client = createTlcpClient({ ca: [p.ca], serverName: "localhost" }, {
      ...base,
      write: (b) => toServer.push(b),
      onData: (b) => got.push(b.slice()),
    });
    server.start();
    client.start();
    const pump = () => {
      while (toClient.length + toServer.length > 0) {
        for (const b of toServer.splice(0)) server.receive(b);
        for (const b of toClient.splice(0)) client.receive(b);
      }
    };
    pump();
    assert(server.handshakeComplete && client.handshakeComplete);
    const a = payload(600 * 1024 + 3, 7), b = payload(70_000, 8);
    server.send(a);
    server.send(b);
    pump();
    assertEquals(joined(got), joined([a, b]), suite);
  }
});
