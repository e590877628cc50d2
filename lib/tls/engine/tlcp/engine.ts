/**
 * The TLCP 1.1 engine (GB/T 38636-2020, version 0x0101), server and client, as a sans-I/O {@link TlsEngine}.
 *
 * Suites `ECC_SM4_CBC_SM3`, `ECC_SM4_GCM_SM3`, `ECDHE_SM4_CBC_SM3`, `ECDHE_SM4_GCM_SM3`; the server's signing +
 * encryption certificate pair; client double certificates (required by the ECDHE suites, whose key exchange uses
 * both sides' encryption keys); session-ID resumption; renegotiation refused.
 *
 * Interop facts this engine follows (checked against GmSSL 3 and Tongsuo's NTLS):
 * - SM2 key exchange: the server is the initiator (A, Z_A first), the client the responder (B).
 * - ECDHE ClientKeyExchange: Tongsuo sends `ECParameters || ECPoint` bare, GmSSL inside a 2-byte length. A
 *   server accepts both; a client sends {@link TlcpClientOptions.ecdheKeyExchangeEncoding} (default bare).
 * - CertificateVerify: Tongsuo signs SM3(handshake messages), GmSSL the handshake messages themselves (both with
 *   Z_A of the default ID). A server accepts both; a client sends {@link TlcpClientOptions.certificateVerifyInput}.
 * - Client certificates in ECC suites: Tongsuo's server insists on two (sign + enc), GmSSL's verifies the list as
 *   one chain and so rejects the pair. A server accepts both; a client sends
 *   {@link TlcpClientOptions.eccClientCertificates} (default double).
 * - ServerKeyExchange signs client_random || server_random || (ECC) the encryption certificate with its 3-byte
 *   length, or (ECDHE) the ECParameters and point. No signature-algorithm field (TLS 1.1 shape).
 *
 * @example
 * ```ts
 * import { createTlcpClient, createTlcpServer } from "./engine.ts";
 * // const server = createTlcpServer({ credentials }, { write: (b) => client.receive(b), ... });
 * ```
 *
 * @module
 */

import {
  TLS_ALERT_CODES,
  type TlsAlertDescription,
  TlsAlertError,
  type TlsEngine,
  type TlsEngineCallbacks,
  type TlsHandshakeInfo,
} from "../../../api/tls.ts";
import {
  type Certificate,
  CertificateError,
  certificateSm2PublicKey,
  checkKeyUsage,
  createSm3,
  type IncrementalHash,
  parseCertificate,
  readSm2PrivateKey,
  sm2KeyExchange,
  Sm2PrivateKey,
  Sm2PublicKey,
  verifyCertificateChain,
} from "../../../crypto/mod.ts";
import { bytesEqual, concat, randomBytes, Reader, TlcpFatal, Writer } from "./_codec.ts";
import { tlcpFinishedFromHash, tlcpKeyBlock, tlcpMasterSecret } from "./prf.ts";
import {
  ContentType,
  keyBlockLength,
  protectionsFromKeyBlock,
  type RecordProtection,
  TlcpRecordLayer,
} from "./record.ts";
import type { TlcpSession, TlcpSessionCache } from "./session_cache.ts";
import { TLCP_DEFAULT_SUITES, TLCP_SUITES, TLCP_VERSION, type TlcpCipherSuite, type TlcpSuiteInfo } from "./suites.ts";
import { SCRATCH_PLAINTEXT, withWriteScratch } from "../_write_scratch.ts";

/** A TLCP identity: the signing and the encryption certificate with their keys. */
export interface TlcpCredentials {
  /** The signing certificate, DER. */
  readonly signCertificate: Uint8Array;
  /** The signing certificate's key. */
  readonly signKey: Sm2PrivateKey;
  /** The encryption certificate, DER. */
  readonly encCertificate: Uint8Array;
  /** The encryption certificate's key. */
  readonly encKey: Sm2PrivateKey;
  /** Intermediate CA certificates (DER) sent after the pair, leaf-most first. */
  readonly chain?: readonly Uint8Array[];
}

/** PEM inputs for {@link tlcpCredentialsFromPem}. */
export interface TlcpPemCredentials {
  readonly signCert: string;
  readonly signKey: string;
  readonly encCert: string;
  readonly encKey: string;
  /** More certificates (PEM) after the two leaves. */
  readonly chain?: string;
}

/**
 * Builds {@link TlcpCredentials} from PEM text (certificates and PKCS#8 / SEC1 SM2 keys). Throws on bad input.
 *
 * @param pem the four PEM texts and an optional chain
 */
export function tlcpCredentialsFromPem(pem: TlcpPemCredentials): TlcpCredentials {
  const chain = pem.chain ? pemCertificates(pem.chain) : [];
  return {
    signCertificate: parseCertificate(pem.signCert).der,
    signKey: readSm2PrivateKey(pem.signKey),
    encCertificate: parseCertificate(pem.encCert).der,
    encKey: readSm2PrivateKey(pem.encKey),
    chain,
  };
}

function pemCertificates(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
  for (const m of text.matchAll(re)) out.push(parseCertificate(m[0]).der);
  return out;
}

/** Options both sides share. */
export interface TlcpCommonOptions {
  /** Suites in preference order; default {@link TLCP_DEFAULT_SUITES}. */
  readonly cipherSuites?: readonly TlcpCipherSuite[];
  /** ALPN protocols in preference order (server: what it accepts; client: what it offers). */
  readonly alpnProtocols?: readonly string[];
  /** The time for certificate validity checks; default now. */
  readonly now?: () => Date;
}

/** Options for {@link createTlcpServer}. */
export interface TlcpServerOptions extends TlcpCommonOptions {
  /** The server's signing and encryption certificates. */
  readonly credentials: TlcpCredentials;
  /**
   * Client certificates: `"none"` (default), `"request"` (verify if sent), `"require"`. ECDHE suites always ask
   * for the client's double certificates, since their key exchange needs the client's encryption key.
   */
  readonly clientAuth?: "none" | "request" | "require";
  /** Roots that client certificates must chain to; required unless `clientAuth` is `"none"`. */
  readonly clientCa?: readonly Certificate[];
  /** A session cache; without one, no session ID is issued and nothing resumes. */
  readonly sessionCache?: TlcpSessionCache;
}

/** Options for {@link createTlcpClient}. */
export interface TlcpClientOptions extends TlcpCommonOptions {
  /** Roots the server's certificates must chain to; required unless `verifyServer` is false. */
  readonly ca?: readonly Certificate[];
  /** Verify the server's certificates (default true). Turn off only in tests. */
  readonly verifyServer?: boolean;
  /** The server's name: checked against the signing certificate, and sent as SNI when it is a DNS name. */
  readonly serverName?: string;
  /** Send the server_name extension (default true when `serverName` is a DNS name). */
  readonly sendServerName?: boolean;
  /** The client's double certificates, for client authentication and the ECDHE suites. */
  readonly credentials?: TlcpCredentials;
  /** A session from an earlier connection to the same server, to resume. */
  readonly session?: TlcpSession;
  /**
   * How the ECDHE ClientKeyExchange is written: `"bare"` (ECParameters || ECPoint, as Tongsuo/OpenSSL-lineage
   * stacks send and expect; default) or `"length-prefixed"` (inside a 2-byte length, as GmSSL 3 does).
   */
  readonly ecdheKeyExchangeEncoding?: "bare" | "length-prefixed";
  /**
   * What CertificateVerify signs: `"sm3-hash"` (SM3 of the handshake messages, GB/T 38636 and Tongsuo; default)
   * or `"transcript"` (the messages themselves, GmSSL 3).
   */
  readonly certificateVerifyInput?: "sm3-hash" | "transcript";
  /**
   * Which certificates the client sends in ECC suites when asked: `"double"` (signing then encryption
   * certificate, as GB/T 38636 and Tongsuo, which insists on two, expect; default) or `"sign-only"` (the signing
   * certificate and its chain, as GmSSL 3 expects: it verifies the list as one chain). ECDHE suites always send
   * both.
   */
  readonly eccClientCertificates?: "double" | "sign-only";
  /**
   * Sets the three switches above at once for a kind of peer (each switch given explicitly still wins):
   * `"standard"` (default: GB/T 38636 and Tongsuo) or `"gmssl"` (GmSSL 3). See {@link TLCP_PEER_PROFILES}.
   */
  readonly peerProfile?: TlcpPeerProfile;
}

/** A kind of TLCP peer, for {@link TlcpClientOptions.peerProfile}. */
export type TlcpPeerProfile = "standard" | "gmssl";

/** The client switches a profile stands for. */
export type TlcpPeerSwitches = Required<
  Pick<TlcpClientOptions, "ecdheKeyExchangeEncoding" | "certificateVerifyInput" | "eccClientCertificates">
>;

/**
 * The client switches per peer profile: `standard` is what GB/T 38636 describes and Tongsuo does (bare ECDHE
 * ClientKeyExchange, CertificateVerify over SM3 of the handshake messages, double client certificates in ECC
 * suites); `gmssl` is GmSSL 3 (length-prefixed ClientKeyExchange, CertificateVerify over the messages themselves,
 * the signing certificate alone in ECC suites).
 */
export const TLCP_PEER_PROFILES: Readonly<Record<TlcpPeerProfile, TlcpPeerSwitches>> = {
  standard: { ecdheKeyExchangeEncoding: "bare", certificateVerifyInput: "sm3-hash", eccClientCertificates: "double" },
  gmssl: {
    ecdheKeyExchangeEncoding: "length-prefixed",
    certificateVerifyInput: "transcript",
    eccClientCertificates: "sign-only",
  },
};

const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
} as const;

const ExtensionType = { serverName: 0, alpn: 16 } as const;

/** SM2 curve ids in ECParameters: 41 (curveSM2, RFC 8998) is what peers send; 30 is GmSSL 2's old id. */
const CURVE_SM2 = 41;
const CURVE_SM2_OLD = 30;
/** ClientCertificateType ecdsa_sign (GB/T 38636 "ecc_sign"). */
const CERT_TYPE_ECC_SIGN = 64;
/** The change_cipher_spec message (read only). */
const CCS_BODY = new Uint8Array([1]);
/** The empty initial value of byte fields (never written: it has no bytes). */
const NO_BYTES = new Uint8Array(0);
/** The largest handshake message we accept. */
const MAX_HANDSHAKE_MESSAGE = 1 << 16;

type State =
  | "start"
  | "wait_client_hello"
  | "wait_server_hello"
  | "wait_certificate"
  | "wait_server_key_exchange"
  | "wait_certificate_request_or_done"
  | "wait_server_hello_done"
  | "wait_client_certificate"
  | "wait_client_key_exchange"
  | "wait_certificate_verify"
  | "wait_ccs"
  | "wait_finished"
  | "connected";

/**
 * Client signing keys whose last CertificateVerify signed the handshake messages themselves (GmSSL 3) rather than
 * their SM3 hash: tried that way first next time. Keys are shared through the certificate parse cache.
 */
const rawTranscriptSigners = new WeakSet<Sm2PublicKey>();

const ALERT_NAMES = new Map<number, TlsAlertDescription>(
  Object.entries(TLS_ALERT_CODES).map(([k, v]) => [v, k as TlsAlertDescription]),
);

function certificateAlert(e: unknown): TlsAlertDescription {
  if (e instanceof TlcpFatal) return e.alert;
  if (!(e instanceof CertificateError)) return "bad_certificate";
  switch (e.code) {
    case "expired":
    case "not-yet-valid":
      return "certificate_expired";
    case "unknown-issuer":
    case "not-ca":
    case "path-too-long":
      return "unknown_ca";
    case "key-usage":
    case "unsupported":
      return "unsupported_certificate";
    default:
      return "bad_certificate";
  }
}

function isIpLiteral(name: string): boolean {
  return /^[0-9.]+$/.test(name) || name.includes(":");
}

function u24(n: number): Uint8Array {
  return new Uint8Array([n >>> 16, (n >>> 8) & 0xff, n & 0xff]);
}

function newRandom(): Uint8Array {
  const r = randomBytes(32);
  const t = Math.floor(Date.now() / 1000);
  r[0] = t >>> 24;
  r[1] = (t >>> 16) & 0xff;
  r[2] = (t >>> 8) & 0xff;
  r[3] = t & 0xff;
  return r;
}

function ecdheParams(key: Sm2PrivateKey): Uint8Array {
  return new Writer().u8(3).u16(CURVE_SM2).vec8(key.publicKey.toBytes()).finish();
}

function readEcdheParams(r: Reader): Sm2PublicKey {
  if (r.u8() !== 3) throw new TlcpFatal("illegal_parameter", "tlcp: ECParameters: curve type is not named_curve");
  const curve = r.u16();
  if (curve !== CURVE_SM2 && curve !== CURVE_SM2_OLD) {
    throw new TlcpFatal("illegal_parameter", `tlcp: ECParameters: curve ${curve} is not SM2`);
  }
  const point = r.vec8();
  if (point.length !== 65 || point[0] !== 4) {
    throw new TlcpFatal("illegal_parameter", "tlcp: ECPoint: not an uncompressed SM2 point");
  }
  try {
    return Sm2PublicKey.fromBytes(point);
  } catch (e) {
    throw new TlcpFatal("illegal_parameter", "tlcp: ECPoint: not on the curve", { cause: e });
  }
}

function parseCertificateList(body: Uint8Array): Uint8Array[] {
  const r = new Reader(body, "Certificate");
  const list = new Reader(r.vec24(), "Certificate list");
  r.end();
  const out: Uint8Array[] = [];
  while (list.remaining > 0) {
    const der = list.vec24();
    if (der.length === 0) throw new TlcpFatal("decode_error", "tlcp: Certificate: empty certificate");
    out.push(der.slice());
  }
  return out;
}

function certificateList(certs: readonly Uint8Array[]): Uint8Array {
  const list = new Writer();
  for (const c of certs) list.vec24(c);
  return new Writer().vec24(list.finish()).finish();
}

function parseDer(der: Uint8Array): Certificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    throw new TlcpFatal("bad_certificate", `tlcp: certificate does not parse: ${(e as Error).message}`, { cause: e });
  }
}

function sm2Key(cert: Certificate): Sm2PublicKey {
  try {
    return certificateSm2PublicKey(cert);
  } catch (e) {
    throw new TlcpFatal("unsupported_certificate", `tlcp: certificate "${cert.subject}" has no SM2 key`, {
      cause: e,
    });
  }
}

function verifySignature(key: Sm2PublicKey, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    return key.verify(message, sig);
  } catch {
    return false;
  }
}

/**
 * One TLCP connection endpoint. Build it with {@link createTlcpServer} or {@link createTlcpClient}; it follows
 * the {@link TlsEngine} contract of `lib/api/tls.ts`. After the handshake, {@link TlcpEngine.session} holds the
 * session for resumption (client: pass it as {@link TlcpClientOptions.session} next time).
 */
export class TlcpEngine implements TlsEngine {
  readonly #client: boolean;
  readonly #cb: TlsEngineCallbacks;
  readonly #server: TlcpServerOptions | undefined;
  readonly #clientOpts: TlcpClientOptions | undefined;
  readonly #suites: readonly TlcpSuiteInfo[];
  readonly #records = new TlcpRecordLayer();

  #state: State = "start";
  #dead = false;
  #closeSent = false;
  #out: Uint8Array[] = [];
  #queued: Uint8Array[] = [];
  /** Handshake bytes not yet a whole message: `#hsBuf[0..#hsLen)`, grown by doubling (linear for 1-byte records). */
  #hsBuf: Uint8Array = NO_BYTES;
  #hsLen = 0;
  #transcript: Uint8Array[] = [];
  #transcriptSm3: IncrementalHash = createSm3();

  #suite: TlcpSuiteInfo | undefined;
  // Each is assigned before it is read (from a hello, or a fresh random); a typed array costs ~0.5 µs on Deno.
  #clientRandom: Uint8Array = NO_BYTES;
  #serverRandom: Uint8Array = NO_BYTES;
  #sessionId: Uint8Array = NO_BYTES;
  #master: Uint8Array | undefined;
  #pending: { read: RecordProtection; write: RecordProtection } | undefined;
  #resumed = false;
  #sni: string | undefined;
  #alpn: string | undefined;
  #peerCerts: Uint8Array[] = [];
  #peerSignKey: Sm2PublicKey | undefined;
  #peerEncKey: Sm2PublicKey | undefined;
  #peerEncDer: Uint8Array | undefined;
  #ephemeral: Sm2PrivateKey | undefined;
  #peerEphemeral: Sm2PublicKey | undefined;
  #certRequested = false;
  #info: TlsHandshakeInfo | undefined;
  #session: TlcpSession | undefined;

  /** @internal Use {@link createTlcpServer} or {@link createTlcpClient}. */
  constructor(
    role: { server: TlcpServerOptions } | { client: TlcpClientOptions },
    callbacks: TlsEngineCallbacks,
  ) {
    this.#cb = callbacks;
    const common: TlcpCommonOptions = "server" in role ? role.server : role.client;
    if ("server" in role) {
      this.#client = false;
      this.#server = role.server;
      const auth = role.server.clientAuth ?? "none";
      if (auth !== "none" && !(role.server.clientCa?.length)) {
        throw new RangeError(`tlcp server: clientAuth "${auth}" needs clientCa roots`);
      }
    } else {
      this.#client = true;
      const profile = TLCP_PEER_PROFILES[role.client.peerProfile ?? "standard"];
      if (!profile) throw new RangeError(`tlcp client: unknown peerProfile ${JSON.stringify(role.client.peerProfile)}`);
      const c = role.client;
      this.#clientOpts = {
        ...c,
        ecdheKeyExchangeEncoding: c.ecdheKeyExchangeEncoding ?? profile.ecdheKeyExchangeEncoding,
        certificateVerifyInput: c.certificateVerifyInput ?? profile.certificateVerifyInput,
        eccClientCertificates: c.eccClientCertificates ?? profile.eccClientCertificates,
      };
      if (role.client.verifyServer !== false && !(role.client.ca?.length)) {
        throw new RangeError("tlcp client: ca roots are required to verify the server (or set verifyServer: false)");
      }
    }
    let names = common.cipherSuites ?? TLCP_DEFAULT_SUITES;
    // A client without double certificates cannot run the ECDHE key exchange: it does not offer those suites
    // (unless they are all it has; then the handshake ends with a handshake_failure that says why).
    if (this.#client && !this.#clientOpts?.credentials) {
      const ecc = names.filter((n) => TLCP_SUITES[n]?.kx === "ECC");
      if (ecc.length > 0) names = ecc;
    }
    this.#suites = names.map((n) => {
      const s = TLCP_SUITES[n];
      if (!s) throw new RangeError(`tlcp: unknown cipher suite "${String(n)}"`);
      return s;
    });
    if (this.#suites.length === 0) throw new RangeError("tlcp: no cipher suites");
  }

  /** True once the handshake has completed. */
  get handshakeComplete(): boolean {
    return this.#info !== undefined;
  }

  /** The handshake facts, once complete. */
  get info(): TlsHandshakeInfo | undefined {
    return this.#info;
  }

  /** The session established (or resumed) by this connection; undefined before the handshake completes. */
  get session(): TlcpSession | undefined {
    return this.#session;
  }

  /** Starts the handshake: a client sends its ClientHello, a server waits for one. */
  start(): void {
    if (this.#state !== "start" || this.#dead) return;
    this.#guard(() => {
      if (this.#client) this.#sendClientHello();
      else this.#state = "wait_client_hello";
    });
  }

  /** Ciphertext from the peer, in any split. */
  receive(data: Uint8Array): void {
    if (this.#dead) return;
    if (this.#state === "start") this.start();
    this.#guard(() => {
      // `data` is valid during this call: whole records are opened straight from it, the rest is copied.
      this.#records.pushBorrowed(data);
      try {
        for (;;) {
          if (this.#dead) return;
          const rec = this.#records.next();
          if (!rec) break;
          this.#onRecord(rec.type, rec.payload);
        }
      } finally {
        this.#records.release();
      }
    });
  }

  /** Application data: protected and written, or queued until the handshake completes. */
  send(data: Uint8Array): void {
    if (this.#dead || this.#closeSent) return;
    if (!this.#info) {
      if (data.length > 0) this.#queued.push(data.slice());
      return;
    }
    if (data.length === 0) return;
    this.#guard(() => this.#sendApplicationData(data));
  }

  /**
   * Seals application data. When the transport copies what it is given ({@link TlsEngineCallbacks.writeCopies}),
   * the records go into the thread's shared write scratch a piece at a time and are written at once.
   */
  #sendApplicationData(data: Uint8Array): void {
    if (this.#cb.writeCopies !== true) {
      this.#out.push(this.#records.seal(ContentType.applicationData, data));
      return;
    }
    this.#flush();
    for (let off = 0; off < data.length && !this.#dead; off += SCRATCH_PLAINTEXT) {
      const piece = data.subarray(off, Math.min(data.length, off + SCRATCH_PLAINTEXT));
      const sealed = withWriteScratch(this.#records.sealedSize(piece.length), (buf) => {
        this.#out.push(this.#records.seal(ContentType.applicationData, piece, buf));
        this.#flush();
      });
      if (!sealed) this.#out.push(this.#records.seal(ContentType.applicationData, piece));
    }
  }

  /** Sends close_notify; later `send` calls are ignored. Incoming data is still delivered. */
  close(): void {
    if (this.#dead || this.#closeSent) return;
    this.#closeSent = true;
    this.#guard(() => this.#out.push(this.#records.seal(ContentType.alert, new Uint8Array([1, 0]))));
  }

  // ---- plumbing ----

  #guard(fn: () => void): void {
    try {
      fn();
      this.#flush();
    } catch (e) {
      if (e instanceof TlcpFatal) this.#fail(e.alert, e.message, e);
      else this.#fail("internal_error", `tlcp: internal error: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }

  #flush(): void {
    if (this.#out.length === 0 || this.#dead) return;
    const parts = this.#out;
    this.#out = [];
    this.#cb.write(parts.length === 1 ? parts[0]! : concat(...parts));
  }

  #fail(alert: TlsAlertDescription, message: string, cause: unknown): void {
    if (this.#dead) return;
    try {
      this.#out.push(this.#records.seal(ContentType.alert, new Uint8Array([2, TLS_ALERT_CODES[alert]])));
      this.#flush();
    } catch {
      // The alert could not be written; the error is still reported.
    }
    this.#dead = true;
    this.#forgetSession();
    this.#cb.onError(new TlsAlertError(alert, message, { sent: true, cause }));
  }

  /** A connection that ends with a fatal alert must not be resumed (RFC 5246 §7.2.2). */
  #forgetSession(): void {
    if (this.#session) this.#server?.sessionCache?.delete(this.#session.id);
  }

  #onRecord(type: number, payload: Uint8Array): void {
    switch (type) {
      case ContentType.handshake:
        return this.#onHandshakeRecord(payload);
      case ContentType.ccs:
        return this.#onChangeCipherSpec(payload);
      case ContentType.alert:
        return this.#onAlert(payload);
      default: // application data
        if (!this.#info || this.#hsLen > 0) {
          throw new TlcpFatal("unexpected_message", "tlcp: application data before the handshake completed");
        }
        if (payload.length > 0) this.#cb.onData(payload);
    }
  }

  #onAlert(payload: Uint8Array): void {
    if (payload.length !== 2) throw new TlcpFatal("decode_error", "tlcp: malformed alert");
    const code = payload[1]!;
    const name = ALERT_NAMES.get(code);
    if (code === 0 && this.#info) {
      this.#dead = true;
      if (!this.#closeSent) {
        this.#closeSent = true;
        this.#out.push(this.#records.seal(ContentType.alert, new Uint8Array([1, 0])));
        const parts = this.#out;
        this.#out = [];
        this.#cb.write(parts.length === 1 ? parts[0]! : concat(...parts));
      }
      this.#cb.onClose();
      return;
    }
    this.#dead = true;
    this.#out = [];
    this.#forgetSession();
    this.#cb.onError(
      new TlsAlertError(name ?? "handshake_failure", `tlcp: peer sent alert ${name ?? code}`, { sent: false }),
    );
  }

  #onChangeCipherSpec(payload: Uint8Array): void {
    if (payload.length !== 1 || payload[0] !== 1) throw new TlcpFatal("decode_error", "tlcp: bad ChangeCipherSpec");
    if (this.#state !== "wait_ccs" || !this.#pending || this.#hsLen > 0) {
      throw new TlcpFatal("unexpected_message", `tlcp: unexpected ChangeCipherSpec (${this.#state})`);
    }
    this.#records.setReadProtection(this.#pending.read);
    this.#state = "wait_finished";
  }

  #onHandshakeRecord(record: Uint8Array): void {
    let payload = record;
    if (this.#info) {
      // No renegotiation: a ClientHello (server) or HelloRequest (client) after the handshake ends the connection.
      const t = payload[0];
      if ((!this.#client && t === HandshakeType.clientHello) || (this.#client && t === HandshakeType.helloRequest)) {
        throw new TlcpFatal("no_renegotiation", "tlcp: renegotiation is not supported");
      }
      throw new TlcpFatal("unexpected_message", "tlcp: handshake message after the handshake");
    }
    if (this.#hsLen === 0 && payload.length >= 4) {
      // Fast path: whole messages in this record need no copy into the buffer.
      let off = 0;
      while (payload.length - off >= 4 && !this.#dead && !this.#info) {
        const len = (payload[off + 1]! << 16) | (payload[off + 2]! << 8) | payload[off + 3]!;
        if (len > MAX_HANDSHAKE_MESSAGE) throw new TlcpFatal("illegal_parameter", "tlcp: handshake message too large");
        if (payload.length - off < 4 + len) break;
        const msg = payload.subarray(off, off + 4 + len);
        off += 4 + len;
        this.#onHandshakeMessage(msg[0]!, msg.subarray(4), msg);
      }
      payload = payload.subarray(off);
      if (this.#dead) return;
    }
    if (payload.length > 0) {
      if (this.#info) throw new TlcpFatal("unexpected_message", "tlcp: handshake data after Finished");
      if (this.#hsLen + payload.length > this.#hsBuf.length) {
        const next = new Uint8Array(Math.max(this.#hsBuf.length * 2, this.#hsLen + payload.length, 1024));
        next.set(this.#hsBuf.subarray(0, this.#hsLen));
        this.#hsBuf = next;
      }
      this.#hsBuf.set(payload, this.#hsLen);
      this.#hsLen += payload.length;
    }
    let off = 0;
    while (this.#hsLen - off >= 4 && !this.#dead && !this.#info) {
      const b = this.#hsBuf;
      const len = (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
      if (len > MAX_HANDSHAKE_MESSAGE) throw new TlcpFatal("illegal_parameter", "tlcp: handshake message too large");
      if (this.#hsLen - off < 4 + len) break;
      const msg = b.slice(off, off + 4 + len);
      off += 4 + len;
      this.#onHandshakeMessage(msg[0]!, msg.subarray(4), msg);
    }
    if (off > 0) {
      this.#hsBuf.copyWithin(0, off, this.#hsLen);
      this.#hsLen -= off;
    }
    if (this.#info && this.#hsLen > 0) {
      throw new TlcpFatal("unexpected_message", "tlcp: handshake data after Finished");
    }
  }

  #sendHandshake(type: number, body: Uint8Array): void {
    const msg = new Uint8Array(4 + body.length);
    msg[0] = type;
    msg[1] = body.length >>> 16;
    msg[2] = body.length >>> 8;
    msg[3] = body.length;
    msg.set(body, 4);
    this.#addTranscript(msg);
    this.#sendRecord(ContentType.handshake, msg);
  }

  /**
   * Seals one record's worth of handshake-phase bytes. When the transport copies what it is given, into the shared
   * write scratch and written at once behind anything queued (the transport coalesces a turn's writes); otherwise
   * queued for {@link #flush}.
   */
  #sendRecord(type: number, data: Uint8Array): void {
    if (this.#cb.writeCopies === true) {
      const sent = withWriteScratch(this.#records.sealedSize(data.length), (buf) => {
        this.#flush();
        this.#cb.write(this.#records.seal(type, data, buf));
      });
      if (sent) return;
    }
    this.#out.push(this.#records.seal(type, data));
  }

  /** Adds a whole handshake message (kept: the caller does not reuse it) to the transcript and its SM3. */
  #addTranscript(msg: Uint8Array): void {
    this.#transcript.push(msg);
    this.#transcriptSm3.update(msg);
  }

  #transcriptBytes(): Uint8Array {
    return concat(...this.#transcript);
  }

  /** SM3 of the handshake messages so far, from the running hash (no re-hashing of the transcript). */
  #transcriptHash(): Uint8Array {
    return this.#transcriptSm3.peekDigest();
  }

  #unexpected(type: number): never {
    throw new TlcpFatal("unexpected_message", `tlcp: unexpected handshake message ${type} in state ${this.#state}`);
  }

  #onHandshakeMessage(type: number, body: Uint8Array, msg: Uint8Array): void {
    const s = this.#state;
    if (type === HandshakeType.finished) {
      if (s !== "wait_finished") this.#unexpected(type);
      return this.#onFinished(body, msg);
    }
    if (this.#client) {
      if (type === HandshakeType.helloRequest) {
        // Before the handshake completes a HelloRequest is ignored (RFC 5246 §7.4.1.1), not hashed.
        if (body.length !== 0) throw new TlcpFatal("decode_error", "tlcp: HelloRequest with a body");
        return;
      }
      if (type === HandshakeType.serverHello && s === "wait_server_hello") return this.#onServerHello(body, msg);
      if (type === HandshakeType.certificate && s === "wait_certificate") return this.#onServerCertificate(body, msg);
      if (type === HandshakeType.serverKeyExchange && s === "wait_server_key_exchange") {
        return this.#onServerKeyExchange(body, msg);
      }
      if (type === HandshakeType.certificateRequest && s === "wait_certificate_request_or_done") {
        return this.#onCertificateRequest(body, msg);
      }
      if (
        type === HandshakeType.serverHelloDone &&
        (s === "wait_certificate_request_or_done" || s === "wait_server_hello_done")
      ) {
        return this.#onServerHelloDone(body, msg);
      }
      this.#unexpected(type);
    }
    if (type === HandshakeType.clientHello && s === "wait_client_hello") return this.#onClientHello(body, msg);
    if (type === HandshakeType.certificate && s === "wait_client_certificate") {
      return this.#onClientCertificate(body, msg);
    }
    if (type === HandshakeType.clientKeyExchange && s === "wait_client_key_exchange") {
      return this.#onClientKeyExchange(body, msg);
    }
    if (type === HandshakeType.certificateVerify && s === "wait_certificate_verify") {
      return this.#onCertificateVerify(body, msg);
    }
    this.#unexpected(type);
  }

  #deriveKeys(): void {
    const suite = this.#suite!;
    const kb = tlcpKeyBlock(this.#master!, this.#clientRandom, this.#serverRandom, keyBlockLength(suite.mode));
    this.#pending = protectionsFromKeyBlock(suite.mode, kb, this.#client);
  }

  #sendChangeCipherSpecAndFinished(): void {
    this.#sendRecord(ContentType.ccs, CCS_BODY);
    this.#records.setWriteProtection(this.#pending!.write);
    this.#sendHandshake(
      HandshakeType.finished,
      tlcpFinishedFromHash(this.#master!, this.#client, this.#transcriptHash()),
    );
  }

  #onFinished(body: Uint8Array, msg: Uint8Array): void {
    const expected = tlcpFinishedFromHash(this.#master!, !this.#client, this.#transcriptHash());
    if (!bytesEqual(expected, body)) throw new TlcpFatal("decrypt_error", "tlcp: Finished does not verify");
    this.#addTranscript(msg.slice());
    const weFinishLast = this.#client ? this.#resumed : !this.#resumed;
    if (weFinishLast) this.#sendChangeCipherSpecAndFinished();
    this.#complete();
  }

  #complete(): void {
    const suite = this.#suite!;
    this.#state = "connected";
    this.#transcript = [];
    this.#transcriptSm3 = createSm3();
    this.#ephemeral = undefined;
    if (!this.#resumed && this.#sessionId.length > 0) {
      this.#session = {
        id: this.#sessionId,
        masterSecret: this.#master!,
        cipher: suite.name,
        peerCertificates: this.#peerCerts,
        createdAt: this.#server?.sessionCache?.now() ?? Date.now(),
      };
      this.#server?.sessionCache?.set(this.#session);
    }
    this.#info = {
      version: "TLCP",
      cipher: suite.name,
      alpn: this.#alpn,
      sni: this.#sni,
      peerCertificates: this.#peerCerts,
      resumed: this.#resumed,
      group: suite.kx,
    };
    this.#flush();
    this.#cb.onHandshake(this.#info);
    if (this.#dead || this.#closeSent) return;
    const queued = this.#queued;
    this.#queued = [];
    for (const q of queued) this.#out.push(this.#records.seal(ContentType.applicationData, q));
  }

  #now(): Date {
    return (this.#server ?? this.#clientOpts)?.now?.() ?? new Date();
  }

  // ---- client ----

  #sendClientHello(): void {
    const o = this.#clientOpts!;
    this.#clientRandom = newRandom();
    const resume = o.session && this.#suites.some((s) => s.name === o.session!.cipher) ? o.session : undefined;
    const suites = new Writer();
    for (const s of this.#suites) suites.u16(s.code);
    const w = new Writer().u16(TLCP_VERSION).bytes(this.#clientRandom).vec8(resume?.id ?? new Uint8Array(0))
      .vec16(suites.finish()).vec8(new Uint8Array([0]));
    // Only the extensions we need: some TLCP servers reject what they do not know.
    const exts = new Writer();
    let any = false;
    const name = o.serverName;
    if (name && (o.sendServerName ?? !isIpLiteral(name))) {
      const host = new TextEncoder().encode(name);
      const list = new Writer().u8(0).vec16(host).finish();
      exts.u16(ExtensionType.serverName).vec16(new Writer().vec16(list).finish());
      any = true;
    }
    if (o.alpnProtocols?.length) {
      const list = new Writer();
      for (const p of o.alpnProtocols) list.vec8(new TextEncoder().encode(p));
      exts.u16(ExtensionType.alpn).vec16(new Writer().vec16(list.finish()).finish());
      any = true;
    }
    if (any) w.vec16(exts.finish());
    this.#sendHandshake(HandshakeType.clientHello, w.finish());
    this.#state = "wait_server_hello";
  }

  #onServerHello(body: Uint8Array, msg: Uint8Array): void {
    const o = this.#clientOpts!;
    const r = new Reader(body, "ServerHello");
    const version = r.u16();
    if (version !== TLCP_VERSION) {
      throw new TlcpFatal("protocol_version", `tlcp: server chose version 0x${version.toString(16)}`);
    }
    this.#serverRandom = r.bytes(32).slice();
    const sid = r.vec8().slice();
    if (sid.length > 32) throw new TlcpFatal("illegal_parameter", "tlcp: ServerHello: session id too long");
    const code = r.u16();
    const suite = this.#suites.find((s) => s.code === code);
    if (!suite) throw new TlcpFatal("illegal_parameter", `tlcp: server chose suite 0x${code.toString(16)}`);
    if (r.u8() !== 0) throw new TlcpFatal("illegal_parameter", "tlcp: server chose a compression method");
    if (r.remaining > 0) {
      const exts = new Reader(r.vec16(), "ServerHello extensions");
      const seen = new Set<number>();
      while (exts.remaining > 0) {
        const t = exts.u16();
        const data = exts.vec16();
        if (seen.has(t)) throw new TlcpFatal("illegal_parameter", `tlcp: ServerHello: duplicate extension ${t}`);
        seen.add(t);
        if (t === ExtensionType.alpn && o.alpnProtocols?.length) {
          const list = new Reader(data, "ALPN");
          const protos = new Reader(list.vec16(), "ALPN list");
          list.end();
          const p = new TextDecoder().decode(protos.vec8());
          protos.end();
          if (!o.alpnProtocols.includes(p)) throw new TlcpFatal("illegal_parameter", `tlcp: server chose ALPN "${p}"`);
          this.#alpn = p;
        } else if (t === ExtensionType.serverName && data.length === 0) {
          // The server acknowledged our SNI.
        } else if (t !== 0xff01) {
          throw new TlcpFatal("unsupported_extension", `tlcp: ServerHello: unsolicited extension ${t}`);
        }
      }
    }
    r.end();
    this.#suite = suite;
    this.#addTranscript(msg.slice());
    const session = o.session;
    if (session && sid.length > 0 && bytesEqual(sid, session.id)) {
      if (session.cipher !== suite.name) {
        throw new TlcpFatal("illegal_parameter", "tlcp: resumed session with another cipher suite");
      }
      this.#resumed = true;
      this.#sessionId = sid;
      this.#master = session.masterSecret;
      this.#peerCerts = [...session.peerCertificates];
      this.#session = session;
      this.#deriveKeys();
      this.#state = "wait_ccs";
      return;
    }
    this.#sessionId = sid;
    this.#state = "wait_certificate";
  }

  #onServerCertificate(body: Uint8Array, msg: Uint8Array): void {
    const o = this.#clientOpts!;
    const ders = parseCertificateList(body);
    if (ders.length < 2) {
      throw new TlcpFatal("bad_certificate", "tlcp: server sent fewer than two certificates (sign + enc)");
    }
    const certs = ders.map(parseDer);
    const sign = certs[0]!, enc = certs[1]!;
    if (o.verifyServer !== false) {
      const common = { roots: o.ca ?? [], intermediates: certs.slice(2), now: this.#now() };
      try {
        verifyCertificateChain(sign, {
          ...common,
          purpose: "sign",
          ...(o.serverName !== undefined ? { hostname: o.serverName } : {}),
        });
        verifyCertificateChain(enc, { ...common, purpose: "encrypt" });
      } catch (e) {
        throw new TlcpFatal(certificateAlert(e), `tlcp: server certificate: ${(e as Error).message}`, { cause: e });
      }
    } else {
      try {
        checkKeyUsage(enc, "encrypt");
      } catch (e) {
        throw new TlcpFatal(certificateAlert(e), `tlcp: server certificate: ${(e as Error).message}`, { cause: e });
      }
    }
    this.#peerSignKey = sm2Key(sign);
    this.#peerEncKey = sm2Key(enc);
    this.#peerEncDer = ders[1]!;
    this.#peerCerts = ders;
    this.#addTranscript(msg.slice());
    this.#state = "wait_server_key_exchange";
  }

  #onServerKeyExchange(body: Uint8Array, msg: Uint8Array): void {
    const r = new Reader(body, "ServerKeyExchange");
    let signed: Uint8Array;
    if (this.#suite!.kx === "ECDHE") {
      this.#peerEphemeral = readEcdheParams(r);
      const paramsLen = body.length - r.remaining;
      signed = concat(this.#clientRandom, this.#serverRandom, body.subarray(0, paramsLen));
    } else {
      const enc = this.#peerEncDer!;
      signed = concat(this.#clientRandom, this.#serverRandom, u24(enc.length), enc);
    }
    const sig = r.vec16();
    r.end();
    if (!verifySignature(this.#peerSignKey!, signed, sig)) {
      throw new TlcpFatal("decrypt_error", "tlcp: ServerKeyExchange signature does not verify");
    }
    this.#addTranscript(msg.slice());
    this.#state = "wait_certificate_request_or_done";
  }

  #onCertificateRequest(body: Uint8Array, msg: Uint8Array): void {
    const r = new Reader(body, "CertificateRequest");
    const types = r.vec8();
    if (types.length === 0) throw new TlcpFatal("decode_error", "tlcp: CertificateRequest without types");
    const cas = new Reader(r.vec16(), "CertificateRequest authorities");
    while (cas.remaining > 0) cas.vec16();
    r.end();
    this.#certRequested = true;
    this.#addTranscript(msg.slice());
    this.#state = "wait_server_hello_done";
  }

  #onServerHelloDone(body: Uint8Array, msg: Uint8Array): void {
    if (body.length !== 0) throw new TlcpFatal("decode_error", "tlcp: ServerHelloDone with a body");
    this.#addTranscript(msg.slice());
    const o = this.#clientOpts!;
    const cred = o.credentials;
    const suite = this.#suite!;
    if (suite.kx === "ECDHE" && (!cred || !this.#certRequested)) {
      throw new TlcpFatal(
        "handshake_failure",
        cred
          ? "tlcp: ECDHE suite but the server did not ask for the client's certificates"
          : "tlcp: ECDHE suites need the client's double certificates",
      );
    }
    if (this.#certRequested) {
      const signOnly = suite.kx === "ECC" && o.eccClientCertificates === "sign-only";
      const certs = !cred
        ? []
        : signOnly
        ? [cred.signCertificate, ...(cred.chain ?? [])]
        : [cred.signCertificate, cred.encCertificate, ...(cred.chain ?? [])];
      this.#sendHandshake(HandshakeType.certificate, certificateList(certs));
    }
    let pms: Uint8Array;
    if (suite.kx === "ECC") {
      pms = concat(new Uint8Array([TLCP_VERSION >>> 8, TLCP_VERSION & 0xff]), randomBytes(46));
      const ct = this.#peerEncKey!.encrypt(pms, { format: "asn1" });
      this.#sendHandshake(HandshakeType.clientKeyExchange, new Writer().vec16(ct).finish());
    } else {
      const eph = Sm2PrivateKey.generate();
      const params = ecdheParams(eph);
      const body = o.ecdheKeyExchangeEncoding === "length-prefixed" ? new Writer().vec16(params).finish() : params;
      pms = sm2KeyExchange({
        role: "responder",
        staticKey: cred!.encKey,
        ephemeralKey: eph,
        peerStaticKey: this.#peerEncKey!,
        peerEphemeralKey: this.#peerEphemeral!,
        keyLength: 48,
      }).key;
      this.#sendHandshake(HandshakeType.clientKeyExchange, body);
    }
    this.#master = tlcpMasterSecret(pms, this.#clientRandom, this.#serverRandom);
    pms.fill(0);
    this.#deriveKeys();
    if (this.#certRequested && cred) {
      const input = o.certificateVerifyInput === "transcript" ? this.#transcriptBytes() : this.#transcriptHash();
      this.#sendHandshake(HandshakeType.certificateVerify, new Writer().vec16(cred.signKey.sign(input)).finish());
    }
    this.#sendChangeCipherSpecAndFinished();
    this.#state = "wait_ccs";
  }

  // ---- server ----

  #onClientHello(body: Uint8Array, msg: Uint8Array): void {
    const o = this.#server!;
    const r = new Reader(body, "ClientHello");
    const version = r.u16();
    if (version !== TLCP_VERSION) {
      throw new TlcpFatal("protocol_version", `tlcp: client offered version 0x${version.toString(16)}, not TLCP`);
    }
    this.#clientRandom = r.bytes(32).slice();
    const sid = r.vec8().slice();
    if (sid.length > 32) throw new TlcpFatal("illegal_parameter", "tlcp: ClientHello: session id too long");
    const suitesBytes = r.vec16();
    if (suitesBytes.length === 0 || suitesBytes.length % 2 !== 0) {
      throw new TlcpFatal("decode_error", "tlcp: ClientHello: bad cipher suite list");
    }
    const offered = new Set<number>();
    for (let i = 0; i < suitesBytes.length; i += 2) offered.add((suitesBytes[i]! << 8) | suitesBytes[i + 1]!);
    const comp = r.vec8();
    if (!comp.includes(0)) throw new TlcpFatal("illegal_parameter", "tlcp: ClientHello: no null compression");
    let clientAlpn: string[] | undefined;
    if (r.remaining > 0) {
      const exts = new Reader(r.vec16(), "ClientHello extensions");
      const seen = new Set<number>();
      while (exts.remaining > 0) {
        const t = exts.u16();
        const data = exts.vec16();
        if (seen.has(t)) throw new TlcpFatal("illegal_parameter", `tlcp: ClientHello: duplicate extension ${t}`);
        seen.add(t);
        if (t === ExtensionType.serverName) {
          const er = new Reader(data, "server_name");
          const list = new Reader(er.vec16(), "server_name list");
          er.end();
          while (list.remaining > 0) {
            const kind = list.u8();
            const name = list.vec16();
            if (kind === 0 && this.#sni === undefined) this.#sni = new TextDecoder().decode(name);
          }
        } else if (t === ExtensionType.alpn) {
          const er = new Reader(data, "ALPN");
          const list = new Reader(er.vec16(), "ALPN list");
          er.end();
          clientAlpn = [];
          while (list.remaining > 0) clientAlpn.push(new TextDecoder().decode(list.vec8()));
        }
      }
    }
    r.end();
    this.#addTranscript(msg.slice());

    if (clientAlpn && o.alpnProtocols?.length) {
      const p = o.alpnProtocols.find((x) => clientAlpn!.includes(x));
      if (p === undefined) throw new TlcpFatal("no_application_protocol", "tlcp: no common ALPN protocol");
      this.#alpn = p;
    }

    const cache = o.sessionCache;
    const cached = sid.length > 0 && cache ? cache.get(sid) : undefined;
    const resumeSuite = cached && offered.has(TLCP_SUITES[cached.cipher].code)
      ? this.#suites.find((s) => s.name === cached.cipher)
      : undefined;
    const suite = resumeSuite ?? this.#suites.find((s) => offered.has(s.code));
    if (!suite) throw new TlcpFatal("handshake_failure", "tlcp: no cipher suite in common");
    this.#suite = suite;
    this.#serverRandom = newRandom();
    this.#resumed = resumeSuite !== undefined;
    this.#sessionId = this.#resumed ? sid : cache ? randomBytes(32) : new Uint8Array(0);

    const w = new Writer().u16(TLCP_VERSION).bytes(this.#serverRandom).vec8(this.#sessionId).u16(suite.code).u8(0);
    if (this.#alpn !== undefined) {
      const list = new Writer().vec8(new TextEncoder().encode(this.#alpn)).finish();
      w.vec16(new Writer().u16(ExtensionType.alpn).vec16(new Writer().vec16(list).finish()).finish());
    }
    this.#sendHandshake(HandshakeType.serverHello, w.finish());

    if (this.#resumed) {
      this.#master = cached!.masterSecret;
      this.#peerCerts = [...cached!.peerCertificates];
      this.#session = cached;
      this.#deriveKeys();
      this.#sendChangeCipherSpecAndFinished();
      this.#state = "wait_ccs";
      return;
    }

    const cred = o.credentials;
    this.#sendHandshake(
      HandshakeType.certificate,
      certificateList([cred.signCertificate, cred.encCertificate, ...(cred.chain ?? [])]),
    );
    let ske: Uint8Array;
    if (suite.kx === "ECDHE") {
      this.#ephemeral = Sm2PrivateKey.generate();
      const params = ecdheParams(this.#ephemeral);
      const sig = cred.signKey.sign(concat(this.#clientRandom, this.#serverRandom, params));
      ske = new Writer().bytes(params).vec16(sig).finish();
    } else {
      const enc = cred.encCertificate;
      const sig = cred.signKey.sign(concat(this.#clientRandom, this.#serverRandom, u24(enc.length), enc));
      ske = new Writer().vec16(sig).finish();
    }
    this.#sendHandshake(HandshakeType.serverKeyExchange, ske);
    this.#certRequested = suite.kx === "ECDHE" || (o.clientAuth ?? "none") !== "none";
    if (this.#certRequested) {
      const cas = new Writer();
      for (const ca of o.clientCa ?? []) cas.vec16(ca.subjectDer);
      this.#sendHandshake(
        HandshakeType.certificateRequest,
        new Writer().vec8(new Uint8Array([CERT_TYPE_ECC_SIGN])).vec16(cas.finish()).finish(),
      );
    }
    this.#sendHandshake(HandshakeType.serverHelloDone, new Uint8Array(0));
    this.#state = this.#certRequested ? "wait_client_certificate" : "wait_client_key_exchange";
  }

  #onClientCertificate(body: Uint8Array, msg: Uint8Array): void {
    const o = this.#server!;
    const ders = parseCertificateList(body);
    const ecdhe = this.#suite!.kx === "ECDHE";
    if (ders.length === 0) {
      if (ecdhe) {
        throw new TlcpFatal("handshake_failure", "tlcp: ECDHE suite but the client sent no certificates");
      }
      if (o.clientAuth === "require") throw new TlcpFatal("handshake_failure", "tlcp: client certificate required");
    } else {
      const certs = ders.map(parseDer);
      const sign = certs[0]!;
      // The second certificate is the client's encryption certificate unless it is a CA (a plain chain).
      const second = certs[1];
      const enc = second && !second.basicConstraints?.ca ? second : undefined;
      if (ecdhe && !enc) {
        throw new TlcpFatal("handshake_failure", "tlcp: ECDHE suite but the client sent no encryption certificate");
      }
      const intermediates = certs.slice(enc ? 2 : 1);
      try {
        if (o.clientCa?.length) {
          const common = { roots: o.clientCa, intermediates, now: this.#now() };
          verifyCertificateChain(sign, { ...common, purpose: "sign" });
          if (enc) verifyCertificateChain(enc, { ...common, purpose: "encrypt" });
        } else {
          checkKeyUsage(sign, "sign");
          if (enc) checkKeyUsage(enc, "encrypt");
        }
      } catch (e) {
        throw new TlcpFatal(certificateAlert(e), `tlcp: client certificate: ${(e as Error).message}`, { cause: e });
      }
      this.#peerSignKey = sm2Key(sign);
      if (enc) this.#peerEncKey = sm2Key(enc);
      this.#peerCerts = ders;
    }
    this.#addTranscript(msg.slice());
    this.#state = "wait_client_key_exchange";
  }

  #onClientKeyExchange(body: Uint8Array, msg: Uint8Array): void {
    const cred = this.#server!.credentials;
    let pms: Uint8Array;
    if (this.#suite!.kx === "ECC") {
      const r = new Reader(body, "ClientKeyExchange");
      const ct = r.vec16();
      r.end();
      try {
        pms = cred.encKey.decrypt(ct, { format: ct[0] === 0x04 ? "c1c3c2" : "asn1" });
      } catch (e) {
        throw new TlcpFatal("decrypt_error", "tlcp: ClientKeyExchange does not decrypt", { cause: e });
      }
      if (pms.length !== 48 || pms[0] !== TLCP_VERSION >>> 8 || pms[1] !== (TLCP_VERSION & 0xff)) {
        throw new TlcpFatal("illegal_parameter", "tlcp: ClientKeyExchange: bad premaster secret");
      }
    } else {
      // Tongsuo sends ECParameters || ECPoint bare (starts with curve type 3); GmSSL wraps it in a 2-byte length.
      const inner = body.length > 0 && body[0] === 3 ? body : new Reader(body, "ClientKeyExchange").vec16();
      if (inner !== body && inner.length + 2 !== body.length) {
        throw new TlcpFatal("decode_error", "tlcp: ClientKeyExchange: trailing bytes");
      }
      const r = new Reader(inner, "ClientKeyExchange");
      const peerEph = readEcdheParams(r);
      r.end();
      pms = sm2KeyExchange({
        role: "initiator",
        staticKey: cred.encKey,
        ephemeralKey: this.#ephemeral!,
        peerStaticKey: this.#peerEncKey!,
        peerEphemeralKey: peerEph,
        keyLength: 48,
      }).key;
    }
    this.#addTranscript(msg.slice());
    this.#master = tlcpMasterSecret(pms, this.#clientRandom, this.#serverRandom);
    pms.fill(0);
    this.#deriveKeys();
    this.#state = this.#peerSignKey ? "wait_certificate_verify" : "wait_ccs";
  }

  #onCertificateVerify(body: Uint8Array, msg: Uint8Array): void {
    const r = new Reader(body, "CertificateVerify");
    const sig = r.vec16();
    r.end();
    const key = this.#peerSignKey!;
    // GB/T 38636 and Tongsuo sign SM3(messages); GmSSL 3 signs the messages: accept either, trying first the input
    // this key signed last time (a returning GmSSL client then costs one verification, not two).
    const rawFirst = rawTranscriptSigners.has(key);
    const first = rawFirst ? this.#transcriptBytes() : this.#transcriptHash();
    if (!verifySignature(key, first, sig)) {
      const second = rawFirst ? this.#transcriptHash() : this.#transcriptBytes();
      if (!verifySignature(key, second, sig)) {
        throw new TlcpFatal("decrypt_error", "tlcp: CertificateVerify signature does not verify");
      }
      if (rawFirst) rawTranscriptSigners.delete(key);
      else rawTranscriptSigners.add(key);
    }
    this.#addTranscript(msg.slice());
    this.#state = "wait_ccs";
  }
}

/**
 * Creates a TLCP server engine. Throws `RangeError` for inconsistent options (client authentication without
 * roots, unknown suites).
 *
 * @param options credentials, client authentication, suites, session cache
 * @param callbacks where the engine writes ciphertext and delivers data and events
 */
export function createTlcpServer(options: TlcpServerOptions, callbacks: TlsEngineCallbacks): TlcpEngine {
  return new TlcpEngine({ server: options }, callbacks);
}

/**
 * Creates a TLCP client engine; `start()` sends the ClientHello. Throws `RangeError` for inconsistent options
 * (no roots while verifying, unknown suites).
 *
 * @param options roots, server name, client credentials, session to resume, interop encodings
 * @param callbacks where the engine writes ciphertext and delivers data and events
 */
export function createTlcpClient(options: TlcpClientOptions, callbacks: TlsEngineCallbacks): TlcpEngine {
  return new TlcpEngine({ client: options }, callbacks);
}
