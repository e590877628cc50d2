import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { TlsAlertError } from "../../../api/tls.ts";
import { concat } from "./_codec.ts";
import { tlcpKeyBlock } from "./prf.ts";
import { ContentType, keyBlockLength, protectionsFromKeyBlock, TlcpRecordLayer } from "./record.ts";
import { TlcpSessionCache } from "./session_cache.ts";
import { TLCP_SUITES, type TlcpCipherSuite } from "./suites.ts";
import { joined, makePair, type Pair, record, seededRandom, type Side, splitRecords, testPki } from "./_test_util.ts";

/** Exactly one error, with this alert, and it was sent by us. */
function failedWith(side: Side, alert: string, sent = true): void {
  assertEquals(side.errors.map((e) => [e.alert, e.sent]), [[alert, sent]]);
  assert(side.errors[0] instanceof TlsAlertError);
}

/** The alert record the side wrote last (plaintext alerts only). */
function lastPlainAlert(out: Uint8Array[]): number[] | undefined {
  const recs = splitRecords(joined(out)).filter((r) => r.type === ContentType.alert);
  const r = recs[recs.length - 1];
  return r ? [...r.body] : undefined;
}

function serverOnly(bytes: Uint8Array, opts: Parameters<typeof makePair>[0] = {}): Side {
  const pair = makePair(opts, {});
  pair.client.outbox.length = 0; // drop the real ClientHello
  pair.server.engine.receive(bytes);
  return pair.server;
}

Deno.test("TlcpEngine server answers random bytes with one alert, never a throw", () => {
  const rnd = seededRandom(7);
  for (let i = 0; i < 200; i++) {
    const n = 1 + Math.floor(rnd() * 300);
    const b = Uint8Array.from({ length: n }, () => (rnd() * 256) | 0);
    if (i % 3 === 0) b[0] = 22; // look like a handshake record sometimes
    if (i % 6 === 0) (b[1] = 1), (b[2] = 1);
    const s = serverOnly(b);
    assert(s.errors.length <= 1);
    if (s.errors.length === 1) assert(s.errors[0]!.sent);
  }
});

Deno.test("TlcpEngine client answers random server bytes with one alert", () => {
  const rnd = seededRandom(8);
  for (let i = 0; i < 100; i++) {
    const pair = makePair({}, {});
    pair.server.outbox.length = 0;
    const b = Uint8Array.from({ length: 1 + Math.floor(rnd() * 200) }, () => (rnd() * 256) | 0);
    if (i % 2 === 0) b.set([22, 1, 1], 0);
    pair.client.engine.receive(b);
    assert(pair.client.errors.length <= 1);
  }
});

Deno.test("TlcpEngine an HTTP request or a TLS 1.2 ClientHello on the TLCP port", () => {
  let s = serverOnly(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  failedWith(s, "unexpected_message");
  assertEquals(lastPlainAlert(s.outbox), [2, 10]);
  // A TLS 1.2 ClientHello: record version 0x0301, client_version 0x0303.
  const hello = concat(new Uint8Array([3, 3]), new Uint8Array(32), new Uint8Array([0, 0, 2, 0xc0, 0x2f, 1, 0]));
  const msg = concat(new Uint8Array([1, 0, 0, hello.length]), hello);
  s = serverOnly(record(22, msg, 0x0301));
  failedWith(s, "protocol_version");
  assertEquals(lastPlainAlert(s.outbox), [2, 70]);
});

Deno.test("TlcpEngine truncated records wait, truncated messages are decode_error", () => {
  const pair = makePair({}, {});
  const hello = joined(pair.client.outbox);
  pair.client.outbox.length = 0;
  pair.server.engine.receive(hello.subarray(0, hello.length - 1));
  assertEquals(pair.server.errors, []);
  assertEquals(pair.server.outbox.length, 0);
  pair.server.engine.receive(hello.subarray(hello.length - 1));
  assert(pair.server.outbox.length > 0); // now it answers

  // A ClientHello cut short inside a complete record.
  const recs = splitRecords(hello);
  const body = recs[0]!.body;
  const cut = body.slice(0, 40);
  cut[1] = 0, cut[2] = 0, cut[3] = 36; // handshake length matches the cut body
  failedWith(serverOnly(record(22, cut)), "decode_error");
});

Deno.test("TlcpEngine handshake in one-byte records completes", () => {
  const pair = makePair({}, {});
  const hello = joined(pair.client.outbox);
  pair.client.outbox.length = 0;
  const body = splitRecords(hello)[0]!.body;
  for (const b of body) pair.server.engine.receive(record(22, new Uint8Array([b])));
  pair.pump();
  assertEquals(pair.server.errors, []);
  assert(pair.client.info);
});

Deno.test("TlcpEngine a 64 KiB handshake message in one-byte records is linear work, then too large", () => {
  const pair = makePair({}, {});
  pair.client.outbox.length = 0;
  const start = performance.now();
  // A ClientHello claiming 65535 bytes, delivered one byte per record: buffered, not yet complete.
  pair.server.engine.receive(record(22, new Uint8Array([1, 0, 0xff, 0xff])));
  const chunk: Uint8Array[] = [];
  for (let i = 0; i < 65_000; i++) chunk.push(record(22, new Uint8Array([0])));
  pair.server.engine.receive(joined(chunk));
  assertEquals(pair.server.errors, []);
  assert(performance.now() - start < 2000, "reassembly is not linear");
  // A message over the 64 KiB limit is refused as soon as its header arrives.
  const q = makePair({}, {});
  q.client.outbox.length = 0;
  q.server.engine.receive(record(22, new Uint8Array([1, 1, 0, 1])));
  failedWith(q.server, "illegal_parameter");
});

Deno.test("TlcpEngine oversize records are record_overflow", () => {
  failedWith(serverOnly(concat(new Uint8Array([22, 1, 1, 0x40, 0x01]), new Uint8Array(0x4001))), "record_overflow");
  const pair = makePair({}, {});
  pair.pump();
  pair.server.engine.receive(new Uint8Array([23, 1, 1, 0x48, 0x01]));
  failedWith(pair.server, "record_overflow");
});

Deno.test("TlcpEngine flood of empty records is unexpected_message", () => {
  for (const suite of ["ECC_SM4_CBC_SM3", "ECC_SM4_GCM_SM3"] as const) {
    const pair = recordedPair(suite);
    for (let i = 0; i < 100; i++) pair.client.engine.send(new Uint8Array(0)); // dropped: nothing is sent
    assertEquals(pair.client.outbox, []);
    // Forge empty records with the client's keys instead.
    const keys = clientKeys(pair, suite);
    for (let i = 0; i < 40; i++) pair.server.engine.receive(keys.seal(ContentType.applicationData, new Uint8Array(0)));
    failedWith(pair.server, "unexpected_message");
  }
});

for (const suite of ["ECC_SM4_CBC_SM3", "ECDHE_SM4_GCM_SM3"] as const) {
  Deno.test(`TlcpEngine tampered application record is bad_record_mac (${TLCP_SUITES[suite].mode})`, () => {
    const p = testPki();
    for (const where of [6, 21, -1]) {
      const pair = makePair({ cipherSuites: [suite] }, { credentials: p.client });
      pair.pump();
      pair.client.engine.send(new TextEncoder().encode("a record worth tampering with"));
      const rec = pair.client.outbox[0]!;
      rec[where < 0 ? rec.length + where : where]! ^= 0x80;
      pair.pump();
      failedWith(pair.server, "bad_record_mac");
      assertEquals(pair.server.received, []);
      failedWith(pair.client, "bad_record_mac", false);
    }
  });
}

/** Rewrites the first handshake message of `type` in `side`'s queued flight. */
function tamperHandshake(side: Side, type: number, edit: (body: Uint8Array) => Uint8Array): void {
  const recs = splitRecords(joined(side.outbox));
  side.outbox.length = 0;
  let done = false;
  for (const r of recs) {
    let body = r.body;
    if (!done && r.type === 22 && body[0] === type) {
      const inner = edit(body.slice(4));
      body = concat(
        new Uint8Array([type, inner.length >>> 16, (inner.length >>> 8) & 0xff, inner.length & 0xff]),
        inner,
      );
      done = true;
    }
    side.outbox.push(record(r.type, body, r.version));
  }
  assert(done, `no handshake message ${type} to tamper with`);
}

Deno.test("TlcpEngine wrong ServerKeyExchange signature is decrypt_error (ECC and ECDHE)", () => {
  const p = testPki();
  for (const suite of ["ECC_SM4_GCM_SM3", "ECDHE_SM4_CBC_SM3"] as const) {
    const pair = makePair({ cipherSuites: [suite] }, { credentials: p.client });
    pair.step("client");
    tamperHandshake(pair.server, 12, (b) => {
      b[b.length - 1]! ^= 1; // the last byte of s: still valid DER, wrong signature
      return b;
    });
    pair.pump();
    failedWith(pair.client, "decrypt_error");
    failedWith(pair.server, "decrypt_error", false);
  }
});

Deno.test("TlcpEngine altered handshake transcript makes Finished fail with decrypt_error", () => {
  const pair = makePair({}, { serverName: "localhost" });
  // Change one letter of the SNI: keys stay the same, the transcripts differ.
  const hello = pair.client.outbox[0]!;
  const i = indexOfBytes(hello, new TextEncoder().encode("localhost"));
  assert(i > 0);
  hello[i]! ^= 0x20;
  pair.pump();
  failedWith(pair.server, "decrypt_error");
});

Deno.test("TlcpEngine wrong CertificateVerify is decrypt_error", () => {
  const p = testPki();
  const pair = makePair({ clientAuth: "require", clientCa: [p.ca] }, { credentials: p.client });
  pair.step("client");
  pair.step("server");
  tamperHandshake(pair.client, 15, (b) => {
    b[b.length - 1]! ^= 1;
    return b;
  });
  pair.pump();
  failedWith(pair.server, "decrypt_error");
});

Deno.test("TlcpEngine unexpected handshake order is unexpected_message", () => {
  const pair = makePair({}, {});
  pair.client.outbox.length = 0;
  // ServerHelloDone sent to a server waiting for ClientHello.
  pair.server.engine.receive(record(22, new Uint8Array([14, 0, 0, 0])));
  failedWith(pair.server, "unexpected_message");
  // ChangeCipherSpec before any keys.
  const q = makePair({}, {});
  q.client.outbox.length = 0;
  q.server.engine.receive(record(20, new Uint8Array([1])));
  failedWith(q.server, "unexpected_message");
  // Application data during the handshake.
  const r = makePair({}, {});
  r.client.outbox.length = 0;
  r.server.engine.receive(record(23, new Uint8Array([1, 2, 3])));
  failedWith(r.server, "unexpected_message");
});

Deno.test("TlcpEngine peer alerts are reported as received", () => {
  const pair = makePair({}, {});
  pair.client.outbox.length = 0;
  pair.server.engine.receive(record(21, new Uint8Array([2, 40])));
  failedWith(pair.server, "handshake_failure", false);
  assertEquals(pair.server.outbox, []); // nothing answered after a fatal alert
});

/** The client's write protection, rebuilt from what the wire and the session reveal (tests only). */
function clientKeys(pair: Pair, suite: TlcpCipherSuite, server = false): TlcpRecordLayer {
  const keys = transcriptKeys.get(pair);
  assert(keys, "pair was not recorded");
  const kb = tlcpKeyBlock(keys.master, keys.clientRandom, keys.serverRandom, keyBlockLength(TLCP_SUITES[suite].mode));
  const prot = protectionsFromKeyBlock(TLCP_SUITES[suite].mode, kb, !server);
  const layer = new TlcpRecordLayer();
  layer.setWriteProtection(prot.write);
  // Skip the sequence numbers already used: Finished was record 0; application data followed.
  for (let i = 0; i < keys.sent(server); i++) layer.seal(ContentType.applicationData, new Uint8Array(1));
  return layer;
}

const transcriptKeys = new WeakMap<
  Pair,
  { master: Uint8Array; clientRandom: Uint8Array; serverRandom: Uint8Array; sent(server: boolean): number }
>();

/** A completed pair with a session cache, its randoms read off the wire, so tests can forge records. */
function recordedPair(suite: TlcpCipherSuite): Pair {
  const p = testPki();
  const cache = new TlcpSessionCache();
  const pair = makePair({ cipherSuites: [suite], sessionCache: cache }, {
    cipherSuites: [suite],
    credentials: p.client,
  });
  const hello = joined(pair.client.outbox);
  pair.step("client");
  const sh = joined(pair.server.outbox);
  pair.pump();
  const clientRandom = splitRecords(hello)[0]!.body.slice(6, 38);
  const serverRandom = splitRecords(sh)[0]!.body.slice(6, 38);
  transcriptKeys.set(pair, {
    master: pair.client.engine.session!.masterSecret,
    clientRandom,
    serverRandom,
    sent: () => 1,
  });
  return pair;
}

for (const suite of ["ECC_SM4_CBC_SM3", "ECDHE_SM4_GCM_SM3"] as const) {
  Deno.test(`TlcpEngine renegotiation attempts are refused with no_renegotiation (${suite})`, () => {
    // A ClientHello to the server after the handshake.
    let pair = recordedPair(suite);
    const hello = new Uint8Array([1, 0, 0, 4, 1, 1, 0, 0]);
    pair.server.engine.receive(clientKeys(pair, suite).seal(ContentType.handshake, hello));
    failedWith(pair.server, "no_renegotiation");
    pair.pump();
    failedWith(pair.client, "no_renegotiation", false);
    // A HelloRequest to the client after the handshake.
    pair = recordedPair(suite);
    pair.client.engine.receive(clientKeys(pair, suite, true).seal(ContentType.handshake, new Uint8Array([0, 0, 0, 0])));
    failedWith(pair.client, "no_renegotiation");
  });
}

Deno.test("TlcpEngine nothing is called after onError; send/receive/close are inert", () => {
  const s = serverOnly(new TextEncoder().encode("GET /"));
  const writes = s.outbox.length;
  s.engine.receive(new Uint8Array([22, 1, 1, 0, 0]));
  s.engine.send(new Uint8Array([1]));
  s.engine.close();
  assertEquals(s.outbox.length, writes);
  assertEquals(s.errors.length, 1);
});

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("TlcpEngine ECDHE server refuses a client Certificate that is empty or lacks the encryption certificate", () => {
  const p = testPki();
  const certList = (certs: Uint8Array[]) => {
    const items = certs.map((c) =>
      concat(new Uint8Array([c.length >>> 16, (c.length >>> 8) & 0xff, c.length & 0xff]), c)
    );
    const list = concat(...items);
    return concat(new Uint8Array([list.length >>> 16, (list.length >>> 8) & 0xff, list.length & 0xff]), list);
  };
  for (const certs of [[], [p.client.signCertificate]]) {
    const pair = makePair({ cipherSuites: ["ECDHE_SM4_GCM_SM3"] }, { credentials: p.client });
    pair.step("client");
    pair.step("server");
    tamperHandshake(pair.client, 11, () => certList(certs));
    pair.pump();
    failedWith(pair.server, "handshake_failure");
    failedWith(pair.client, "handshake_failure", false);
  }
});

Deno.test("TlcpEngine server accepts an ECC client that sends only its signing certificate", () => {
  const p = testPki();
  const pair = makePair({ clientAuth: "require", clientCa: [p.ca] }, {
    credentials: p.client,
    eccClientCertificates: "sign-only",
  });
  pair.pump();
  assertEquals(pair.server.errors, []);
  assertEquals(pair.server.info?.peerCertificates, [p.client.signCertificate]);
});
