/**
 * Test support for this folder: a lazily generated SM2 test PKI, an in-memory pair of engines with seeded random
 * splits of the byte stream, and a seeded RNG. Private to the TLCP tests.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { TlsAlertError, TlsHandshakeInfo } from "../../../api/tls.ts";
import {
  type Certificate,
  generateTestPki,
  issueCertificate,
  parseCertificate,
  readSm2PrivateKey,
  sm2CertificateSigner,
  Sm2PrivateKey,
  type TestPkiFiles,
} from "../../../crypto/mod.ts";
import {
  createTlcpClient,
  createTlcpServer,
  type TlcpClientOptions,
  type TlcpCredentials,
  tlcpCredentialsFromPem,
  type TlcpEngine,
  type TlcpServerOptions,
} from "./engine.ts";

/** A deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The test PKI: roots and credentials. */
export interface TestPki {
  readonly files: TestPkiFiles;
  readonly ca: Certificate;
  readonly server: TlcpCredentials;
  readonly client: TlcpCredentials;
  /** A server whose "encryption" certificate only has digitalSignature. */
  readonly serverSignOnlyEnc: TlcpCredentials;
  /** A second, unrelated root. */
  readonly otherCa: Certificate;
}

let pki: TestPki | undefined;

/** The test PKI, generated once per process. */
export function testPki(): TestPki {
  if (pki) return pki;
  const files = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
  const ca = parseCertificate(files["ca.crt"]!);
  const caKey = readSm2PrivateKey(files["ca.key"]!);
  const server = tlcpCredentialsFromPem({
    signCert: files["server_sign.crt"]!,
    signKey: files["server_sign.key"]!,
    encCert: files["server_enc.crt"]!,
    encKey: files["server_enc.key"]!,
  });
  const client = tlcpCredentialsFromPem({
    signCert: files["client_sign.crt"]!,
    signKey: files["client_sign.key"]!,
    encCert: files["client_enc.crt"]!,
    encKey: files["client_enc.key"]!,
  });
  const now = Date.now();
  const encKey = Sm2PrivateKey.generate();
  const badEnc = issueCertificate({
    subject: [["CN", "localhost"]],
    publicKey: { curve: "sm2", point: encKey.publicKey.toBytes() },
    issuer: ca,
    signer: sm2CertificateSigner(caKey),
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3600_000 * 24),
    keyUsage: ["digitalSignature"],
    dnsNames: ["localhost"],
  });
  const otherKey = Sm2PrivateKey.generate();
  const other = issueCertificate({
    subject: [["CN", "Other Root"]],
    publicKey: { curve: "sm2", point: otherKey.publicKey.toBytes() },
    signer: sm2CertificateSigner(otherKey),
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3600_000 * 24),
    ca: true,
    keyUsage: ["keyCertSign"],
  });
  pki = {
    files,
    ca,
    server,
    client,
    serverSignOnlyEnc: { ...server, encCertificate: badEnc.der, encKey },
    otherCa: other.certificate,
  };
  return pki;
}

/** One side of an in-memory connection and everything its callbacks reported. */
export interface Side {
  engine: TlcpEngine;
  readonly received: Uint8Array[];
  readonly errors: TlsAlertError[];
  closed: boolean;
  info: TlsHandshakeInfo | undefined;
  /** Ciphertext written and not yet delivered. */
  readonly outbox: Uint8Array[];
  /** Total plaintext bytes received. */
  receivedBytes: number;
}

function side(): Side {
  return {
    engine: undefined as unknown as TlcpEngine,
    received: [],
    errors: [],
    closed: false,
    info: undefined,
    outbox: [],
    receivedBytes: 0,
  };
}

function callbacks(s: Side, keepData: boolean) {
  return {
    write: (b: Uint8Array) => s.outbox.push(b),
    onData: (b: Uint8Array) => {
      s.receivedBytes += b.length;
      if (keepData) s.received.push(b.slice());
    },
    onHandshake: (info: TlsHandshakeInfo) => {
      s.info = info;
    },
    onClose: () => {
      s.closed = true;
    },
    onError: (e: TlsAlertError) => {
      s.errors.push(e);
    },
  };
}

/** Options for {@link makePair}. */
export interface PairOptions {
  /** Split every delivered chunk at random points with this seed. */
  readonly splitSeed?: number;
  /** Keep received data (default true). */
  readonly keepData?: boolean;
}

/** Two engines wired through outboxes; {@link Pair.pump} moves bytes until both are quiet. */
export interface Pair {
  readonly server: Side;
  readonly client: Side;
  /** Delivers queued ciphertext both ways until nothing moves (bounded). */
  pump(): void;
  /** Delivers what `from` has queued to the other side once; returns false if nothing was queued. */
  step(from: "client" | "server"): boolean;
}

/** Builds a server and a client and starts both (nothing is delivered until `pump`). */
export function makePair(
  serverOptions: Partial<TlcpServerOptions>,
  clientOptions: Partial<TlcpClientOptions>,
  options: PairOptions = {},
): Pair {
  const p = testPki();
  const server = side(), client = side();
  const keep = options.keepData ?? true;
  server.engine = createTlcpServer({ credentials: p.server, ...serverOptions }, callbacks(server, keep));
  client.engine = createTlcpClient(
    { ca: [p.ca], serverName: "localhost", ...clientOptions },
    callbacks(client, keep),
  );
  const rnd = options.splitSeed === undefined ? undefined : seededRandom(options.splitSeed);
  const deliver = (from: Side, to: Side): boolean => {
    if (from.outbox.length === 0) return false;
    const chunks = from.outbox.splice(0);
    for (const c of chunks) {
      if (!rnd) {
        to.engine.receive(c);
        continue;
      }
      let off = 0;
      while (off < c.length) {
        const n = 1 + Math.floor(rnd() * Math.min(c.length - off, rnd() < 0.3 ? 7 : 3000));
        to.engine.receive(c.subarray(off, off + n));
        off += n;
      }
    }
    return true;
  };
  server.engine.start();
  client.engine.start();
  return {
    server,
    client,
    step(from) {
      return from === "client" ? deliver(client, server) : deliver(server, client);
    },
    pump() {
      for (let i = 0; i < 10_000; i++) {
        const a = deliver(client, server);
        const b = deliver(server, client);
        if (!a && !b) return;
      }
      throw new Error("pump: no quiescence");
    },
  };
}

/** Concatenates received chunks. */
export function joined(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * HMAC-SM3 written out over `node:crypto`'s native SM3 (OpenSSL), an oracle independent of `lib/crypto`'s HMAC
 * and SM3. Checked against GmSSL 3: HMAC-SM3(00..0f, "abc") = 83fd35b3...4704a12c7c (see prf_test.ts).
 */
export function oracleHmacSm3(key: Uint8Array, data: Uint8Array): Uint8Array {
  const h = (b: Uint8Array) => new Uint8Array(createHash("sm3").update(b).digest());
  const k = new Uint8Array(64);
  k.set(key.length > 64 ? h(key) : key);
  const ipad = k.map((b) => b ^ 0x36), opad = k.map((b) => b ^ 0x5c);
  const inner = new Uint8Array(createHash("sm3").update(ipad).update(data).digest());
  return new Uint8Array(createHash("sm3").update(opad).update(inner).digest());
}

/** Splits a byte stream into records: [type, body] with the header's version kept. */
export function splitRecords(bytes: Uint8Array): { type: number; version: number; body: Uint8Array }[] {
  const out: { type: number; version: number; body: Uint8Array }[] = [];
  for (let o = 0; o + 5 <= bytes.length;) {
    const len = (bytes[o + 3]! << 8) | bytes[o + 4]!;
    out.push({ type: bytes[o]!, version: (bytes[o + 1]! << 8) | bytes[o + 2]!, body: bytes.slice(o + 5, o + 5 + len) });
    o += 5 + len;
  }
  return out;
}

/** Frames one record. */
export function record(type: number, body: Uint8Array, version = 0x0101): Uint8Array {
  const r = new Uint8Array(5 + body.length);
  r[0] = type;
  r[1] = version >>> 8;
  r[2] = version & 0xff;
  r[3] = body.length >>> 8;
  r[4] = body.length & 0xff;
  r.set(body, 5);
  return r;
}
