/**
 * Session tickets and PSK resumption, our client against our server in memory: every suite resumes, across a
 * HelloRetryRequest, with key rotation and client certificates; forged, garbled, expired, foreign-key and
 * mismatched tickets get a full handshake; a wrong binder is `decrypt_error`.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import type { TlsEngineCallbacks } from "../../../api/tls.ts";
import { createTls13Client, createTls13Server, SessionTicketKeys, Tls13SessionCache } from "./mod.ts";
import type { Tls13ClientOptions } from "./client.ts";
import type { Tls13ServerOptions } from "./server.ts";
import type { Tls13CipherSuiteName } from "./suites.ts";
import {
  decodeTicketState,
  encodeTicketState,
  SESSION_TICKET_KEY_LENGTH,
  type Tls13ClientSession,
} from "./session_ticket.ts";
import { createDecipheriv, createHmac } from "node:crypto";
import { type Endpoint, endpoint, joined, pump } from "./testdata/harness.ts";
import { ExtensionType, Writer } from "./_codec.ts";
import { type Extension, parseClientHello, parseServerHello } from "./messages.ts";
import { testPki } from "./testdata/pki.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One connection: handshake, one echoed message, close. */
function connect(
  clientOptions: Partial<Tls13ClientOptions>,
  serverOptions: Partial<Tls13ServerOptions>,
  message = "ping",
): { c: Endpoint; s: Endpoint } {
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client(
      { serverName: "localhost", trustedCertificates: [pki.sm2Root, pki.ecdsaRoot], ...clientOptions },
      cb,
    )
  );
  const s = endpoint(
    (cb: TlsEngineCallbacks) =>
      createTls13Server({ certificates: [pki.sm2Server, pki.ecdsaServer], ...serverOptions }, cb),
    { onData: (ep, d) => ep.engine.send(d) },
  );
  c.engine.start();
  c.engine.send(enc.encode(message));
  pump(c, s);
  return { c, s };
}

function ok(ep: { c: Endpoint; s: Endpoint }, message = "ping"): void {
  assertEquals(ep.c.error, undefined);
  assertEquals(ep.s.error, undefined);
  assertEquals(dec.decode(joined(ep.c.received)), message);
}

const SUITES: readonly Tls13CipherSuiteName[] = [
  "TLS_SM4_GCM_SM3",
  "TLS_SM4_CCM_SM3",
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];

for (const suite of SUITES) {
  Deno.test(`tls13 resumption ${suite}: a ticket from a full handshake resumes, and the resumed one issues the next`, () => {
    const keys = SessionTicketKeys.random();
    const cache = new Tls13SessionCache();
    const groups = suite.startsWith("TLS_SM4") ? ["curveSM2" as const] : ["x25519" as const];
    const copt = { cipherSuites: [suite], groups, sessionCache: cache };
    const full = connect(copt, { sessionTickets: { keys } });
    ok(full);
    assertEquals([full.c.info?.resumed, full.s.info?.resumed], [false, false]);
    assertEquals(cache.size, 1);
    for (let i = 0; i < 2; i++) {
      const r = connect(copt, { sessionTickets: { keys } });
      ok(r);
      assertEquals([r.c.info?.resumed, r.s.info?.resumed], [true, true], `resumption ${i}`);
      assertEquals(r.c.info?.cipher, suite);
      assertEquals(r.c.info?.group, groups[0]);
      // The server chain is remembered from the full handshake.
      assertEquals(r.c.info?.peerCertificates, full.c.info?.peerCertificates);
      assertEquals(cache.size, 1);
    }
  });
}

Deno.test("tls13 resumption survives a HelloRetryRequest (binder over message_hash + HRR + ClientHello2)", () => {
  const keys = SessionTicketKeys.random();
  const cache = new Tls13SessionCache();
  const sopt = {
    sessionTickets: { keys },
    groups: ["secp256r1", "x25519"] as const,
    groupSelection: "server-preference" as const,
  };
  ok(connect({ sessionCache: cache, groups: ["x25519", "secp256r1"], cipherSuites: ["TLS_AES_128_GCM_SHA256"] }, sopt));
  const r = connect(
    { sessionCache: cache, groups: ["x25519", "secp256r1"], cipherSuites: ["TLS_AES_128_GCM_SHA256"] },
    sopt,
  );
  ok(r);
  assertEquals([r.c.info?.resumed, r.s.info?.resumed, r.s.info?.group], [true, true, "secp256r1"]);
});

Deno.test("tls13 resumption: rotated keys open old tickets; a server without the key does a full handshake", () => {
  const k1 = new SessionTicketKeys([new Uint8Array(80).fill(1)]);
  const rotated = new SessionTicketKeys([new Uint8Array(80).fill(2), new Uint8Array(80).fill(1)]);
  const other = new SessionTicketKeys([new Uint8Array(80).fill(3)]);
  const cache = new Tls13SessionCache({ ticketsPerKey: 1 });
  ok(connect({ sessionCache: cache }, { sessionTickets: { keys: k1 } }));
  const r = connect({ sessionCache: cache }, { sessionTickets: { keys: rotated } });
  ok(r);
  assertEquals(r.s.info?.resumed, true);
  // The new ticket is sealed with the first (new) key, which `other` does not hold.
  const f = connect({ sessionCache: cache }, { sessionTickets: { keys: other } });
  ok(f);
  assertEquals([f.c.info?.resumed, f.s.info?.resumed], [false, false]);
});

Deno.test("tls13 resumption: client certificates carry over to the resumed handshake", () => {
  const pki = testPki();
  const keys = SessionTicketKeys.random();
  const cache = new Tls13SessionCache();
  const sopt = { sessionTickets: { keys }, clientAuth: "require" as const, clientCaCertificates: [pki.sm2Root] };
  const full = connect({ sessionCache: cache, certificate: pki.sm2Client }, sopt);
  ok(full);
  const r = connect({ sessionCache: cache, certificate: pki.sm2Client }, sopt);
  ok(r);
  assertEquals(r.s.info?.resumed, true);
  assertEquals(r.s.info?.peerCertificates, full.s.info?.peerCertificates);
  assert(r.s.info!.peerCertificates.length > 0);
});

/** A cache holding one ticket from a full handshake with `keys`; `edit` rewrites it. */
function primed(
  keys: SessionTicketKeys,
  edit: (s: Tls13ClientSession) => Tls13ClientSession,
  now?: () => number,
): Tls13SessionCache {
  const cache = new Tls13SessionCache(now ? { now } : {});
  ok(connect({ sessionCache: cache }, { sessionTickets: { keys } }));
  const s = cache.take("localhost")!;
  cache.put("localhost", edit(s));
  return cache;
}

Deno.test("tls13 resumption: a garbled or forged ticket gets a full handshake", () => {
  const keys = SessionTicketKeys.random();
  const edits: ((t: Uint8Array) => Uint8Array)[] = [
    (t) => t.map((b, i) => i === 40 ? b ^ 1 : b), // ciphertext bit
    (t) => t.map((b, i) => i === t.length - 1 ? b ^ 1 : b), // MAC bit
    (t) => t.subarray(0, t.length - 16), // truncated
    () => crypto.getRandomValues(new Uint8Array(120)), // random
    (t) =>
      new SessionTicketKeys([new Uint8Array([...t.subarray(0, 16), ...new Uint8Array(64)])]).seal(
        encodeTicketState({
          suite: 0x00c6,
          psk: new Uint8Array(32),
          issuedAt: Date.now(),
          lifetime: 7200,
          ageAdd: 0,
          sni: "localhost",
          alpn: "",
          peerCertificates: [],
        }),
      ), // forged under a key with the right name but other secrets
  ];
  for (const [i, edit] of edits.entries()) {
    const cache = primed(keys, (s) => ({ ...s, ticket: edit(s.ticket) }));
    const r = connect({ sessionCache: cache }, { sessionTickets: { keys } });
    ok(r);
    assertEquals([r.c.info?.resumed, r.s.info?.resumed], [false, false], `edit ${i}`);
  }
});

Deno.test("tls13 resumption: a wrong binder is decrypt_error, and the next connection still resumes", () => {
  const keys = SessionTicketKeys.random();
  const cache = primed(keys, (s) => ({ ...s, psk: s.psk.map((b) => b ^ 0xff) }));
  const r = connect({ sessionCache: cache }, { sessionTickets: { keys } });
  assertEquals(r.s.error?.alert, "decrypt_error");
  assertEquals(r.c.error?.alert, "decrypt_error");
  assertEquals(r.s.errors, 1);
  // Other connections are unaffected: a fresh full handshake then a resumption.
  const cache2 = new Tls13SessionCache();
  ok(connect({ sessionCache: cache2 }, { sessionTickets: { keys } }));
  assertEquals(connect({ sessionCache: cache2 }, { sessionTickets: { keys } }).s.info?.resumed, true);
});

Deno.test("tls13 resumption: an expired ticket (server clock past its lifetime) gets a full handshake", () => {
  const keys = SessionTicketKeys.random();
  const cache = primed(keys, (s) => s);
  const later = new Date(Date.now() + 7201_000);
  const r = connect({ sessionCache: cache }, { sessionTickets: { keys }, now: () => later });
  ok(r);
  assertEquals(r.s.info?.resumed, false);
  // A shorter configured lifetime applies to tickets already issued.
  const cache2 = primed(keys, (s) => s);
  const soon = new Date(Date.now() + 61_000);
  assertEquals(
    connect({ sessionCache: cache2 }, { sessionTickets: { keys, lifetime: 60 }, now: () => soon }).s.info?.resumed,
    false,
  );
  // The client does not offer a ticket past its lifetime.
  let t = Date.now();
  const cache3 = primed(keys, (s) => s, () => t);
  t += 7201_000;
  assertEquals(cache3.take("localhost"), undefined);
});

Deno.test("tls13 resumption: another SNI, a suite of another hash, or a server without tickets: full handshake", () => {
  const keys = SessionTicketKeys.random();
  const pki = testPki();
  // SNI: the ticket was issued for localhost; offered to the same server under another name.
  const cache = primed(keys, (s) => s);
  const moved = cache.take("localhost")!;
  cache.put("other.test", moved);
  const r1 = connect({ sessionCache: cache, serverName: "other.test", verifyServerCertificate: false }, {
    sessionTickets: { keys },
    certificates: [pki.sm2Server],
  });
  ok(r1);
  assertEquals(r1.s.info?.resumed, false);
  // Hash: a SHA-384 ticket offered while the server picks a SHA-256 suite.
  const c2 = new Tls13SessionCache();
  ok(connect({ sessionCache: c2, cipherSuites: ["TLS_AES_256_GCM_SHA384"] }, { sessionTickets: { keys } }));
  const r2 = connect({ sessionCache: c2, cipherSuites: ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"] }, {
    sessionTickets: { keys },
    cipherSuites: ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"],
  });
  ok(r2);
  assertEquals([r2.s.info?.cipher, r2.s.info?.resumed], ["TLS_AES_128_GCM_SHA256", false]);
  // No tickets configured: the offer is ignored.
  const c3 = primed(keys, (s) => s);
  const r3 = connect({ sessionCache: c3 }, {});
  ok(r3);
  assertEquals(r3.s.info?.resumed, false);
});

Deno.test("SessionTicketKeys rejects keys that are not 80 bytes and opens only its own tickets", () => {
  assertThrows(() => new SessionTicketKeys([new Uint8Array(79)]), /key 0 is 79 bytes, expected 80/);
  assertThrows(() => new SessionTicketKeys([new Uint8Array(80), new Uint8Array(81)]), /key 1 is 81 bytes/);
  assertThrows(() => new SessionTicketKeys([]), /at least one key/);
  const k = SessionTicketKeys.random();
  const plain = enc.encode("resumption state");
  assertEquals(dec.decode(k.open(k.seal(plain))!), "resumption state");
  assertEquals(SessionTicketKeys.random().open(k.seal(plain)), undefined);
  assertEquals(k.open(new Uint8Array(0)), undefined);
  const state = {
    suite: 0x00c6,
    psk: new Uint8Array(32).fill(7),
    issuedAt: 1_765_000_000_123,
    lifetime: 7200,
    ageAdd: 0xfedcba98,
    sni: "localhost",
    alpn: "h2",
    peerCertificates: [new Uint8Array([1, 2, 3])],
  };
  assertEquals(decodeTicketState(encodeTicketState(state)), state);
  assertEquals(decodeTicketState(new Uint8Array([9, 9, 9])), undefined);
});

Deno.test("Tls13SessionCache keeps max_session_keys servers, newest ticket first, none when 0", () => {
  const s = (n: number): Tls13ClientSession => ({
    ticket: new Uint8Array([n]),
    suite: 0x1301,
    psk: new Uint8Array(32),
    receivedAt: Date.now(),
    lifetime: 100,
    ageAdd: 0,
    alpn: undefined,
    peerCertificates: [],
  });
  const c = new Tls13SessionCache({ maxKeys: 2, ticketsPerKey: 2 });
  c.put("a", s(1));
  c.put("a", s(2));
  c.put("a", s(3));
  c.put("b", s(4));
  c.put("c", s(5));
  assertEquals(c.size, 2);
  assertEquals(c.take("a"), undefined);
  assertEquals(c.take("c")?.ticket[0], 5);
  const off = new Tls13SessionCache({ maxKeys: 0 });
  off.put("a", s(1));
  assertEquals(off.take("a"), undefined);
  const two = new Tls13SessionCache({ ticketsPerKey: 2 });
  two.put("a", s(1));
  two.put("a", s(2));
  two.put("a", s(3));
  assertEquals([two.take("a")?.ticket[0], two.take("a")?.ticket[0], two.take("a")], [3, 2, undefined]);
});

/** The ClientHello body a client with a primed cache sends (it offers a ticket), and the server's keys. */
function offeringHello(): { body: Uint8Array; keys: SessionTicketKeys } {
  const keys = SessionTicketKeys.random();
  const cache = primed(keys, (s) => s);
  const pki = testPki();
  const c = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Client({ serverName: "localhost", trustedCertificates: [pki.sm2Root], sessionCache: cache }, cb)
  );
  c.engine.start();
  const rec = c.outbox.splice(0)[0]!;
  return { body: rec.subarray(9), keys };
}

/** Re-encodes `body` with its extensions passed through `edit`. */
function rewrite(body: Uint8Array, edit: (exts: Extension[]) => Extension[]): Uint8Array {
  const ch = parseClientHello(body);
  const w = new Writer(1024);
  w.u16(ch.legacyVersion).bytes(ch.random).vec8(ch.sessionId);
  w.vec(2, (w) => {
    for (const s of ch.cipherSuites) w.u16(s);
  });
  w.vec8(ch.compressionMethods);
  w.vec(2, (w) => {
    for (const e of edit([...ch.extensions])) w.u16(e.type).vec16(e.data);
  });
  return w.finish();
}

/** Feeds a ClientHello body to a ticket-enabled server; returns it after the first flight. */
function serve(body: Uint8Array, keys: SessionTicketKeys): Endpoint {
  const pki = testPki();
  const s = endpoint((cb: TlsEngineCallbacks) =>
    createTls13Server({ certificates: [pki.sm2Server, pki.ecdsaServer], sessionTickets: { keys } }, cb)
  );
  s.engine.start();
  const r = new Uint8Array(9 + body.length);
  r.set([22, 3, 1, (body.length + 4) >> 8, (body.length + 4) & 255, 1, 0, body.length >> 8, body.length & 255]);
  r.set(body, 9);
  s.engine.receive(r);
  return s;
}

Deno.test("tls13 server: malformed pre_shared_key offers end with one alert, psk_ke alone gets a full handshake", () => {
  const { body, keys } = offeringHello();
  // Untouched, the offer is accepted (the ServerHello carries pre_shared_key).
  const selected = (ep: Endpoint) =>
    parseServerHello(ep.outbox[0]!.subarray(9, 9 + ((ep.outbox[0]![7]! << 8) | ep.outbox[0]![8]!)), true)
      .selectedIdentity;
  const good = serve(body, keys);
  assertEquals([good.errors, selected(good)], [0, 0]);
  const cases: [string, (e: Extension[]) => Extension[], string | undefined][] = [
    [
      "no psk_key_exchange_modes",
      (e) => e.filter((x) => x.type !== ExtensionType.pskKeyExchangeModes),
      "missing_extension",
    ],
    [
      "pre_shared_key not last",
      (e) => [...e.slice(0, -1).slice(0, 2), e.at(-1)!, ...e.slice(2, -1)],
      "illegal_parameter",
    ],
    ["two identities, one binder", (e) =>
      e.map((x) => {
        if (x.type !== ExtensionType.preSharedKey) return x;
        const r = new Writer(512);
        const ids = x.data.subarray(2, 2 + ((x.data[0]! << 8) | x.data[1]!));
        r.vec(2, (w) => w.bytes(ids).bytes(ids)).bytes(x.data.subarray(2 + ids.length));
        return { type: x.type, data: r.finish() };
      }), "illegal_parameter"],
    ["a 31-byte binder", (e) =>
      e.map((x) => {
        if (x.type !== ExtensionType.preSharedKey) return x;
        const d = x.data.slice(0, x.data.length - 1);
        const n = d.length - 1 - 2 - 1; // binders: u16 length, u8 length, bytes
        d[d.length - 32] = 31; // the binder's own length
        d[d.length - 34] = (n - 1) >> 8;
        d[d.length - 33] = (n - 1) & 255;
        return { type: x.type, data: d };
      }), "decode_error"],
    [
      "truncated identities",
      (e) => e.map((x) => x.type === ExtensionType.preSharedKey ? { type: x.type, data: x.data.subarray(0, 10) } : x),
      "decode_error",
    ],
    [
      "psk_ke only",
      (e) =>
        e.map((x) => x.type === ExtensionType.pskKeyExchangeModes ? { type: x.type, data: new Uint8Array([1, 0]) } : x),
      undefined,
    ],
  ];
  for (const [what, edit, alert] of cases) {
    const s = serve(rewrite(body, edit), keys);
    if (alert === undefined) {
      // Not resumed: the server sends its certificate (a full handshake), no alert.
      assertEquals([s.errors, selected(s)], [0, undefined], what);
    } else {
      assertEquals([s.errors, s.error?.alert], [1, alert], what);
    }
  }
});

Deno.test("tls13 server sends no tickets to a client without psk_key_exchange_modes (GmSSL 3.1 fails on them)", () => {
  const keys = SessionTicketKeys.random();
  const cache = new Tls13SessionCache();
  const r = connect({ sessionCache: cache, omitPskModes: true }, { sessionTickets: { keys } });
  ok(r);
  assertEquals(cache.size, 0);
  // The same client with the extension gets one.
  ok(connect({ sessionCache: cache }, { sessionTickets: { keys } }));
  assertEquals(cache.size, 1);
});

Deno.test("a sealed ticket is name ‖ IV ‖ AES-256-CBC ‖ HMAC-SHA256 as node:crypto computes them, every padding length", () => {
  const kb = crypto.getRandomValues(new Uint8Array(SESSION_TICKET_KEY_LENGTH));
  const keys = new SessionTicketKeys([kb]);
  for (const len of [0, 1, 15, 16, 17, 55, 56, 63, 64, 65, 119, 120, 127, 128, 200, 1000, 4097]) {
    const pt = crypto.getRandomValues(new Uint8Array(len));
    const t = keys.seal(pt);
    const macEnd = t.length - 32;
    assertEquals(t.subarray(0, 16), kb.subarray(0, 16), `length ${len}: key name`);
    const want = createHmac("sha256", kb.subarray(16, 48)).update(t.subarray(0, macEnd)).digest();
    assertEquals(t.subarray(macEnd), new Uint8Array(want.buffer, want.byteOffset, want.length), `length ${len}`);
    const d = createDecipheriv("aes-256-cbc", kb.subarray(48), t.subarray(16, 32));
    const a = d.update(t.subarray(32, macEnd)), b = d.final();
    assertEquals(new Uint8Array([...a, ...b]), pt, `length ${len}: AES-256-CBC`);
    assertEquals(keys.open(t), pt);
  }
});

Deno.test("a ticket opens only with intact padding, MAC and key name; the ECB decipher stays in step", () => {
  const keys = SessionTicketKeys.random();
  for (let len = 0; len < 70; len++) {
    const pt = crypto.getRandomValues(new Uint8Array(len));
    const t = keys.seal(pt);
    assertEquals(keys.open(t), pt);
    const bad = t.slice();
    bad[bad.length - 40]! ^= 1; // ciphertext: the MAC catches it
    assertEquals(keys.open(bad), undefined);
  }
  const other = SessionTicketKeys.random();
  assertEquals(other.open(keys.seal(new Uint8Array(10))), undefined);
});

Deno.test("tls13 server: tickets go out with the flight when no client certificate is asked for, else after Finished", () => {
  const pki = testPki();
  /** The server's writes: after the ClientHello, and after the client's second flight. */
  const run = (clientAuth: "none" | "request") => {
    const keys = SessionTicketKeys.random();
    const cache = new Tls13SessionCache();
    const c = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Client({ serverName: "localhost", trustedCertificates: [pki.sm2Root], sessionCache: cache }, cb)
    );
    const s = endpoint((cb: TlsEngineCallbacks) =>
      createTls13Server({
        certificates: [pki.sm2Server],
        sessionTickets: { keys, count: 2 },
        clientAuth,
        clientCaCertificates: [pki.sm2Root],
      }, cb)
    );
    c.engine.start();
    for (const w of c.outbox.splice(0)) s.engine.receive(w);
    const first = s.outbox.splice(0);
    for (const w of first) c.engine.receive(w);
    for (const w of c.outbox.splice(0)) s.engine.receive(w);
    const second = s.outbox.splice(0);
    for (const w of second) c.engine.receive(w);
    assertEquals([c.error, s.error], [undefined, undefined]);
    /** Content types of the records in some writes. */
    const types = (ws: Uint8Array[]) => {
      const t: number[] = [];
      for (const w of ws) {
        for (let o = 0; o < w.length; o += 5 + ((w[o + 3]! << 8) | w[o + 4]!)) t.push(w[o]!);
      }
      return t;
    };
    return { first: first.length, firstTypes: types(first), second: types(second), tickets: cache.size };
  };
  // ServerHello, change_cipher_spec, then EE, Certificate, CertificateVerify, Finished and two tickets: one write.
  assertEquals(run("none"), { first: 1, firstTypes: [22, 20, 23, 23, 23, 23, 23, 23], second: [], tickets: 1 });
  // With a CertificateRequest the client's Finished is not known ahead: the tickets follow it.
  assertEquals(run("request"), { first: 1, firstTypes: [22, 20, 23, 23, 23, 23, 23], second: [23, 23], tickets: 1 });
});
