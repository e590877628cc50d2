/**
 * The TLS 1.3 server engine: {@link createTls13Server} answers a ClientHello with a full (EC)DHE handshake
 * (RFC 8446), the RFC 8998 GM suites or the standard ones, HelloRetryRequest when the client has no share for
 * the chosen group, certificate choice by SNI and signature scheme, optional or required client certificates,
 * ALPN, the middlebox-compatibility change_cipher_spec, KeyUpdate and close_notify.
 *
 * Resumption (with {@link Tls13ServerOptions.sessionTickets}): each handshake gives the client stateless
 * NewSessionTickets (the resumption state sealed with the first ticket key, see `session_ticket.ts`), in the same
 * write as the server's Finished when no client certificate was requested (the client's Finished, which the
 * tickets' secret covers, is then known ahead), else after the client's Finished; and the server accepts
 * a ticket offered in `pre_shared_key` with `psk_dhe_ke` (ECDHE + PSK): the ticket must open under one of the keys,
 * be within its lifetime, match the suite's hash and the SNI, and its binder must verify (else `decrypt_error`).
 * A ticket that does not open, or has expired, gets a full handshake. `psk_ke` (no ECDHE) is not accepted. A
 * client that sends no psk_key_exchange_modes with psk_dhe_ke gets no tickets (RFC 8446 §4.2.9; GmSSL 3.1).
 *
 * Not supported, by design: 0-RTT. A ClientHello offering early data gets a handshake without it, and the server
 * skips the 0-RTT records it cannot decrypt (RFC 8446 §4.2.10), up to {@link Tls13ServerOptions.maxEarlyDataSkip}
 * bytes.
 *
 * @example
 * ```ts
 * import { createTls13Server, loadTls13Credential } from "./mod.ts";
 * const credential = loadTls13Credential(Deno.readTextFileSync("server.crt"), Deno.readTextFileSync("server.key"));
 * const engine = createTls13Server({ certificates: [credential] }, {
 *   write: (bytes) => {}, onData: (plain) => {}, onHandshake: (info) => {}, onClose: () => {}, onError: (e) => {},
 * });
 * engine.start();
 * ```
 *
 * @module
 */

import type { TlsEngine, TlsEngineCallbacks } from "../../../api/tls.ts";
import { type Certificate, checkHostname } from "../../../crypto/mod.ts";
import { fatal, handshakeMessage, HandshakeType, TLS13 } from "./_codec.ts";
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
  type ClientHello,
  encodeCertificateMessage,
  encodeCertificateRequest,
  encodeCertificateVerify,
  encodeEncryptedExtensions,
  encodeNewSessionTicket,
  encodeServerHello,
  parseCertificateMessage,
  parseCertificateVerify,
  parseClientHello,
  PskMode,
} from "./messages.ts";
import { decodeTicketState, encodeTicketState, type SessionTicketKeys, type TicketState } from "./session_ticket.ts";
import { resolveCipherSuites, type Tls13CipherSuite, type Tls13CipherSuiteName } from "./suites.ts";

/** What the certificate selector sees of a ClientHello. */
export interface Tls13CertificateQuery {
  /** The SNI host name (lower case), if sent. */
  readonly serverName: string | undefined;
  /** The signature schemes the client accepts that this engine supports. */
  readonly signatureSchemes: readonly Tls13SignatureSchemeName[];
  /** The cipher suite the server chose. */
  readonly cipherSuite: Tls13CipherSuiteName;
}

/** Client-certificate policy: none, ask (`request`), or insist (`require`, else `certificate_required`). */
export type Tls13ClientAuth = "none" | "request" | "require";

/** Options of {@link createTls13Server}. */
export interface Tls13ServerOptions {
  /**
   * Certificates to serve, each from {@link loadTls13Credential}. Without a `selectCertificate` callback the
   * engine picks one the client can verify (its signature_algorithms), preferring a leaf that names the SNI
   * host, then one of the suite's family (SM2 for the GM suites), then the first listed.
   */
  readonly certificates: readonly Tls13Credential[];
  /** Overrides the choice; returning `undefined` falls back to the default choice. */
  readonly selectCertificate?: ((query: Tls13CertificateQuery) => Tls13Credential | undefined) | undefined;
  /** Cipher suites in server preference order (default: GM suites, then AES-128-GCM, AES-256-GCM, ChaCha20). */
  readonly cipherSuites?: readonly Tls13CipherSuiteName[] | undefined;
  /** Groups in server preference order (default x25519, secp256r1, curveSM2). */
  readonly groups?: readonly Tls13GroupName[] | undefined;
  /**
   * `"client-share"` (default): use the most preferred group the client already sent a share for, and send a
   * HelloRetryRequest only when there is none. `"server-preference"`: always use the most preferred group the
   * client supports, with a HelloRetryRequest if it sent no share for it.
   */
  readonly groupSelection?: "client-share" | "server-preference" | undefined;
  /** ALPN protocols in server preference order; a client offering ALPN with no overlap is refused. */
  readonly alpn?: readonly string[] | undefined;
  /** Client-certificate policy (default `none`). */
  readonly clientAuth?: Tls13ClientAuth | undefined;
  /** Trust anchors for client certificates (required with `clientAuth` unless `verifyClientCertificate` is off). */
  readonly clientCaCertificates?: readonly Certificate[] | undefined;
  /** Set false to accept any client certificate (its CertificateVerify is still checked). Default true. */
  readonly verifyClientCertificate?: boolean | undefined;
  /** SM2 ID for our `sm2sig_sm3` CertificateVerify (default `TLSv1.3+GM+Cipher+Suite`, RFC 8998 §3.2.1). */
  readonly sm2SignerId?: Uint8Array | undefined;
  /** SM2 IDs accepted in the peer's CertificateVerify, tried in order (default: the RFC 8998 ID, then the SM2 default). */
  readonly sm2VerifyIds?: readonly Uint8Array[] | undefined;
  /** Bytes of rejected 0-RTT records to skip (default 64 KiB). */
  readonly maxEarlyDataSkip?: number | undefined;
  /** Clock for certificate validity and ticket ages (default: now). */
  readonly now?: (() => Date) | undefined;
  /** Stateless resumption: issue and accept session tickets sealed with these keys (default: off). */
  readonly sessionTickets?: Tls13SessionTicketOptions | undefined;
}

/** Session-ticket policy of a server (see {@link Tls13ServerOptions.sessionTickets}). */
export interface Tls13SessionTicketOptions {
  /** The ticket keys: the first seals, all open (share one object among the connections of a listener). */
  readonly keys: SessionTicketKeys;
  /** Ticket lifetime in seconds, at most 7 days (default 7200, Envoy's `session_timeout` default). */
  readonly lifetime?: number | undefined;
  /** Tickets sent after each handshake (default 1; 0 accepts tickets but issues none). */
  readonly count?: number | undefined;
}

/** What a verified ticket resumes. */
interface Resumption {
  readonly schedule: KeySchedule;
  readonly index: number;
  readonly state: TicketState;
}

/** The options resolved once, shared by many connections. */
interface ServerConfig {
  readonly certificates: readonly Tls13Credential[];
  readonly selectCertificate: Tls13ServerOptions["selectCertificate"];
  readonly suites: readonly Tls13CipherSuite[];
  readonly groups: readonly KeyShareGroup[];
  readonly groupSelection: "client-share" | "server-preference";
  readonly alpn: readonly string[] | undefined;
  readonly clientAuth: Tls13ClientAuth;
  readonly clientCa: readonly Certificate[];
  readonly verifyClient: boolean;
  readonly sm2SignerId: Uint8Array;
  readonly sm2VerifyIds: readonly Uint8Array[];
  readonly maxEarlyDataSkip: number;
  readonly now: () => Date;
  readonly tickets: { keys: SessionTicketKeys; lifetime: number; count: number } | undefined;
}

/** Longest ticket lifetime (RFC 8446 §4.6.1). */
const MAX_TICKET_LIFETIME = 604800;
/** PSK identities looked at in one ClientHello (each may cost an HMAC). */
const MAX_PSK_IDENTITIES = 4;

const OUR_SCHEMES: readonly number[] = [
  TLS13_SIGNATURE_SCHEMES.sm2sig_sm3,
  TLS13_SIGNATURE_SCHEMES.ecdsa_secp256r1_sha256,
];

function resolveServerOptions(o: Tls13ServerOptions): ServerConfig {
  if (o.certificates.length === 0) throw new RangeError("tls13 server: at least one certificate is required");
  const clientAuth = o.clientAuth ?? "none";
  const verifyClient = o.verifyClientCertificate ?? true;
  if (clientAuth !== "none" && verifyClient && (o.clientCaCertificates ?? []).length === 0) {
    throw new RangeError("tls13 server: client authentication needs clientCaCertificates");
  }
  return {
    certificates: o.certificates,
    selectCertificate: o.selectCertificate,
    suites: resolveCipherSuites(o.cipherSuites),
    groups: resolveGroups(o.groups),
    groupSelection: o.groupSelection ?? "client-share",
    alpn: o.alpn,
    clientAuth,
    clientCa: o.clientCaCertificates ?? [],
    verifyClient,
    sm2SignerId: o.sm2SignerId ?? RFC8998_SM2_ID,
    sm2VerifyIds: o.sm2VerifyIds ?? [RFC8998_SM2_ID, SM2_DEFAULT_SIGNER_ID],
    maxEarlyDataSkip: o.maxEarlyDataSkip ?? 65536,
    now: o.now ?? (() => new Date()),
    tickets: resolveTickets(o.sessionTickets),
  };
}

function resolveTickets(t: Tls13SessionTicketOptions | undefined): ServerConfig["tickets"] {
  if (!t) return undefined;
  const lifetime = t.lifetime ?? 7200;
  if (!Number.isInteger(lifetime) || lifetime < 0 || lifetime > MAX_TICKET_LIFETIME) {
    throw new RangeError(`tls13 server: ticket lifetime ${lifetime} is not 0..${MAX_TICKET_LIFETIME} seconds`);
  }
  const count = t.count ?? 1;
  if (!Number.isInteger(count) || count < 0 || count > 8) {
    throw new RangeError("tls13 server: ticket count is not 0..8");
  }
  return { keys: t.keys, lifetime, count };
}

type ServerState = "client_hello" | "client_hello_2" | "certificate" | "certificate_verify" | "finished" | "done";

class ServerDriver implements HandshakeDriver {
  readonly isClient = false;
  readonly #core: Tls13Core;
  readonly #cfg: ServerConfig;
  #state: ServerState = "client_hello";
  readonly #transcript = new Transcript();
  #suite: Tls13CipherSuite | undefined;
  #group: KeyShareGroup | undefined;
  #schedule: KeySchedule | undefined;
  #clientHsSecret: Uint8Array | undefined;
  #clientApSecret: Uint8Array | undefined;
  #sentCcs = false;
  #serverName: string | undefined;
  #alpn: string | undefined;
  #peerChain: readonly Uint8Array[] = [];
  #peerLeaf: Certificate | undefined;
  #resumed = false;
  /** Whether the client can use tickets: it listed psk_dhe_ke in psk_key_exchange_modes (RFC 8446 §4.2.9). */
  #wantsTickets = false;
  /** The client Finished computed ahead when the tickets went out with the server's flight. */
  #expectedFinished: Uint8Array | undefined;

  constructor(core: Tls13Core, cfg: ServerConfig) {
    this.#core = core;
    this.#cfg = cfg;
  }

  get acceptsChangeCipherSpec(): boolean {
    return this.#state !== "client_hello" && this.#state !== "done";
  }

  start(): void {}

  onMessage(type: number, body: Uint8Array, raw: Uint8Array): void {
    switch (this.#state) {
      case "client_hello":
      case "client_hello_2":
        if (type !== HandshakeType.clientHello) fatal("unexpected_message", `expected ClientHello, got ${type}`);
        return this.#onClientHello(body, raw);
      case "certificate":
        if (type !== HandshakeType.certificate) fatal("unexpected_message", `expected Certificate, got ${type}`);
        return this.#onCertificate(body, raw);
      case "certificate_verify":
        if (type !== HandshakeType.certificateVerify) {
          fatal("unexpected_message", `expected CertificateVerify, got ${type}`);
        }
        return this.#onCertificateVerify(body, raw);
      case "finished":
        if (type !== HandshakeType.finished) fatal("unexpected_message", `expected Finished, got ${type}`);
        return this.#onFinished(body, raw);
      default:
        fatal("unexpected_message", `unexpected handshake message ${type}`);
    }
  }

  #onClientHello(body: Uint8Array, raw: Uint8Array): void {
    const ch = parseClientHello(body);
    const retry = this.#state === "client_hello_2";
    if (!ch.supportedVersions?.includes(TLS13)) fatal("protocol_version", "client does not offer TLS 1.3");
    if (ch.compressionMethods.length !== 1 || ch.compressionMethods[0] !== 0) {
      fatal("illegal_parameter", "ClientHello compression methods must be [null]");
    }
    if (!ch.signatureAlgorithms) fatal("missing_extension", "ClientHello has no signature_algorithms");
    if (!ch.supportedGroups) fatal("missing_extension", "ClientHello has no supported_groups");
    if (!ch.keyShares) fatal("missing_extension", "ClientHello has no key_share");
    for (const s of ch.keyShares) {
      if (!ch.supportedGroups.includes(s.group)) fatal("illegal_parameter", "key_share group not in supported_groups");
    }

    const suite = this.#cfg.suites.find((s) => ch.cipherSuites.includes(s.id));
    if (!suite) fatal("handshake_failure", "no cipher suite in common");
    if (retry) {
      if (suite !== this.#suite) fatal("illegal_parameter", "second ClientHello changed the cipher suite");
      if (ch.earlyData) fatal("illegal_parameter", "second ClientHello offers early data");
      const shares = ch.keyShares;
      if (shares.length !== 1 || shares[0]!.group !== this.#group!.id) {
        fatal("illegal_parameter", "second ClientHello lacks the requested key share");
      }
      if (ch.serverName !== this.#serverName) fatal("illegal_parameter", "second ClientHello changed server_name");
    }
    this.#suite = suite;
    this.#serverName = ch.serverName;

    // Group: a share the client sent, or a HelloRetryRequest for the best group it supports.
    const supported = this.#cfg.groups.filter((g) => ch.supportedGroups!.includes(g.id));
    if (supported.length === 0) fatal("handshake_failure", "no key exchange group in common");
    let group: KeyShareGroup | undefined;
    if (retry) {
      group = this.#group;
    } else if (this.#cfg.groupSelection === "client-share") {
      group = supported.find((g) => ch.keyShares!.some((s) => s.group === g.id)) ?? supported[0];
    } else {
      group = supported[0];
    }
    const share = ch.keyShares.find((s) => s.group === group!.id);

    // ALPN.
    let alpn: string | undefined;
    if (ch.alpn && this.#cfg.alpn && this.#cfg.alpn.length > 0) {
      alpn = this.#cfg.alpn.find((p) => ch.alpn!.includes(p));
      if (alpn === undefined) fatal("no_application_protocol", "no ALPN protocol in common");
    }
    this.#alpn = alpn;

    this.#transcript.setHash(suite.hash);
    if (ch.preSharedKey && !ch.pskModes) fatal("missing_extension", "pre_shared_key without psk_key_exchange_modes");
    // A PSK is looked at only in the ClientHello the handshake continues from (after any HelloRetryRequest).
    const resume = share ? this.#acceptPsk(ch, raw, suite) : undefined;
    // A client without psk_key_exchange_modes (GmSSL 3.1) gets no tickets: it could not use them, and GmSSL 3.1
    // fails on any post-handshake message.
    this.#wantsTickets = ch.pskModes?.includes(PskMode.pskDheKe) ?? false;

    // Certificate and signature scheme (a resumed handshake authenticates with the PSK).
    let credential: Tls13Credential | undefined;
    if (!resume) {
      const schemes = OUR_SCHEMES.filter((s) => ch.signatureAlgorithms!.includes(s));
      credential = this.#selectCredential(ch, schemes, suite);
      if (!credential) fatal("handshake_failure", "no certificate fits the client's signature algorithms");
    }
    this.#transcript.add(raw);
    if (!share) {
      if (retry) fatal("illegal_parameter", "second ClientHello lacks the requested key share");
      this.#group = group;
      this.#sendHelloRetryRequest(ch, suite, group!);
      return;
    }
    this.#group = group;
    if (ch.earlyData) this.#core.skipEarlyData(this.#cfg.maxEarlyDataSkip);
    this.#sendServerFlight(ch, suite, group!, share.key, credential, resume);
  }

  /**
   * The first offered ticket that opens, is live, fits the suite's hash, the SNI and the client-auth policy, or
   * undefined (full handshake). Its binder must verify: a wrong one is fatal (`decrypt_error`, RFC 8446 §4.2.11).
   * Call with the transcript before this ClientHello.
   */
  #acceptPsk(ch: ClientHello, raw: Uint8Array, suite: Tls13CipherSuite): Resumption | undefined {
    const t = this.#cfg.tickets;
    const offered = ch.preSharedKey;
    if (!t || !offered || !ch.pskModes!.includes(PskMode.pskDheKe)) return undefined;
    const now = this.#cfg.now().getTime();
    const n = Math.min(offered.identities.length, MAX_PSK_IDENTITIES);
    for (let i = 0; i < n; i++) {
      const id = offered.identities[i]!;
      const sealed = t.keys.open(id.identity);
      const state = sealed && decodeTicketState(sealed);
      if (!state) continue;
      const age = now - state.issuedAt;
      const lifetimeMs = Math.min(state.lifetime, t.lifetime) * 1000;
      if (age < 0 || age > lifetimeMs) continue;
      // The client's view of the age must be within the lifetime too (its clock started later than ours).
      if (((id.obfuscatedAge - state.ageAdd) >>> 0) > lifetimeMs) continue;
      if (this.#cfg.suites.find((s) => s.id === state.suite)?.hash !== suite.hash) continue;
      if (state.sni !== (ch.serverName ?? "")) continue;
      if (this.#cfg.clientAuth === "require" && state.peerCertificates.length === 0) continue;
      const schedule = new KeySchedule(suite.hash, state.psk);
      const partial = raw.subarray(0, raw.length - offered.bindersLength);
      const expected = pskBinder(suite.hash, schedule.binderKey(), this.#transcript.digestWith(partial));
      const binder = offered.binders[i]!;
      let diff = binder.length ^ expected.length;
      for (let j = 0; j < expected.length; j++) diff |= expected[j]! ^ (binder[j] ?? 0);
      if (diff !== 0) fatal("decrypt_error", "PSK binder does not verify");
      return { schedule, index: i, state };
    }
    return undefined;
  }

  #selectCredential(ch: ClientHello, schemes: readonly number[], suite: Tls13CipherSuite): Tls13Credential | undefined {
    const fits = (c: Tls13Credential) => schemes.includes(TLS13_SIGNATURE_SCHEMES[c.scheme]);
    if (this.#cfg.selectCertificate) {
      const chosen = this.#cfg.selectCertificate({
        serverName: ch.serverName,
        signatureSchemes: schemes.map((s) =>
          s === TLS13_SIGNATURE_SCHEMES.sm2sig_sm3 ? "sm2sig_sm3" : "ecdsa_secp256r1_sha256"
        ),
        cipherSuite: suite.name,
      });
      if (chosen) return fits(chosen) ? chosen : undefined;
    }
    const candidates = this.#cfg.certificates.filter(fits);
    if (candidates.length === 0) return undefined;
    const family = (c: Tls13Credential) => (c.scheme === "sm2sig_sm3") === suite.gm;
    const names = (c: Tls13Credential) => {
      if (ch.serverName === undefined) return false;
      try {
        checkHostname(c.leaf, ch.serverName);
        return true;
      } catch {
        return false;
      }
    };
    return candidates.find((c) => names(c) && family(c)) ?? candidates.find(names) ??
      candidates.find(family) ?? candidates[0];
  }

  #sendHelloRetryRequest(ch: ClientHello, suite: Tls13CipherSuite, group: KeyShareGroup): void {
    this.#transcript.replaceWithMessageHash();
    const hrr = handshakeMessage(
      HandshakeType.serverHello,
      encodeServerHello({
        random: new Uint8Array(32),
        sessionId: ch.sessionId,
        cipherSuite: suite.id,
        selectedGroup: group.id,
      }),
    );
    this.#transcript.add(hrr);
    this.#core.sendHandshake(hrr);
    if (ch.sessionId.length > 0) {
      this.#core.sendChangeCipherSpec();
      this.#sentCcs = true;
    }
    // Early data sent with the first ClientHello is skipped until the second one arrives in the clear.
    if (ch.earlyData) this.#core.skipEarlyData(this.#cfg.maxEarlyDataSkip);
    this.#state = "client_hello_2";
  }

  #sendServerFlight(
    ch: ClientHello,
    suite: Tls13CipherSuite,
    group: KeyShareGroup,
    clientShare: Uint8Array,
    credential: Tls13Credential | undefined,
    resume: Resumption | undefined,
  ): void {
    const core = this.#core;
    const key: KeyShareKey = group.generate();
    const shared = key.deriveShared(clientShare);
    const sh = handshakeMessage(
      HandshakeType.serverHello,
      encodeServerHello({
        random: crypto.getRandomValues(new Uint8Array(32)),
        sessionId: ch.sessionId,
        cipherSuite: suite.id,
        keyShare: { group: group.id, key: key.publicKey },
        selectedIdentity: resume?.index,
      }),
    );
    this.#transcript.add(sh);
    core.sendHandshake(sh);
    if (ch.sessionId.length > 0 && !this.#sentCcs) {
      core.sendChangeCipherSpec();
      this.#sentCcs = true;
    }
    const schedule = resume?.schedule ?? new KeySchedule(suite.hash);
    this.#schedule = schedule;
    schedule.handshakeSecret(shared);
    const [cHs, sHs] = schedule.handshakeTrafficSecrets(this.#transcript.digest());
    this.#clientHsSecret = cHs;
    core.setWriteSecret(suite, sHs);
    core.setReadSecret(suite, cHs);

    // One record per handshake message, flushed in one write: GmSSL 3 reads exactly one message per record.
    const flight: Uint8Array[] = [];
    const send = (type: number, body: Uint8Array) => {
      const m = handshakeMessage(type, body);
      this.#transcript.add(m);
      flight.push(m);
    };
    send(
      HandshakeType.encryptedExtensions,
      encodeEncryptedExtensions({ alpn: this.#alpn, serverNameAck: ch.serverName !== undefined }),
    );
    if (resume) {
      this.#resumed = true;
      this.#peerChain = resume.state.peerCertificates;
    } else {
      if (this.#cfg.clientAuth !== "none") {
        send(HandshakeType.certificateRequest, encodeCertificateRequest(OUR_SCHEMES));
      }
      send(HandshakeType.certificate, serverCertificateBody(credential!));
      const content = certificateVerifyContent(true, this.#transcript.digest());
      const signature = credential!.sign(content, this.#cfg.sm2SignerId);
      send(
        HandshakeType.certificateVerify,
        encodeCertificateVerify(TLS13_SIGNATURE_SCHEMES[credential!.scheme], signature),
      );
    }
    send(HandshakeType.finished, finishedVerifyData(suite.hash, sHs, this.#transcript.digest()));
    for (const m of flight) core.sendHandshake(m);

    const serverFinishedTranscript = this.#transcript.digest();
    const [cAp, sAp] = schedule.applicationTrafficSecrets(serverFinishedTranscript);
    this.#clientApSecret = cAp;
    core.setWriteSecret(suite, sAp);
    this.#state = this.#cfg.clientAuth === "none" || resume ? "finished" : "certificate";
    if (this.#state === "finished" && this.#ticketsWanted()) {
      // With no client certificate to come, the client's Finished is determined now: the tickets (their secret
      // covers it) go out with this flight, in the same write, instead of one more write after the client's
      // Finished (RFC 8446 §4.6.1 allows it; a note there describes exactly this).
      const finished = finishedVerifyData(suite.hash, cHs, serverFinishedTranscript);
      this.#expectedFinished = finished;
      this.#sendTickets(suite, this.#transcript.digestWith(handshakeMessage(HandshakeType.finished, finished)));
    }
  }

  #ticketsWanted(): boolean {
    const t = this.#cfg.tickets;
    return t !== undefined && t.count > 0 && t.lifetime > 0 && this.#wantsTickets;
  }

  #onCertificate(body: Uint8Array, raw: Uint8Array): void {
    const msg = parseCertificateMessage(body);
    if (msg.context.length !== 0) fatal("illegal_parameter", "client Certificate has a request context");
    this.#transcript.add(raw);
    if (msg.chain.length === 0) {
      if (this.#cfg.clientAuth === "require") fatal("certificate_required", "client sent no certificate");
      this.#state = "finished";
      return;
    }
    this.#peerLeaf = verifyPeerChain(msg.chain, {
      roots: this.#cfg.clientCa,
      verify: this.#cfg.verifyClient,
      hostname: undefined,
      now: this.#cfg.now(),
    });
    this.#peerChain = msg.chain;
    this.#state = "certificate_verify";
  }

  #onCertificateVerify(body: Uint8Array, raw: Uint8Array): void {
    const cv = parseCertificateVerify(body);
    if (!OUR_SCHEMES.includes(cv.scheme)) fatal("illegal_parameter", "client signed with a scheme we did not offer");
    const content = certificateVerifyContent(false, this.#transcript.digest());
    verifyCertificateVerify(this.#peerLeaf!, cv.scheme, content, cv.signature, this.#cfg.sm2VerifyIds);
    this.#transcript.add(raw);
    this.#state = "finished";
  }

  #onFinished(body: Uint8Array, raw: Uint8Array): void {
    const suite = this.#suite!;
    const expected = this.#expectedFinished ??
      finishedVerifyData(suite.hash, this.#clientHsSecret!, this.#transcript.digest());
    if (body.length !== expected.length) fatal("decode_error", "client Finished has the wrong length");
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ body[i]!;
    if (diff !== 0) fatal("decrypt_error", "client Finished does not verify");
    this.#transcript.add(raw);
    this.#core.setReadSecret(suite, this.#clientApSecret!);
    this.#state = "done";
    if (this.#expectedFinished === undefined && this.#ticketsWanted()) {
      this.#sendTickets(suite, this.#transcript.digest());
    }
    this.#core.complete({
      version: "TLSv1.3",
      cipher: suite.name,
      alpn: this.#alpn,
      sni: this.#serverName,
      peerCertificates: this.#peerChain,
      resumed: this.#resumed,
      group: this.#group!.name,
    });
  }

  /**
   * NewSessionTickets under the server application key (RFC 8446 §4.6.1), `transcript` the Transcript-Hash through
   * the client's Finished: with the server's flight when that Finished is known ahead, else right after it.
   */
  #sendTickets(suite: Tls13CipherSuite, transcript: Uint8Array): void {
    const t = this.#cfg.tickets!;
    const resumption = this.#schedule!.resumptionMasterSecret(transcript);
    const issuedAt = this.#cfg.now().getTime();
    for (let i = 0; i < t.count; i++) {
      const nonce = new Uint8Array([i]);
      const ageAdd = crypto.getRandomValues(new Uint32Array(1))[0]!;
      const ticket = t.keys.seal(encodeTicketState({
        suite: suite.id,
        psk: ticketPsk(suite.hash, resumption, nonce),
        issuedAt,
        lifetime: t.lifetime,
        ageAdd,
        sni: this.#serverName ?? "",
        alpn: this.#alpn ?? "",
        peerCertificates: this.#peerChain,
      }));
      this.#core.sendHandshake(
        handshakeMessage(
          HandshakeType.newSessionTicket,
          encodeNewSessionTicket({ lifetime: t.lifetime, ageAdd, nonce, ticket }),
        ),
      );
    }
  }
}

/** A credential's Certificate body (empty context, no per-certificate extensions): the same for every handshake. */
const certificateBodies = new WeakMap<Tls13Credential, Uint8Array>();

function serverCertificateBody(credential: Tls13Credential): Uint8Array {
  let body = certificateBodies.get(credential);
  if (body === undefined) {
    body = encodeCertificateMessage(new Uint8Array(0), credential.chain);
    certificateBodies.set(credential, body);
  }
  return body;
}

/**
 * Creates a TLS 1.3 server engine (see the module doc). Option errors throw a `RangeError` here; everything
 * after is reported through `callbacks.onError`. Build one per connection; share the options object.
 *
 * @param options certificates, suites, groups, ALPN and client-auth policy
 * @param callbacks the provider's side of the engine contract
 */
export function createTls13Server(options: Tls13ServerOptions, callbacks: TlsEngineCallbacks): TlsEngine {
  return createTls13ServerFactory(options)(callbacks);
}

/**
 * Resolves `options` once and returns a per-connection factory: what a listener should hold, so suites, groups
 * and certificate lists are not re-validated for each connection.
 *
 * @param options as for {@link createTls13Server}
 */
export function createTls13ServerFactory(options: Tls13ServerOptions): (callbacks: TlsEngineCallbacks) => TlsEngine {
  const cfg = resolveServerOptions(options);
  return (callbacks) => {
    const core = new Tls13Core(callbacks);
    core.bind(new ServerDriver(core, cfg));
    return core;
  };
}
