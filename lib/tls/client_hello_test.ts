import { assert, assertEquals } from "../../tests/assert.ts";
import { chooseProvider, gmVersionOf, parseClientHello } from "./client_hello.ts";

const read = (n: string) => Deno.readFileSync(new URL(`./testdata/${n}`, import.meta.url));

Deno.test("parseClientHello reads an OpenSSL TLS 1.3 ClientHello (SNI, ALPN, supported_versions)", () => {
  const r = parseClientHello(read("client_hello_tls13.bin"));
  assert(r.kind === "hello");
  assertEquals(r.hello.serverName, "a.example.com");
  assertEquals(r.hello.alpn, ["h2", "http/1.1"]);
  assertEquals(r.hello.legacyVersion, 0x0303);
  assert(r.hello.supportedVersions.includes(0x0304));
  assertEquals(chooseProvider(r.hello), "native");
});

Deno.test("parseClientHello reads a TLS 1.2 ClientHello", () => {
  const r = parseClientHello(read("client_hello_tls12.bin"));
  assert(r.kind === "hello");
  assertEquals(r.hello.serverName, "b.example.com");
  assertEquals(r.hello.alpn, ["http/1.1"]);
  assertEquals(r.hello.supportedVersions, []);
  assertEquals(chooseProvider(r.hello), "native");
});

Deno.test("parseClientHello sends SM-only TLS 1.3 (Tongsuo) and TLCP (Tongsuo -ntls) to gm", () => {
  const sm = parseClientHello(read("client_hello_tls13_sm.bin"));
  assert(sm.kind === "hello");
  assertEquals(sm.hello.serverName, "sm.example");
  assertEquals(gmVersionOf(sm.hello), "TLSv1.3");
  assertEquals(chooseProvider(sm.hello), "gm");
  const tlcp = parseClientHello(read("client_hello_tlcp.bin"));
  assert(tlcp.kind === "hello");
  assertEquals(tlcp.hello.legacyVersion, 0x0101);
  assertEquals(gmVersionOf(tlcp.hello), "TLCP");
  assertEquals(chooseProvider(tlcp.hello), "gm");
});

Deno.test("parseClientHello is incremental: every prefix needs more, the whole parses", () => {
  const bytes = read("client_hello_tls13.bin");
  for (let i = 0; i < bytes.length; i++) assertEquals(parseClientHello(bytes.subarray(0, i)).kind, "need-more");
  assertEquals(parseClientHello(bytes).kind, "hello");
});

Deno.test("parseClientHello reassembles a ClientHello split over two records", () => {
  const bytes = read("client_hello_tls12.bin");
  const body = bytes.subarray(5);
  const cut = 50;
  const rec = (b: Uint8Array) => {
    const r = new Uint8Array(5 + b.length);
    r.set([0x16, 0x03, 0x01, b.length >> 8, b.length & 0xff]);
    r.set(b, 5);
    return r;
  };
  const a = rec(body.subarray(0, cut));
  const b = rec(body.subarray(cut));
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  assertEquals(parseClientHello(a).kind, "need-more");
  const r = parseClientHello(both);
  assert(r.kind === "hello");
  assertEquals(r.hello.serverName, "b.example.com");
});

Deno.test("parseClientHello rejects HTTP, garbage, other handshake messages and oversize hellos", () => {
  assertEquals(parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n")).kind, "not-tls");
  assertEquals(parseClientHello(new Uint8Array([0x16, 0x07, 0x01])).kind, "not-tls");
  assertEquals(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0])).kind, "not-tls");
  assertEquals(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0, 4, 1, 0xff, 0xff, 0xff]), 1024).kind, "not-tls");
  const bytes = read("client_hello_tls13.bin").slice();
  bytes[5 + 4 + 2 + 32] = 200; // session id length > 32
  assertEquals(parseClientHello(bytes).kind, "not-tls");
  for (let i = 0; i < 200; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(64));
    junk[0] = 0x16;
    junk[1] = 0x03;
    assert(["not-tls", "need-more", "hello"].includes(parseClientHello(junk).kind));
  }
});
