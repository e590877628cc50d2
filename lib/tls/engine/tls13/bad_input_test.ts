/**
 * Hostile and broken input: random bytes, an HTTP request, truncated records, tiny-record floods, oversized
 * records, tampered records, a wrong Finished, a ClientHello after the handshake, and a seeded fuzz of
 * handshake messages. Every case must end with exactly one `onError` carrying the right alert, never an
 * exception out of the engine.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { TlsEngineCallbacks } from "../../../api/tls.ts";
import { TlsAlertError } from "../../../api/tls.ts";
import { ContentType, HandshakeType, Writer } from "./_codec.ts";
import { encodeServerHello, parseClientHello } from "./messages.ts";
import { createTls13Client, createTls13Server } from "./mod.ts";
import { MAX_PLAINTEXT } from "./record.ts";
import { type Endpoint, endpoint, prng, pump } from "./testdata/harness.ts";
import { testPki } from "./testdata/pki.ts";
import { scriptedClient } from "./testdata/scripted.ts";

function server(): Endpoint {
  const pki = testPki();
  const s = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Server({ certificates: [pki.ecdsaServer, pki.sm2Server] }, cb)
  );
  s.engine.start();
  return s;
}

function client(): Endpoint {
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client({ serverName: "localhost", trustedCertificates: [pki.ecdsaRoot, pki.sm2Root] }, cb)
  );
  c.engine.start();
  return c;
}

/** The client's first flight (ClientHello record). */
function clientHelloRecord(): Uint8Array {
  const c = client();
  return c.outbox.splice(0)[0]!;
}

function assertOneError(ep: Endpoint, what: string): void {
  assertEquals(ep.errors, 1, `${what}: expected one onError`);
  assert(ep.error instanceof TlsAlertError, what);
  assertEquals(ep.error.sent, true, what);
}

Deno.test("tls13 server ends random bytes with one alert", () => {
  const rand = prng(1);
  for (let i = 0; i < 40; i++) {
    const s = server();
    const junk = new Uint8Array(1 + Math.floor(rand() * 3000));
    for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rand() * 256);
    if (i % 2 === 0) junk[0] = 22; // looks like a handshake record half the time
    if (i % 4 === 0) junk.set([22, 3, 1], 0);
    s.engine.receive(junk);
    s.engine.receive(junk); // more junk after the failure is ignored
    if (s.errors === 0) {
      // Only a plausible, still-incomplete record may leave the server waiting.
      assert(junk.length < 5 + ((junk[3]! << 8) | junk[4]!), `junk ${i} was accepted`);
      continue;
    }
    assertOneError(s, `junk ${i}`);
    assertEquals(s.info, undefined);
  }
});

Deno.test("tls13 client ends random bytes from the server with one alert", () => {
  const rand = prng(2);
  for (let i = 0; i < 40; i++) {
    const c = client();
    const junk = new Uint8Array(6 + Math.floor(rand() * 2000));
    for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rand() * 256);
    junk.set([22, 3, 3, (junk.length - 5) >> 8, (junk.length - 5) & 255], 0);
    c.engine.receive(junk);
    assertOneError(c, `junk ${i}`);
  }
});

Deno.test("tls13 server answers an HTTP request with unexpected_message", () => {
  const s = server();
  s.engine.receive(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example\r\n\r\n"));
  assertOneError(s, "http");
  assertEquals(s.error?.alert, "unexpected_message");
  // The alert went out in the clear: 21 3 3 0 2 2 10.
  assertEquals(s.outbox.at(-1), new Uint8Array([21, 3, 3, 0, 2, 2, 10]));
});

Deno.test("tls13 server waits on a truncated record and fails on what follows", () => {
  const s = server();
  const ch = clientHelloRecord();
  s.engine.receive(ch.subarray(0, 40));
  assertEquals([s.errors, s.outbox.length], [0, 0]);
  s.engine.receive(new Uint8Array([0xff, 0xff, 0xff, 0xff])); // the ClientHello body is now garbage...
  s.engine.receive(ch.subarray(44)); // ...and the record completes
  assertOneError(s, "truncated");
});

Deno.test("tls13 server accepts a ClientHello re-framed into one-byte records", () => {
  const ch = clientHelloRecord();
  const s = server();
  const body = ch.subarray(5);
  const parts: number[] = [];
  for (const b of body) parts.push(22, 3, 3, 0, 1, b);
  s.engine.receive(new Uint8Array(parts));
  assertEquals(s.errors, 0);
  assert(s.outbox.length > 0); // it answered with its flight
});

Deno.test("tls13 server refuses a plaintext record of 2^14 + 1 bytes with record_overflow", () => {
  const s = server();
  const rec = new Uint8Array(5 + MAX_PLAINTEXT + 1);
  rec.set([22, 3, 3, (MAX_PLAINTEXT + 1) >> 8, (MAX_PLAINTEXT + 1) & 255]);
  s.engine.receive(rec);
  assertOneError(s, "overflow");
  assertEquals(s.error?.alert, "record_overflow");
});

Deno.test("tls13 server ends a flood of empty records with unexpected_message", () => {
  const sc = scriptedClient();
  sc.deliver(sc.protect(ContentType.handshake, sc.finished));
  assertEquals(sc.server.errors, 0);
  assert(sc.server.engine.handshakeComplete);
  sc.useAppKeys();
  const flood: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) flood.push(sc.protect(ContentType.applicationData, new Uint8Array(0)));
  for (const r of flood) sc.deliver(r);
  assertOneError(sc.server, "flood");
  assertEquals(sc.server.error?.alert, "unexpected_message");
});

Deno.test("tls13 engine answers a tampered record with bad_record_mac", () => {
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client({ serverName: "localhost", trustedCertificates: [pki.sm2Root, pki.ecdsaRoot] }, cb)
  );
  const s = server();
  c.engine.start();
  pump(c, s);
  c.engine.send(new Uint8Array(100).fill(7));
  const rec = c.outbox.splice(0)[0]!;
  rec[rec.length - 3]! ^= 0x40;
  s.engine.receive(rec);
  assertOneError(s, "tamper");
  assertEquals(s.error?.alert, "bad_record_mac");
  pump(c, s);
  assertEquals([c.error?.alert, c.error?.sent], ["bad_record_mac", false]);
});

Deno.test("tls13 server answers a wrong client Finished with decrypt_error", () => {
  const sc = scriptedClient();
  const bad = sc.finished.slice();
  bad[bad.length - 1]! ^= 1;
  sc.deliver(sc.protect(ContentType.handshake, bad));
  assertOneError(sc.server, "finished");
  assertEquals(sc.server.error?.alert, "decrypt_error");
  assertEquals(sc.server.info, undefined);
});

Deno.test("tls13 server answers a ClientHello after the handshake with unexpected_message", () => {
  const sc = scriptedClient();
  sc.deliver(sc.protect(ContentType.handshake, sc.finished));
  assert(sc.server.engine.handshakeComplete);
  sc.useAppKeys();
  sc.deliver(sc.protect(ContentType.handshake, clientHelloRecord().subarray(5)));
  assertOneError(sc.server, "renegotiation");
  assertEquals(sc.server.error?.alert, "unexpected_message");
  // The alert is protected under the server's application key and reaches the client.
  assertEquals(sc.alerts.at(-1), [2, 10]);
});

Deno.test("tls13 server refuses application data and change_cipher_spec at the wrong time", () => {
  const early = scriptedClient();
  early.deliver(early.protect(ContentType.applicationData, new Uint8Array([1, 2, 3])));
  assertEquals(early.server.error?.alert, "unexpected_message");
  const ccs = scriptedClient();
  ccs.deliver(ccs.protect(ContentType.handshake, ccs.finished));
  ccs.deliver(new Uint8Array([20, 3, 3, 0, 1, 1]));
  assertEquals(ccs.server.error?.alert, "unexpected_message");
  const order = scriptedClient();
  order.deliver(order.protect(ContentType.handshake, new Uint8Array([HandshakeType.certificateVerify, 0, 0, 0])));
  assertEquals(order.server.error?.alert, "unexpected_message");
});

function mutate(rand: () => number, input: Uint8Array): Uint8Array {
  const b = Array.from(input);
  const kind = Math.floor(rand() * 5);
  const at = Math.floor(rand() * b.length);
  if (kind === 0) b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
  else if (kind === 1) b[at] = Math.floor(rand() * 256);
  else if (kind === 2) b.splice(at, 1 + Math.floor(rand() * 4));
  else if (kind === 3) b.splice(at, 0, Math.floor(rand() * 256));
  else b.length = Math.max(1, at);
  return new Uint8Array(b);
}

Deno.test("tls13 server survives a seeded fuzz of ClientHello records", () => {
  const rand = prng(1234);
  const base = clientHelloRecord();
  let failures = 0;
  for (let i = 0; i < 150; i++) {
    let m = base;
    for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) m = mutate(rand, m);
    const s = server();
    s.engine.receive(m);
    assert(s.errors <= 1, `mutation ${i}`);
    if (s.errors === 1) {
      assertOneError(s, `mutation ${i}`);
      failures++;
    }
  }
  // The rest changed ignored bytes (the random, a session ID) or left a record incomplete, which waits.
  assert(failures > 30, `only ${failures} of 150 mutations were refused`);
});

Deno.test("tls13 client survives a seeded fuzz of the server's flight", () => {
  const rand = prng(4321);
  const pki = testPki();
  const s = endpoint((cb: TlsEngineCallbacks) => createTls13Server({ certificates: [pki.ecdsaServer] }, cb));
  s.engine.receive(clientHelloRecord());
  const flight = s.outbox.splice(0)[0]!;
  for (let i = 0; i < 150; i++) {
    const c = client(); // a different random and key share: the flight does not match it anyway past the hello
    let m = flight;
    for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) m = mutate(rand, m);
    c.engine.receive(m);
    assert(c.errors <= 1, `mutation ${i}`);
    if (c.errors === 1) assertOneError(c, `mutation ${i}`);
  }
});

Deno.test("tls13 server survives a seeded fuzz of protected handshake messages", () => {
  const rand = prng(777);
  for (let i = 0; i < 40; i++) {
    const sc = scriptedClient();
    let m = sc.finished;
    for (let k = 1 + Math.floor(rand() * 2); k > 0; k--) m = mutate(rand, m);
    sc.deliver(sc.protect(ContentType.handshake, m));
    sc.deliver(sc.protect(ContentType.handshake, sc.finished));
    assert(sc.server.errors <= 1, `mutation ${i}`);
    if (sc.server.errors === 1) assertOneError(sc.server, `mutation ${i}`);
    // Otherwise it completed, or a mutated length left it waiting for the rest of a message.
  }
});

function fakeEarlyRecord(n: number): Uint8Array {
  const r = crypto.getRandomValues(new Uint8Array(5 + n));
  r.set([23, 3, 3, n >> 8, n & 255]);
  return r;
}

Deno.test("tls13 server rejects 0-RTT by skipping the early records and completes a full handshake", () => {
  const sc = scriptedClient({}, "TLS_AES_128_GCM_SHA256", [fakeEarlyRecord(300), fakeEarlyRecord(1200)]);
  sc.deliver(sc.protect(ContentType.handshake, sc.finished));
  assertEquals(sc.server.errors, 0);
  assert(sc.server.engine.handshakeComplete);
  // The server did not accept early data in its EncryptedExtensions (it would list extension 42).
  const ee = sc.serverMessages.find(([t]) => t === HandshakeType.encryptedExtensions)![1];
  assert(!ee.some((_, i) => ee[i] === 0 && ee[i + 1] === 42));
});

Deno.test("tls13 server skips only a bounded amount of early data", () => {
  const records: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) records.push(fakeEarlyRecord(16000));
  const sc = scriptedClient({ maxEarlyDataSkip: 32768 }, "TLS_AES_128_GCM_SHA256", records);
  assertOneError(sc.server, "early data budget");
  assertEquals(sc.server.error?.alert, "bad_record_mac");
});

/** A plaintext handshake record carrying one message. */
function handshakeRecord(type: number, body: Uint8Array): Uint8Array {
  const r = new Uint8Array(9 + body.length);
  r.set([22, 3, 3, (body.length + 4) >> 8, (body.length + 4) & 255, type, 0, body.length >> 8, body.length & 255]);
  r.set(body, 9);
  return r;
}

/** A fresh client and the legacy_session_id of its ClientHello. */
function clientWithSession(): { c: Endpoint; sessionId: Uint8Array } {
  const c = client();
  const ch = parseClientHello(c.outbox.splice(0)[0]!.subarray(9));
  return { c, sessionId: ch.sessionId };
}

Deno.test("tls13 client refuses a TLS 1.2 ServerHello with protocol_version", () => {
  const { c, sessionId } = clientWithSession();
  const w = new Writer();
  w.u16(0x0303).bytes(new Uint8Array(32).fill(5)).vec(1, (w) => w.bytes(sessionId)).u16(0xc02f).u8(0);
  w.vec(2, () => {});
  c.engine.receive(handshakeRecord(HandshakeType.serverHello, w.finish()));
  assertOneError(c, "tls12");
  assertEquals(c.error?.alert, "protocol_version");
});

Deno.test("tls13 client refuses a HelloRetryRequest for a group it already shared, and a second one", () => {
  const a = clientWithSession();
  const hrr = (group: number, sessionId: Uint8Array) =>
    handshakeRecord(
      HandshakeType.serverHello,
      encodeServerHello({ random: new Uint8Array(32), sessionId, cipherSuite: 0x1301, selectedGroup: group }),
    );
  a.c.engine.receive(hrr(0x001d, a.sessionId)); // x25519: the share it sent
  assertEquals(a.c.error?.alert, "illegal_parameter");
  const b = clientWithSession();
  b.c.engine.receive(hrr(0x0017, b.sessionId));
  assertEquals(b.c.errors, 0);
  const ch2 = b.c.outbox.splice(0);
  assert(ch2.length > 0); // change_cipher_spec + the second ClientHello
  b.c.engine.receive(hrr(0x0029, b.sessionId));
  assertEquals(b.c.error?.alert, "unexpected_message");
  const d = clientWithSession();
  d.c.engine.receive(hrr(0x0017, new Uint8Array(32))); // wrong session ID echo
  assertEquals(d.c.error?.alert, "illegal_parameter");
});
