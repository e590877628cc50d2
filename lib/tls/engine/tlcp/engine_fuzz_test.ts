import { ok as assert } from "node:assert/strict";
import { concat } from "./_codec.ts";
import { ContentType } from "./record.ts";
import type { TlcpCipherSuite } from "./suites.ts";
import { joined, makePair, record, seededRandom, type Side, splitRecords, testPki } from "./_test_util.ts";

/** One random structural mutation: flips, fixed bytes, truncation, insertion, duplication. */
function mutate(b: Uint8Array, rnd: () => number): Uint8Array {
  const at = () => Math.floor(rnd() * b.length);
  switch (Math.floor(rnd() * 6)) {
    case 0: {
      const c = b.slice();
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) c[at()]! ^= 1 << Math.floor(rnd() * 8);
      return c;
    }
    case 1: {
      const c = b.slice();
      c[at()] = rnd() < 0.5 ? 0 : 0xff;
      return c;
    }
    case 2:
      return b.slice(0, at());
    case 3: {
      const i = at();
      return concat(b.subarray(0, i), new Uint8Array([(rnd() * 256) | 0]), b.subarray(i));
    }
    case 4: {
      const i = at(), j = Math.min(b.length, i + 1 + Math.floor(rnd() * 40));
      return concat(b.subarray(0, j), b.subarray(i, j), b.subarray(j));
    }
    default: {
      // A length field: the byte after a handshake type at a message boundary, or anywhere small.
      const c = b.slice();
      const i = Math.min(c.length - 1, Math.floor(rnd() * Math.min(c.length, 64)));
      c[i] = (c[i]! + 1 + Math.floor(rnd() * 3)) & 0xff;
      return c;
    }
  }
}

/** Mutates the plaintext handshake bytes queued in `side` (up to its first ChangeCipherSpec), re-framed. */
function mutateFlight(side: Side, rnd: () => number): void {
  const recs = splitRecords(joined(side.outbox));
  side.outbox.length = 0;
  const ccs = recs.findIndex((r) => r.type === ContentType.ccs);
  const plain = ccs < 0 ? recs : recs.slice(0, ccs);
  const rest = ccs < 0 ? [] : recs.slice(ccs);
  const hs = mutate(joined(plain.map((r) => r.body)), rnd);
  for (let o = 0; o < hs.length; o += 16384) side.outbox.push(record(22, hs.subarray(o, o + 16384)));
  for (const r of rest) side.outbox.push(record(r.type, r.body, r.version));
}

/** The invariants: at most one error per side, every error is a TLS alert, nothing thrown (pump would throw). */
function checkSides(...sides: Side[]): void {
  for (const s of sides) {
    assert(s.errors.length <= 1, `more than one error: ${s.errors.map((e) => e.message).join("; ")}`);
    if (s.errors.length === 1) assert(s.info === undefined || s.errors[0]!.sent !== undefined);
  }
}

Deno.test("TlcpEngine fuzz: mutated ClientHello (seeded, 300 cases)", () => {
  const rnd = seededRandom(1234);
  for (let i = 0; i < 300; i++) {
    const pair = makePair({}, { alpnProtocols: ["h2"] });
    mutateFlight(pair.client, rnd);
    pair.pump();
    checkSides(pair.server, pair.client);
  }
});

Deno.test("TlcpEngine fuzz: mutated server flight (seeded, 120 cases, ECC and ECDHE)", () => {
  const p = testPki();
  const rnd = seededRandom(99);
  for (let i = 0; i < 120; i++) {
    const suite: TlcpCipherSuite = i % 2 ? "ECC_SM4_CBC_SM3" : "ECDHE_SM4_GCM_SM3";
    const pair = makePair({ cipherSuites: [suite], clientAuth: "request", clientCa: [p.ca] }, {
      credentials: p.client,
    });
    pair.step("client");
    mutateFlight(pair.server, rnd);
    pair.pump();
    checkSides(pair.server, pair.client);
  }
});

Deno.test("TlcpEngine fuzz: mutated client key exchange flight (seeded, 80 cases)", () => {
  const p = testPki();
  const rnd = seededRandom(4242);
  for (let i = 0; i < 80; i++) {
    const suite: TlcpCipherSuite = i % 2 ? "ECC_SM4_GCM_SM3" : "ECDHE_SM4_CBC_SM3";
    const pair = makePair({ cipherSuites: [suite], clientAuth: "require", clientCa: [p.ca] }, {
      credentials: p.client,
    });
    pair.step("client");
    pair.step("server");
    mutateFlight(pair.client, rnd);
    pair.pump();
    checkSides(pair.server, pair.client);
    // A mutation the server accepted must still have agreed on keys, or Finished would have failed.
    if (pair.server.info) assert(pair.client.info && pair.client.errors.length === 0);
  }
});

Deno.test("TlcpEngine fuzz: random record streams after the handshake (seeded, 200 cases)", () => {
  const rnd = seededRandom(5);
  const pair0 = makePair({}, {});
  pair0.pump();
  for (let i = 0; i < 200; i++) {
    const pair = makePair({ cipherSuites: [i % 2 ? "ECC_SM4_CBC_SM3" : "ECC_SM4_GCM_SM3"] }, {});
    pair.pump();
    const n = Math.floor(rnd() * 120);
    const body = Uint8Array.from({ length: n }, () => (rnd() * 256) | 0);
    const type = [20, 21, 22, 23][Math.floor(rnd() * 4)]!;
    pair.server.engine.receive(record(type, body));
    pair.pump();
    checkSides(pair.server, pair.client);
    assert(pair.server.errors.length === 1, "a forged record must end the connection");
  }
});
