/**
 * The TLS 1.3 client engine: {@link createTls13Client} runs a full (EC)DHE handshake (RFC 8446) with the RFC 8998
 * GM suites or the standard ones, answers a HelloRetryRequest, sends SNI and ALPN, verifies the server chain
 * against trusted roots (host name = the server name) and its CertificateVerify, answers a CertificateRequest
 * with its own credential (or an empty Certificate), sends the middlebox-compatibility change_cipher_spec, and
 * supports KeyUpdate and close_notify. With a {@link Tls13ClientOptions.sessionCache} it keeps the server's
 * NewSessionTickets and offers the newest one as a PSK (`psk_dhe_ke`: ECDHE + PSK, with its binder) in the next
 * handshake to the same server; a ticket is offered once. It never sends early data.
 *
 * @example
 * ```ts
 * import { createTls13Client } from "./mod.ts";
 * import { parseCertificates } from "../../../crypto/mod.ts";
 * const engine = createTls13Client({
 *   serverName: "localhost",
 *   trustedCertificates: parseCertificates(Deno.readTextFileSync("ca.crt")),
 *   cipherSuites: ["TLS_SM4_GCM_SM3"],
 *   groups: ["curveSM2"],
 * }, { write: (b) => {}, onData: (p) => {}, onHandshake: (i) => {}, onClose: () => {}, onError: (e) => {} });
 * engine.start();
 * ```
 *
 * @module
 */

import type { TlsEngine, TlsEngineCallbacks } from "../../../api/tls.ts";
import { canonicalIp, type Certificate } from "../../../crypto/mod.ts";
import { ExtensionType, fatal, handshakeMessage, HandshakeType, TLS12, TLS13 } from "./_codec.ts";
import { type HandshakeDriver, Tls13Core, Transcript } from "./_engine.ts";
import { verifyPeerChain } from "./_verify.ts";
import {
  certificateVerifyContent,
  RFC8998_SM2_ID,
  SM2_DEFAULT_SIGNER_ID,
  TLS13_SIGNATURE_SCHEMES,
  type Tls13Credential,
  type Tls13SignatureSchemeName,
  verifyCertificateVerify,
} from "./credentials.ts";
import { type KeyShareGroup, type KeyShareKey, resolveGroups, type Tls13GroupName } from "./groups.ts";
import { finishedVerifyData, KeySchedule, pskBinder, ticketPsk } from "./key_schedule.ts";
import {
  encodeCertificateMessage,
  encodeCertificateVerify,
  encodeClientHello,
  parseCertificateMessage,
  parseCertificateRequest,
  parseCertificateVerify,
  parseEncryptedExtensions,
  parseNewSessionTicket,
  parseServerHello,
  pskBindersLength,
  setPskBinders,
} from "./messages.ts";
import type { Tls13ClientSession, Tls13SessionCache } from "./session_ticket.ts";
import { resolveCipherSuites, type Tls13CipherSuite, type Tls13CipherSuiteName } from "./suites.ts";

/** Options of {@link createTls13Client}. */
export interface Tls13ClientOptions {
  /** The server's name: sent as SNI (unless an IP literal) and matched against the server certificate. */
  readonly serverName?: string | undefined;
  /** Trust anchors for the server chain (required unless `verifyServerCertificate` is false). */
  readonly trustedCertificates?: readonly Certificate[] | undefined;
  /** Set false to skip chain and host-name checks (the CertificateVerify signature is still checked). */
  readonly verifyServerCertificate?: boolean | undefined;
  /** ALPN protocols to offer, in preference order. */
  readonly alpn?: readonly string[] | undefined;
  /** Cipher suites to offer, in preference order (default: GM suites, then the standard ones). */
  readonly cipherSuites?: readonly Tls13CipherSuiteName[] | undefined;
  /** Groups to offer, in preference order (default x25519, secp256r1, curveSM2). */
  readonly groups?: readonly Tls13GroupName[] | undefined;
  /** Groups to send key shares for in the first ClientHello (default: the first of `groups`). */
  readonly keyShares?: readonly Tls13GroupName[] | undefined;
  /** Signature schemes to accept from the server (default: sm2sig_sm3, ecdsa_secp256r1_sha256). */
  readonly signatureSchemes?: readonly Tls13SignatureSchemeName[] | undefined;
  /** Our certificate, sent when the server asks for one. */
  readonly certificate?: Tls13Credential | undefined;
  /** Send a session ID and change_cipher_spec for middlebox compatibility (RFC 8446 §D.4). Default true. */
  readonly middleboxCompat?: boolean | undefined;
  /** SM2 ID for our `sm2sig_sm3` CertificateVerify (default `TLSv1.3+GM+Cipher+Suite`, RFC 8998 §3.2.1). */
  readonly sm2SignerId?: Uint8Array | undefined;
  /** SM2 IDs accepted in the server's CertificateVerify, tried in order (default: RFC 8998 ID, SM2 default ID). */
  readonly sm2VerifyIds?: readonly Uint8Array[] | undefined;
  /** Clock for certificate validity (default: now). */
  readonly now?: (() => Date) | undefined;
  /** Where tickets are kept and taken from for resumption (default: none, no resumption). */
  readonly sessionCache?: Tls13SessionCache | undefined;
  /** The cache key for this server (default: `serverName`, or "" without one). */
  readonly sessionKey?: string | undefined;
  /**
   * Leave psk_key_exchange_modes out of the ClientHello, as GmSSL 3.1 does (tests: such a client gets no tickets,
   * RFC 8446 §4.2.9). Default false.
   */
  readonly omitPskModes?: boolean | undefined;
}

interface ClientConfig {
  readonly serverName: string | undefined;
  readonly sni: string | undefined;
  readonly roots: readonly Certificate[];
  readonly verify: boolean;
  readonly alpn: readonly string[] | undefined;
  readonly suites: readonly Tls13CipherSuite[];
  readonly groups: readonly KeyShareGroup[];
  readonly keyShares: readonly KeyShareGroup[];
  readonly schemes: readonly number[];
  readonly certificate: Tls13Credential | undefined;
  readonly compat: boolean;
  readonly sm2SignerId: Uint8Array;
  readonly sm2VerifyIds: readonly Uint8Array[];
  readonly now: () => Date;
  readonly cache: Tls13SessionCache | undefined;
  readonly sessionKey: string;
  readonly omitPskModes: boolean;
}

function resolveClientOptions(o: Tls13ClientOptions): ClientConfig {
  const verify = o.verifyServerCertificate ?? true;
  const roots = o.trustedCertificates ?? [];
  if (verify && roots.length === 0) {
    throw new RangeError("tls13 client: trustedCertificates are required unless verifyServerCertificate is false");
  }
  const groups = resolveGroups(o.groups);
  const keyShares = o.keyShares ? resolveGroups(o.keyShares) : [groups[0]!];
  for (const g of keyShares) {
    if (!groups.includes(g)) throw new RangeError(`tls13 client: key share group ${g.name} is not in groups`);
  }
  const schemeNames = o.signatureSchemes ?? ["sm2sig_sm3", "ecdsa_secp256r1_sha256"];
  if (schemeNames.length === 0) throw new RangeError("tls13 client: signature scheme list is empty");
  const schemes = schemeNames.map((n) => {
    const id = (TLS13_SIGNATURE_SCHEMES as Record<string, number | undefined>)[n];
    if (id === undefined) throw new RangeError(`tls13 client: unknown signature scheme "${n}"`);
    return id;
  });
  const serverName = o.serverName;
  const sni = serverName !== undefined && canonicalIp(serverName) === undefined ? serverName : undefined;
  return {
    serverName,
    sni,
    roots,
    verify,
    alpn: o.alpn,
    suites: resolveCipherSuites(o.cipherSuites),
    groups,
    keyShares,
    schemes,
    certificate: o.certificate,
    compat: o.middleboxCompat ?? true,
    sm2SignerId: o.sm2SignerId ?? RFC8998_SM2_ID,
    sm2VerifyIds: o.sm2VerifyIds ?? [RFC8998_SM2_ID, SM2_DEFAULT_SIGNER_ID],
    now: o.now ?? (() => new Date()),
    cache: o.sessionCache,
    sessionKey: o.sessionKey ?? serverName ?? "",
    omitPskModes: o.omitPskModes ?? false,
  };
}

type ClientState =
  | "start"
  | "server_hello"
  | "encrypted_extensions"
  | "certificate_request"
  | "certificate"
  | "certificate_verify"
  | "finished"
  | "done";

class ClientDriver implements HandshakeDriver {
  readonly isClient = true;
  readonly #core: Tls13Core;
  readonly #cfg: ClientConfig;
  #state: ClientState = "start";
  readonly #transcript = new Transcript();
  readonly #random = crypto.getRandomValues(new Uint8Array(32));
  readonly #sessionId: Uint8Array;
  #keys = new Map<number, KeyShareKey>();
  #retried = false;
  #retrySuite: Tls13CipherSuite | undefined;
  #sentCcs = false;
  #suite: Tls13CipherSuite | undefined;
  #group: KeyShareGroup | undefined;
  #schedule: KeySchedule | undefined;
  #serverHsSecret: Uint8Array | undefined;
  #clientHsSecret: Uint8Array | undefined;
  #alpn: string | undefined;
  #certRequest: { context: Uint8Array; schemes: readonly number[] } | undefined;
  #peerChain: readonly Uint8Array[] = [];
  #peerLeaf: Certificate | undefined;
  #offered = new Set<number>();
  /** The ticket offered, with the suite whose hash it needs; dropped if a HelloRetryRequest changes the hash. */
  #offer: { session: Tls13ClientSession; suite: Tls13CipherSuite } | undefined;
  #pskSchedule: KeySchedule | undefined;
  #resumed = false;
  #resumptionSecret: Uint8Array | undefined;

  constructor(core: Tls13Core, cfg: ClientConfig) {
    this.#core = core;
    this.#cfg = cfg;
    this.#sessionId = cfg.compat ? crypto.getRandomValues(new Uint8Array(32)) : new Uint8Array(0);
  }

  get acceptsChangeCipherSpec(): boolean {
    return this.#state !== "start" && this.#state !== "done";
  }

  start(): void {
    const session = this.#cfg.omitPskModes ? undefined : this.#cfg.cache?.take(this.#cfg.sessionKey);
    const suite = session && this.#cfg.suites.find((s) => s.id === session.suite);
    if (session && suite) this.#offer = { session, suite };
    for (const g of this.#cfg.keyShares) this.#keys.set(g.id, g.generate());
    this.#sendClientHello(undefined);
    this.#state = "server_hello";
  }

  #sendClientHello(cookie: Uint8Array | undefined): void {
    const cfg = this.#cfg;
    const body = encodeClientHello({
      random: this.#random,
      sessionId: this.#sessionId,
      cipherSuites: cfg.suites.map((s) => s.id),
      serverName: cfg.sni,
      supportedGroups: cfg.groups.map((g) => g.id),
      signatureAlgorithms: cfg.schemes,
      keyShares: [...this.#keys].map(([group, k]) => ({ group, key: k.publicKey })),
      alpn: cfg.alpn,
      cookie,
      psk: this.#pskOffer(),
      omitPskModes: cfg.omitPskModes,
    });
    this.#offered = new Set([ExtensionType.supportedGroups]);
    if (cfg.sni !== undefined) this.#offered.add(ExtensionType.serverName);
    if (cfg.alpn && cfg.alpn.length > 0) this.#offered.add(ExtensionType.alpn);
    const m = handshakeMessage(HandshakeType.clientHello, body);
    if (this.#offer) this.#bind(m);
    this.#transcript.add(m);
    this.#core.sendHandshake(m);
  }

  #pskOffer(): { identities: { identity: Uint8Array; obfuscatedAge: number }[]; binderLengths: number[] } | undefined {
    const o = this.#offer;
    if (!o) return undefined;
    const age = Math.max(0, this.#cfg.cache!.now() - o.session.receivedAt);
    return {
      identities: [{ identity: o.session.ticket, obfuscatedAge: (age + o.session.ageAdd) >>> 0 }],
      binderLengths: [o.suite.hash.outputLength],
    };
  }

  /** Computes the binder over the ClientHello up to its binders list (after any earlier messages) and sets it. */
  #bind(hello: Uint8Array): void {
    const { session, suite } = this.#offer!;
    const schedule = new KeySchedule(suite.hash, session.psk);
    const partial = hello.subarray(0, hello.length - pskBindersLength([suite.hash.outputLength]));
    const th = this.#retried ? this.#transcript.digestWith(partial) : suite.hash.digest(partial);
    setPskBinders(hello, [pskBinder(suite.hash, schedule.binderKey(), th)]);
    this.#pskSchedule = schedule;
  }

  onMessage(type: number, body: Uint8Array, raw: Uint8Array): void {
    const expect = (t: number, name: string) => {
      if (type !== t) fatal("unexpected_message", `expected ${name}, got handshake message ${type}`);
    };
    switch (this.#state) {
      case "server_hello":
        expect(HandshakeType.serverHello, "ServerHello");
        return this.#onServerHello(body, raw);
      case "encrypted_extensions":
        expect(HandshakeType.encryptedExtensions, "EncryptedExtensions");
        return this.#onEncryptedExtensions(body, raw);
      case "certificate_request":
        if (type === HandshakeType.certificateRequest) return this.#onCertificateRequest(body, raw);
        expect(HandshakeType.certificate, "Certificate");
        return this.#onCertificate(body, raw);
      case "certificate":
        expect(HandshakeType.certificate, "Certificate");
        return this.#onCertificate(body, raw);
      case "certificate_verify":
        expect(HandshakeType.certificateVerify, "CertificateVerify");
        return this.#onCertificateVerify(body, raw);
      case "finished":
        expect(HandshakeType.finished, "Finished");
        return this.#onFinished(body, raw);
      default:
        fatal("unexpected_message", `unexpected handshake message ${type}`);
    }
  }

  #onServerHello(body: Uint8Array, raw: Uint8Array): void {
    const sh = parseServerHello(body, this.#offer !== undefined);
    if (sh.supportedVersion === undefined) {
      fatal("protocol_version", "server does not speak TLS 1.3 (no supported_versions)");
    }
    if (sh.supportedVersion !== TLS13) fatal("illegal_parameter", "server selected a version we did not offer");
    if (sh.legacyVersion !== TLS12) fatal("protocol_version", "ServerHello legacy_version is not TLS 1.2");
    if (!equal(sh.sessionId, this.#sessionId)) fatal("illegal_parameter", "ServerHello session ID is not ours");
    if (sh.compressionMethod !== 0) fatal("illegal_parameter", "ServerHello compression method is not null");
    const suite = this.#cfg.suites.find((s) => s.id === sh.cipherSuite);
    if (!suite) fatal("illegal_parameter", "server selected a cipher suite we did not offer");
    if (this.#retrySuite && suite !== this.#retrySuite) {
      fatal("illegal_parameter", "ServerHello cipher suite differs from the HelloRetryRequest");
    }
    this.#transcript.setHash(suite.hash);
    if (sh.retry) return this.#onHelloRetryRequest(sh.selectedGroup, sh.cookie, suite, raw);

    if (!sh.keyShare) fatal("missing_extension", "ServerHello has no key_share");
    const key = this.#keys.get(sh.keyShare.group);
    if (!key) fatal("illegal_parameter", "server key share is for a group we sent no share for");
    const group = this.#cfg.groups.find((g) => g.id === sh.keyShare!.group)!;
    let psk: KeySchedule | undefined;
    if (sh.selectedIdentity !== undefined) {
      if (sh.selectedIdentity !== 0) fatal("illegal_parameter", "server selected a PSK we did not offer");
      if (this.#offer!.suite.hash !== suite.hash) {
        fatal("illegal_parameter", "server resumed with a cipher suite whose hash differs from the ticket's");
      }
      psk = this.#pskSchedule;
      this.#resumed = true;
      this.#peerChain = this.#offer!.session.peerCertificates;
    }
    const shared = key.deriveShared(sh.keyShare.key);
    this.#transcript.add(raw);
    this.#suite = suite;
    this.#group = group;
    const schedule = psk ?? new KeySchedule(suite.hash);
    this.#schedule = schedule;
    schedule.handshakeSecret(shared);
    const [cHs, sHs] = schedule.handshakeTrafficSecrets(this.#transcript.digest());
    this.#clientHsSecret = cHs;
    this.#serverHsSecret = sHs;
    this.#core.setReadSecret(suite, sHs);
    this.#core.setWriteSecret(suite, cHs);
    this.#state = "encrypted_extensions";
  }

  #onHelloRetryRequest(
    selected: number | undefined,
    cookie: Uint8Array | undefined,
    suite: Tls13CipherSuite,
    raw: Uint8Array,
  ): void {
    if (this.#retried) fatal("unexpected_message", "second HelloRetryRequest");
    this.#retried = true;
    this.#retrySuite = suite;
    // The second ClientHello offers the ticket only if its hash is the chosen suite's (RFC 8446 §4.1.4).
    if (this.#offer && this.#offer.suite.hash !== suite.hash) this.#offer = undefined;
    if (selected === undefined && cookie === undefined) {
      fatal("illegal_parameter", "HelloRetryRequest would not change the ClientHello");
    }
    if (selected !== undefined) {
      const group = this.#cfg.groups.find((g) => g.id === selected);
      if (!group) fatal("illegal_parameter", "HelloRetryRequest selects a group we did not offer");
      if (this.#keys.has(selected)) fatal("illegal_parameter", "HelloRetryRequest selects a group we sent a share for");
      this.#keys = new Map([[selected, group.generate()]]);
    }
    this.#transcript.replaceWithMessageHash();
    this.#transcript.add(raw);
    if (this.#cfg.compat && !this.#sentCcs) {
      this.#core.sendChangeCipherSpec();
      this.#sentCcs = true;
    }
    this.#sendClientHello(cookie);
  }

  #onEncryptedExtensions(body: Uint8Array, raw: Uint8Array): void {
    const ee = parseEncryptedExtensions(body, this.#offered);
    if (ee.earlyData) fatal("illegal_parameter", "server accepted early data we did not send");
    if (ee.alpn !== undefined && !this.#cfg.alpn?.includes(ee.alpn)) {
      fatal("illegal_parameter", `server selected ALPN "${ee.alpn}" that we did not offer`);
    }
    this.#alpn = ee.alpn;
    this.#transcript.add(raw);
    // A resumed handshake has no certificates: Finished comes next (RFC 8446 §2.2).
    this.#state = this.#resumed ? "finished" : "certificate_request";
  }

  #onCertificateRequest(body: Uint8Array, raw: Uint8Array): void {
    const cr = parseCertificateRequest(body);
    if (cr.context.length !== 0) {
      fatal("illegal_parameter", "CertificateRequest context must be empty in the handshake");
    }
    this.#certRequest = { context: cr.context, schemes: cr.signatureAlgorithms };
    this.#transcript.add(raw);
    this.#state = "certificate";
  }

  #onCertificate(body: Uint8Array, raw: Uint8Array): void {
    const msg = parseCertificateMessage(body);
    if (msg.context.length !== 0) fatal("illegal_parameter", "server Certificate has a request context");
    if (msg.chain.length === 0) fatal("decode_error", "server sent an empty Certificate");
    this.#peerLeaf = verifyPeerChain(msg.chain, {
      roots: this.#cfg.roots,
      verify: this.#cfg.verify,
      hostname: this.#cfg.serverName,
      now: this.#cfg.now(),
    });
    this.#peerChain = msg.chain;
    this.#transcript.add(raw);
    this.#state = "certificate_verify";
  }

  #onCertificateVerify(body: Uint8Array, raw: Uint8Array): void {
    const cv = parseCertificateVerify(body);
    if (!this.#cfg.schemes.includes(cv.scheme)) {
      fatal("illegal_parameter", "server signed with a scheme we did not offer");
    }
    const content = certificateVerifyContent(true, this.#transcript.digest());
    verifyCertificateVerify(this.#peerLeaf!, cv.scheme, content, cv.signature, this.#cfg.sm2VerifyIds);
    this.#transcript.add(raw);
    this.#state = "finished";
  }

  #onFinished(body: Uint8Array, raw: Uint8Array): void {
    const suite = this.#suite!;
    const core = this.#core;
    const expected = finishedVerifyData(suite.hash, this.#serverHsSecret!, this.#transcript.digest());
    if (body.length !== expected.length) fatal("decode_error", "server Finished has the wrong length");
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ body[i]!;
    if (diff !== 0) fatal("decrypt_error", "server Finished does not verify");
    this.#transcript.add(raw);
    const [cAp, sAp] = this.#schedule!.applicationTrafficSecrets(this.#transcript.digest());
    core.setReadSecret(suite, sAp);

    // One record per handshake message, flushed in one write: GmSSL 3 reads exactly one message per record.
    const send = (type: number, b: Uint8Array) => {
      const m = handshakeMessage(type, b);
      this.#transcript.add(m);
      core.sendHandshake(m);
    };
    if (this.#certRequest) {
      const cred = this.#cfg.certificate;
      const usable = cred !== undefined && this.#certRequest.schemes.includes(TLS13_SIGNATURE_SCHEMES[cred.scheme]);
      send(HandshakeType.certificate, encodeCertificateMessage(this.#certRequest.context, usable ? cred.chain : []));
      if (usable) {
        const content = certificateVerifyContent(false, this.#transcript.digest());
        const sig = cred.sign(content, this.#cfg.sm2SignerId);
        send(HandshakeType.certificateVerify, encodeCertificateVerify(TLS13_SIGNATURE_SCHEMES[cred.scheme], sig));
      }
    }
    // The compatibility change_cipher_spec goes right before Finished, where TLS 1.2 has it: GmSSL 3's server reads
    // it only there and takes any record before the client Certificate for that Certificate (RFC 8446 §5 lets a
    // peer send it anywhere before its Finished).
    if (this.#cfg.compat && !this.#sentCcs) {
      core.sendChangeCipherSpec();
      this.#sentCcs = true;
    }
    send(HandshakeType.finished, finishedVerifyData(suite.hash, this.#clientHsSecret!, this.#transcript.digest()));
    core.setWriteSecret(suite, cAp);
    if (this.#cfg.cache) this.#resumptionSecret = this.#schedule!.resumptionMasterSecret(this.#transcript.digest());
    this.#state = "done";
    core.complete({
      version: "TLSv1.3",
      cipher: suite.name,
      alpn: this.#alpn,
      sni: this.#cfg.sni,
      peerCertificates: this.#peerChain,
      resumed: this.#resumed,
      group: this.#group!.name,
    });
  }

  onNewSessionTicket(body: Uint8Array): void {
    const nst = parseNewSessionTicket(body);
    const cache = this.#cfg.cache;
    if (!cache || !this.#resumptionSecret || nst.lifetime === 0) return;
    const suite = this.#suite!;
    cache.put(this.#cfg.sessionKey, {
      ticket: nst.ticket,
      suite: suite.id,
      psk: ticketPsk(suite.hash, this.#resumptionSecret, nst.nonce),
      receivedAt: cache.now(),
      lifetime: nst.lifetime,
      ageAdd: nst.ageAdd,
      alpn: this.#alpn,
      peerCertificates: this.#peerChain,
    });
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Creates a TLS 1.3 client engine (see the module doc). Option errors throw a `RangeError` here; everything
 * after is reported through `callbacks.onError`. Call `start()` to send the ClientHello.
 *
 * @param options server name, trust anchors, suites, groups, ALPN and our certificate
 * @param callbacks the provider's side of the engine contract
 */
export function createTls13Client(options: Tls13ClientOptions, callbacks: TlsEngineCallbacks): TlsEngine {
  return createTls13ClientFactory(options)(callbacks);
}

/**
 * Resolves `options` once and returns a per-connection factory (what a cluster's transport socket should hold).
 *
 * @param options as for {@link createTls13Client}
 */
export function createTls13ClientFactory(options: Tls13ClientOptions): (callbacks: TlsEngineCallbacks) => TlsEngine {
  const cfg = resolveClientOptions(options);
  return (callbacks) => {
    const core = new Tls13Core(callbacks);
    core.bind(new ClientDriver(core, cfg));
    return core;
  };
}
