/**
 * TLS 1.3 handshake message bodies (RFC 8446 §4): ClientHello, ServerHello / HelloRetryRequest,
 * EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify and KeyUpdate, with the extensions the
 * engine uses (server_name, supported_groups, signature_algorithms, ALPN, supported_versions, key_share, cookie,
 * early_data, psk_key_exchange_modes, pre_shared_key) and NewSessionTicket. Parsers check structure (`decode_error`) and duplicate extensions
 * (`illegal_parameter`); semantic checks are the engine's.
 *
 * @module
 */

import { ExtensionType, fatal, HRR_RANDOM, Reader, TLS12, Writer } from "./_codec.ts";

/** A raw extension. */
export interface Extension {
  readonly type: number;
  readonly data: Uint8Array;
}

/** A key_share entry. */
export interface KeyShareEntry {
  readonly group: number;
  readonly key: Uint8Array;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function parseExtensions(r: Reader, what: string): Extension[] {
  const list: Extension[] = [];
  if (r.remaining === 0) return list;
  const er = new Reader(r.vec16(), `${what} extensions`);
  const seen = new Set<number>();
  while (er.remaining > 0) {
    const type = er.u16();
    const data = er.vec16();
    if (seen.has(type)) fatal("illegal_parameter", `${what}: duplicate extension ${type}`);
    seen.add(type);
    list.push({ type, data });
  }
  return list;
}

function writeExtensions(w: Writer, exts: readonly Extension[]): void {
  w.vec(2, (w) => {
    for (const e of exts) w.u16(e.type).vec(2, (w) => w.bytes(e.data));
  });
}

function u16List(data: Uint8Array, what: string, lenBytes: 1 | 2 = 2): number[] {
  const r = new Reader(data, what);
  const body = lenBytes === 1 ? r.vec8(2) : r.vec16(2);
  r.end();
  if (body.length % 2 !== 0) fatal("decode_error", `${what}: odd length`);
  const out: number[] = [];
  for (let i = 0; i < body.length; i += 2) out.push((body[i]! << 8) | body[i + 1]!);
  return out;
}

/** Encodes a list of 16-bit values with a `lenBytes` length prefix. */
export function encodeU16List(values: readonly number[], lenBytes: 1 | 2 = 2): Uint8Array {
  const w = new Writer();
  w.vec(lenBytes, (w) => {
    for (const v of values) w.u16(v);
  });
  return w.finish();
}

/** Parses an ALPN extension body into protocol names. */
export function parseAlpn(data: Uint8Array): string[] {
  const r = new Reader(data, "ALPN");
  const lr = new Reader(r.vec16(2), "ALPN");
  r.end();
  const out: string[] = [];
  while (lr.remaining > 0) {
    const name = lr.vec8(1);
    try {
      out.push(decoder.decode(name));
    } catch {
      // Non-UTF-8 names are legal but not ours: keep a placeholder that never matches a configured name.
      out.push("\u0000");
    }
  }
  return out;
}

/** Encodes an ALPN extension body. */
export function encodeAlpn(names: readonly string[]): Uint8Array {
  const w = new Writer();
  w.vec(2, (w) => {
    for (const n of names) w.vec(1, (w) => w.bytes(encoder.encode(n)));
  });
  return w.finish();
}

/** A PSK identity offered in a ClientHello (RFC 8446 §4.2.11). */
export interface PskIdentity {
  /** The ticket (or external PSK label). */
  readonly identity: Uint8Array;
  /** The ticket age in ms plus `ticket_age_add`, mod 2^32. */
  readonly obfuscatedAge: number;
}

/** The ClientHello's pre_shared_key extension. */
export interface OfferedPsks {
  readonly identities: readonly PskIdentity[];
  readonly binders: readonly Uint8Array[];
  /** Bytes at the end of the ClientHello taken by the binders list (its 2-byte length included). */
  readonly bindersLength: number;
}

/** psk_key_exchange_modes values (RFC 8446 §4.2.9). */
export const PskMode = { pskKe: 0, pskDheKe: 1 } as const;

/** The parsed ClientHello. */
export interface ClientHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: Uint8Array;
  readonly extensions: readonly Extension[];
  readonly serverName: string | undefined;
  readonly supportedVersions: readonly number[] | undefined;
  readonly supportedGroups: readonly number[] | undefined;
  readonly signatureAlgorithms: readonly number[] | undefined;
  readonly keyShares: readonly KeyShareEntry[] | undefined;
  readonly alpn: readonly string[] | undefined;
  readonly earlyData: boolean;
  readonly cookie: Uint8Array | undefined;
  /** psk_key_exchange_modes, if sent. */
  readonly pskModes: readonly number[] | undefined;
  /** pre_shared_key (always the last extension), if sent. */
  readonly preSharedKey: OfferedPsks | undefined;
}

function parseOfferedPsks(data: Uint8Array): OfferedPsks {
  const r = new Reader(data, "pre_shared_key");
  const ir = new Reader(r.vec16(7), "pre_shared_key identities");
  const bindersLength = r.remaining;
  const br = new Reader(r.vec16(33), "pre_shared_key binders");
  r.end();
  const identities: PskIdentity[] = [];
  while (ir.remaining > 0) identities.push({ identity: ir.vec16(1).slice(), obfuscatedAge: ir.u32() });
  const binders: Uint8Array[] = [];
  while (br.remaining > 0) binders.push(br.vec8(32).slice());
  if (binders.length !== identities.length) {
    fatal("illegal_parameter", "pre_shared_key: binder count differs from identity count");
  }
  return { identities, binders, bindersLength };
}

/**
 * Parses a ClientHello body. Byte fields are views of `body` (the engine hands over a message it owns), not copies.
 */
export function parseClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body, "ClientHello");
  const legacyVersion = r.u16();
  const random = r.bytes(32);
  const sessionId = r.vec8();
  if (sessionId.length > 32) fatal("illegal_parameter", "ClientHello: legacy_session_id longer than 32 bytes");
  const suites = r.vec16(2);
  if (suites.length % 2 !== 0) fatal("decode_error", "ClientHello: odd cipher suite list");
  const cipherSuites: number[] = [];
  for (let i = 0; i < suites.length; i += 2) cipherSuites.push((suites[i]! << 8) | suites[i + 1]!);
  const compressionMethods = r.vec8(1);
  const extensions = parseExtensions(r, "ClientHello");
  r.end();
  let serverName: string | undefined;
  let supportedVersions: number[] | undefined;
  let supportedGroups: number[] | undefined;
  let signatureAlgorithms: number[] | undefined;
  let keyShares: KeyShareEntry[] | undefined;
  let alpn: string[] | undefined;
  let earlyData = false;
  let cookie: Uint8Array | undefined;
  let pskModes: number[] | undefined;
  let preSharedKey: OfferedPsks | undefined;
  for (let i = 0; i < extensions.length; i++) {
    const e = extensions[i]!;
    switch (e.type) {
      case ExtensionType.serverName: {
        const er = new Reader(e.data, "server_name");
        const lr = new Reader(er.vec16(1), "server_name");
        er.end();
        while (lr.remaining > 0) {
          const kind = lr.u8();
          const name = lr.vec16(1);
          if (kind !== 0) continue;
          if (serverName !== undefined) fatal("illegal_parameter", "server_name: two host names");
          let text: string;
          try {
            text = decoder.decode(name);
          } catch {
            fatal("decode_error", "server_name: host name is not UTF-8");
          }
          if (text.endsWith(".")) fatal("illegal_parameter", "server_name: trailing dot");
          serverName = text.toLowerCase();
        }
        break;
      }
      case ExtensionType.supportedVersions:
        supportedVersions = u16List(e.data, "supported_versions", 1);
        break;
      case ExtensionType.supportedGroups:
        supportedGroups = u16List(e.data, "supported_groups");
        break;
      case ExtensionType.signatureAlgorithms:
        signatureAlgorithms = u16List(e.data, "signature_algorithms");
        break;
      case ExtensionType.keyShare: {
        const er = new Reader(e.data, "key_share");
        const lr = new Reader(er.vec16(), "key_share");
        er.end();
        keyShares = [];
        const groups = new Set<number>();
        while (lr.remaining > 0) {
          const group = lr.u16();
          const key = lr.vec16(1);
          if (groups.has(group)) fatal("illegal_parameter", "key_share: two shares for one group");
          groups.add(group);
          keyShares.push({ group, key });
        }
        break;
      }
      case ExtensionType.alpn:
        alpn = parseAlpn(e.data);
        break;
      case ExtensionType.earlyData:
        if (e.data.length !== 0) fatal("decode_error", "early_data: ClientHello extension must be empty");
        earlyData = true;
        break;
      case ExtensionType.cookie: {
        const er = new Reader(e.data, "cookie");
        cookie = er.vec16(1);
        er.end();
        break;
      }
      case ExtensionType.preSharedKey:
        if (i !== extensions.length - 1) fatal("illegal_parameter", "pre_shared_key is not the last extension");
        preSharedKey = parseOfferedPsks(e.data);
        break;
      case ExtensionType.pskKeyExchangeModes: {
        const er = new Reader(e.data, "psk_key_exchange_modes");
        pskModes = [...er.vec8(1)];
        er.end();
        break;
      }
    }
  }
  return {
    legacyVersion,
    random,
    sessionId,
    cipherSuites,
    compressionMethods,
    extensions,
    serverName,
    supportedVersions,
    supportedGroups,
    signatureAlgorithms,
    keyShares,
    alpn,
    earlyData,
    cookie,
    pskModes,
    preSharedKey,
  };
}

/** What a client puts in its ClientHello. */
export interface ClientHelloFields {
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuites: readonly number[];
  readonly serverName?: string | undefined;
  readonly supportedGroups: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  readonly keyShares: readonly KeyShareEntry[];
  readonly alpn?: readonly string[] | undefined;
  readonly cookie?: Uint8Array | undefined;
  /** Extra extensions, appended as given (tests use it to offer early data). */
  readonly extraExtensions?: readonly Extension[] | undefined;
  /**
   * PSKs to offer (pre_shared_key, written last) with zero binders of the given lengths: the caller computes the
   * binders over the truncated ClientHello and writes them with {@link setPskBinders}.
   */
  readonly psk?: { readonly identities: readonly PskIdentity[]; readonly binderLengths: readonly number[] } | undefined;
  /** Leave out psk_key_exchange_modes (as GmSSL 3.1 does; tests). Default false. */
  readonly omitPskModes?: boolean | undefined;
}

/** Encodes a ClientHello body. */
export function encodeClientHello(f: ClientHelloFields): Uint8Array {
  const exts: Extension[] = [];
  if (f.serverName !== undefined) {
    const w = new Writer();
    w.vec(2, (w) => w.u8(0).vec(2, (w) => w.bytes(encoder.encode(f.serverName))));
    exts.push({ type: ExtensionType.serverName, data: w.finish() });
  }
  exts.push({ type: ExtensionType.supportedVersions, data: new Uint8Array([2, 0x03, 0x04]) });
  exts.push({ type: ExtensionType.supportedGroups, data: encodeU16List(f.supportedGroups) });
  exts.push({ type: ExtensionType.signatureAlgorithms, data: encodeU16List(f.signatureAlgorithms) });
  {
    const w = new Writer();
    w.vec(2, (w) => {
      for (const s of f.keyShares) w.u16(s.group).vec(2, (w) => w.bytes(s.key));
    });
    exts.push({ type: ExtensionType.keyShare, data: w.finish() });
  }
  if (f.alpn && f.alpn.length > 0) exts.push({ type: ExtensionType.alpn, data: encodeAlpn(f.alpn) });
  if (f.cookie) {
    const w = new Writer();
    w.vec(2, (w) => w.bytes(f.cookie!));
    exts.push({ type: ExtensionType.cookie, data: w.finish() });
  }
  // psk_dhe_ke only; we never offer a PSK, but some servers expect the extension in every TLS 1.3 hello.
  if (!f.omitPskModes) exts.push({ type: ExtensionType.pskKeyExchangeModes, data: new Uint8Array([1, 1]) });
  if (f.extraExtensions) exts.push(...f.extraExtensions);
  if (f.psk) {
    const w = new Writer(256);
    w.vec(2, (w) => {
      for (const id of f.psk!.identities) w.vec16(id.identity).u32(id.obfuscatedAge >>> 0);
    });
    w.vec(2, (w) => {
      for (const n of f.psk!.binderLengths) w.vec8(new Uint8Array(n));
    });
    exts.push({ type: ExtensionType.preSharedKey, data: w.finish() });
  }
  const w = new Writer(512);
  w.u16(TLS12).bytes(f.random).vec(1, (w) => w.bytes(f.sessionId));
  w.vec(2, (w) => {
    for (const s of f.cipherSuites) w.u16(s);
  });
  w.u8(1).u8(0);
  writeExtensions(w, exts);
  return w.finish();
}

/** Bytes taken by the binders list of `binderLengths` binders (what a binder's transcript leaves out). */
export function pskBindersLength(binderLengths: readonly number[]): number {
  return 2 + binderLengths.reduce((n, l) => n + 1 + l, 0);
}

/** Writes `binders` into the zeroed binders list at the end of a ClientHello message or body. */
export function setPskBinders(hello: Uint8Array, binders: readonly Uint8Array[]): void {
  let o = hello.length - binders.reduce((n, b) => n + 1 + b.length, 0);
  for (const b of binders) {
    hello[o] = b.length;
    hello.set(b, o + 1);
    o += 1 + b.length;
  }
}

/** The parsed ServerHello or HelloRetryRequest. */
export interface ServerHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuite: number;
  readonly compressionMethod: number;
  readonly extensions: readonly Extension[];
  /** True for a HelloRetryRequest (the special random). */
  readonly retry: boolean;
  readonly supportedVersion: number | undefined;
  /** ServerHello: the server's share. */
  readonly keyShare: KeyShareEntry | undefined;
  /** HelloRetryRequest: the group the server wants. */
  readonly selectedGroup: number | undefined;
  readonly cookie: Uint8Array | undefined;
  /** ServerHello: the index of the PSK the server accepted. */
  readonly selectedIdentity: number | undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Parses a ServerHello / HelloRetryRequest body. */
export function parseServerHello(body: Uint8Array, pskOffered = false): ServerHello {
  const r = new Reader(body, "ServerHello");
  const legacyVersion = r.u16();
  const random = r.bytes(32).slice();
  const sessionId = r.vec8().slice();
  if (sessionId.length > 32) fatal("illegal_parameter", "ServerHello: legacy_session_id_echo longer than 32 bytes");
  const cipherSuite = r.u16();
  const compressionMethod = r.u8();
  const extensions = parseExtensions(r, "ServerHello");
  r.end();
  const retry = sameBytes(random, HRR_RANDOM);
  let supportedVersion: number | undefined;
  let keyShare: KeyShareEntry | undefined;
  let selectedGroup: number | undefined;
  let cookie: Uint8Array | undefined;
  let selectedIdentity: number | undefined;
  for (const e of extensions) {
    const er = new Reader(e.data, "ServerHello extension");
    switch (e.type) {
      case ExtensionType.supportedVersions:
        supportedVersion = er.u16();
        er.end();
        break;
      case ExtensionType.keyShare:
        if (retry) {
          selectedGroup = er.u16();
        } else {
          keyShare = { group: er.u16(), key: er.vec16(1).slice() };
        }
        er.end();
        break;
      case ExtensionType.cookie:
        if (!retry) fatal("unsupported_extension", "ServerHello: cookie outside a HelloRetryRequest");
        cookie = er.vec16(1).slice();
        er.end();
        break;
      case ExtensionType.preSharedKey:
        if (!pskOffered || retry) {
          fatal("illegal_parameter", "ServerHello: pre_shared_key selected but none was offered");
        }
        selectedIdentity = er.u16();
        er.end();
        break;
      default:
        fatal("unsupported_extension", `ServerHello: extension ${e.type} was not offered`);
    }
  }
  return {
    legacyVersion,
    random,
    sessionId,
    cipherSuite,
    compressionMethod,
    extensions,
    retry,
    supportedVersion,
    keyShare,
    selectedGroup,
    cookie,
    selectedIdentity,
  };
}

/** What a server puts in its ServerHello or HelloRetryRequest. */
export interface ServerHelloFields {
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuite: number;
  /** ServerHello: the server's share. */
  readonly keyShare?: KeyShareEntry | undefined;
  /** HelloRetryRequest: the group the client must share. */
  readonly selectedGroup?: number | undefined;
  /** ServerHello: the accepted PSK's index. */
  readonly selectedIdentity?: number | undefined;
}

/** Encodes a ServerHello body (a HelloRetryRequest when `selectedGroup` is set). */
export function encodeServerHello(f: ServerHelloFields): Uint8Array {
  const w = new Writer(160);
  w.u16(TLS12).bytes(f.selectedGroup !== undefined ? HRR_RANDOM : f.random).vec(1, (w) => w.bytes(f.sessionId));
  w.u16(f.cipherSuite).u8(0);
  w.vec(2, (w) => {
    w.u16(ExtensionType.supportedVersions).vec(2, (w) => w.u16(0x0304));
    if (f.selectedGroup !== undefined) {
      w.u16(ExtensionType.keyShare).vec(2, (w) => w.u16(f.selectedGroup!));
    } else if (f.keyShare) {
      w.u16(ExtensionType.keyShare).vec(2, (w) => w.u16(f.keyShare!.group).vec(2, (w) => w.bytes(f.keyShare!.key)));
    }
    if (f.selectedIdentity !== undefined && f.selectedGroup === undefined) {
      w.u16(ExtensionType.preSharedKey).vec(2, (w) => w.u16(f.selectedIdentity!));
    }
  });
  return w.finish();
}

/** The parsed EncryptedExtensions. */
export interface EncryptedExtensions {
  readonly alpn: string | undefined;
  readonly serverNameAck: boolean;
  readonly earlyData: boolean;
}

/** Extensions that must never appear in EncryptedExtensions (RFC 8446 §4.2 table). */
const NOT_IN_EE = new Set<number>([
  ExtensionType.keyShare,
  ExtensionType.supportedVersions,
  ExtensionType.preSharedKey,
  ExtensionType.cookie,
  ExtensionType.pskKeyExchangeModes,
  ExtensionType.signatureAlgorithms,
  ExtensionType.signatureAlgorithmsCert,
  ExtensionType.certificateAuthorities,
  ExtensionType.postHandshakeAuth,
]);

/** Parses an EncryptedExtensions body; `offered` lists the extension types the client sent. */
export function parseEncryptedExtensions(body: Uint8Array, offered: ReadonlySet<number>): EncryptedExtensions {
  const r = new Reader(body, "EncryptedExtensions");
  const exts = parseExtensions(r, "EncryptedExtensions");
  if (body.length < 2) fatal("decode_error", "EncryptedExtensions: missing extension list");
  r.end();
  let alpn: string | undefined;
  let serverNameAck = false;
  let earlyData = false;
  for (const e of exts) {
    if (NOT_IN_EE.has(e.type)) fatal("illegal_parameter", `EncryptedExtensions: extension ${e.type} not allowed`);
    if (!offered.has(e.type)) {
      // supported_groups may be sent by a server to advertise its preference (RFC 8446 §4.2.7).
      if (e.type === ExtensionType.supportedGroups) continue;
      fatal("unsupported_extension", `EncryptedExtensions: extension ${e.type} was not offered`);
    }
    switch (e.type) {
      case ExtensionType.alpn: {
        const names = parseAlpn(e.data);
        if (names.length !== 1) fatal("illegal_parameter", "EncryptedExtensions: ALPN must name one protocol");
        alpn = names[0];
        break;
      }
      case ExtensionType.serverName:
        if (e.data.length !== 0) fatal("decode_error", "EncryptedExtensions: server_name must be empty");
        serverNameAck = true;
        break;
      case ExtensionType.earlyData:
        earlyData = true;
        break;
    }
  }
  return { alpn, serverNameAck, earlyData };
}

/** Encodes an EncryptedExtensions body. */
export function encodeEncryptedExtensions(f: { alpn?: string | undefined; serverNameAck?: boolean }): Uint8Array {
  const exts: Extension[] = [];
  if (f.serverNameAck) exts.push({ type: ExtensionType.serverName, data: new Uint8Array(0) });
  if (f.alpn !== undefined) exts.push({ type: ExtensionType.alpn, data: encodeAlpn([f.alpn]) });
  const w = new Writer(64);
  writeExtensions(w, exts);
  return w.finish();
}

/** The parsed CertificateRequest. */
export interface CertificateRequest {
  readonly context: Uint8Array;
  readonly signatureAlgorithms: readonly number[];
}

/** Parses a CertificateRequest body. */
export function parseCertificateRequest(body: Uint8Array): CertificateRequest {
  const r = new Reader(body, "CertificateRequest");
  const context = r.vec8().slice();
  const exts = parseExtensions(r, "CertificateRequest");
  r.end();
  const sa = exts.find((e) => e.type === ExtensionType.signatureAlgorithms);
  if (!sa) fatal("missing_extension", "CertificateRequest: no signature_algorithms");
  return { context, signatureAlgorithms: u16List(sa.data, "signature_algorithms") };
}

/** Encodes a CertificateRequest body (empty context, our signature algorithms). */
export function encodeCertificateRequest(signatureAlgorithms: readonly number[]): Uint8Array {
  const w = new Writer(32);
  w.vec(1, () => {});
  writeExtensions(w, [{ type: ExtensionType.signatureAlgorithms, data: encodeU16List(signatureAlgorithms) }]);
  return w.finish();
}

/** The parsed Certificate message. */
export interface CertificateMessage {
  readonly context: Uint8Array;
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
}

/** Parses a Certificate body. */
export function parseCertificateMessage(body: Uint8Array): CertificateMessage {
  const r = new Reader(body, "Certificate");
  const context = r.vec8().slice();
  const lr = new Reader(r.vec24(), "Certificate list");
  r.end();
  const chain: Uint8Array[] = [];
  while (lr.remaining > 0) {
    chain.push(lr.vec24(1).slice());
    lr.vec16(); // per-certificate extensions (OCSP, SCT): not used
  }
  return { context, chain };
}

/** Encodes a Certificate body. */
export function encodeCertificateMessage(context: Uint8Array, chain: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(2048);
  w.vec(1, (w) => w.bytes(context));
  w.vec(3, (w) => {
    for (const c of chain) w.vec(3, (w) => w.bytes(c)).u16(0);
  });
  return w.finish();
}

/** The parsed CertificateVerify. */
export interface CertificateVerify {
  readonly scheme: number;
  readonly signature: Uint8Array;
}

/** Parses a CertificateVerify body. */
export function parseCertificateVerify(body: Uint8Array): CertificateVerify {
  const r = new Reader(body, "CertificateVerify");
  const scheme = r.u16();
  const signature = r.vec16(1).slice();
  r.end();
  return { scheme, signature };
}

/** Encodes a CertificateVerify body. */
export function encodeCertificateVerify(scheme: number, signature: Uint8Array): Uint8Array {
  return new Writer(signature.length + 4).u16(scheme).vec(2, (w) => w.bytes(signature)).finish();
}

/** The parsed NewSessionTicket (RFC 8446 §4.6.1). */
export interface NewSessionTicket {
  /** Seconds the ticket may be used for (at most 7 days). */
  readonly lifetime: number;
  readonly ageAdd: number;
  readonly nonce: Uint8Array;
  readonly ticket: Uint8Array;
  /** The early_data extension's max_early_data_size, if sent (we never send early data). */
  readonly maxEarlyData: number | undefined;
}

/** Parses a NewSessionTicket body. */
export function parseNewSessionTicket(body: Uint8Array): NewSessionTicket {
  const r = new Reader(body, "NewSessionTicket");
  const lifetime = r.u32();
  const ageAdd = r.u32();
  const nonce = r.vec8().slice();
  const ticket = r.vec16(1).slice();
  const exts = parseExtensions(r, "NewSessionTicket");
  r.end();
  if (lifetime > 604800) fatal("illegal_parameter", "NewSessionTicket: lifetime over 7 days");
  let maxEarlyData: number | undefined;
  for (const e of exts) {
    if (e.type === ExtensionType.earlyData) {
      const er = new Reader(e.data, "early_data");
      maxEarlyData = er.u32();
      er.end();
    }
  }
  return { lifetime, ageAdd, nonce, ticket, maxEarlyData };
}

/** Encodes a NewSessionTicket body (no extensions: we never accept early data). */
export function encodeNewSessionTicket(f: Omit<NewSessionTicket, "maxEarlyData">): Uint8Array {
  const w = new Writer(f.ticket.length + f.nonce.length + 16);
  w.u32(f.lifetime).u32(f.ageAdd >>> 0).vec8(f.nonce).vec16(f.ticket).u16(0);
  return w.finish();
}
