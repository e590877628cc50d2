/**
 * ClientHello inspection: {@link parseClientHello} reads a ClientHello (possibly spread over several records) from
 * the first bytes of a connection, incrementally; {@link chooseProvider} says which provider fits it.
 *
 * Only what routing needs is decoded: the record and legacy versions (TLCP is 0x0101), cipher suites, SNI, ALPN
 * and supported_versions. Anything else is skipped by length. Malformed input is `"not-tls"`, never an exception.
 *
 * @module
 */

/** What a ClientHello offered. */
export interface ClientHelloInfo {
  /** The first record's version (0x0301 for TLS, 0x0101 for TLCP). */
  readonly recordVersion: number;
  /** `legacy_version` (`client_version`) of the ClientHello. */
  readonly legacyVersion: number;
  readonly cipherSuites: readonly number[];
  /** The `server_name` host name, lower-case. */
  readonly serverName: string | undefined;
  readonly alpn: readonly string[];
  /** `supported_versions` (TLS 1.3), GREASE removed. */
  readonly supportedVersions: readonly number[];
}

/** The outcome of feeding bytes to {@link parseClientHello}. */
export type ClientHelloResult =
  | { readonly kind: "hello"; readonly hello: ClientHelloInfo }
  /** More bytes are needed. */
  | { readonly kind: "need-more" }
  /** Not a TLS/TLCP ClientHello (raw traffic or garbage). */
  | { readonly kind: "not-tls"; readonly reason: string };

/** TLCP's protocol version. */
export const TLCP_VERSION = 0x0101;
/** Largest ClientHello accepted (Envoy's tls_inspector default is 64 KiB). */
export const MAX_CLIENT_HELLO = 64 * 1024;

const NEED_MORE: ClientHelloResult = { kind: "need-more" };

function notTls(reason: string): ClientHelloResult {
  return { kind: "not-tls", reason };
}

function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

/**
 * Parses the ClientHello at the start of `data` (all bytes received so far). Returns `need-more` until the whole
 * handshake message arrived; `not-tls` as soon as the bytes cannot be a ClientHello.
 */
export function parseClientHello(data: Uint8Array, maxSize = MAX_CLIENT_HELLO): ClientHelloResult {
  if (data.length < 1) return NEED_MORE;
  if (data[0] !== 0x16) return notTls("first byte is not a handshake record");
  if (data.length < 3) return NEED_MORE;
  const recordVersion = (data[1]! << 8) | data[2]!;
  if (data[1] !== 0x03 && recordVersion !== TLCP_VERSION) return notTls("unknown record version");
  // Reassemble the handshake fragments of consecutive handshake records.
  const body: Uint8Array[] = [];
  let bodyLen = 0;
  let off = 0;
  let need = -1; // total handshake message length once known
  while (true) {
    if (data.length < off + 5) return NEED_MORE;
    if (data[off] !== 0x16) return notTls("ClientHello interrupted by another record type");
    const len = (data[off + 3]! << 8) | data[off + 4]!;
    if (len === 0 || len > 16384 + 2048) return notTls("bad record length");
    if (data.length < off + 5 + len) {
      // The part of this record that arrived may already hold the whole message.
      if (bodyLen + (data.length - off - 5) < 4) return NEED_MORE;
    }
    const avail = Math.min(len, data.length - off - 5);
    body.push(data.subarray(off + 5, off + 5 + avail));
    bodyLen += avail;
    if (need < 0 && bodyLen >= 4) {
      const head = concat(body, 4);
      if (head[0] !== 0x01) return notTls("first handshake message is not a ClientHello");
      need = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (need > maxSize) return notTls("ClientHello is too large");
    }
    if (need >= 0 && bodyLen >= need) break;
    if (avail < len) return NEED_MORE;
    off += 5 + len;
  }
  return decodeHello(concat(body, need), recordVersion);
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length >= n) return parts[0]!.subarray(0, n);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (o >= n) break;
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out;
}

function decodeHello(m: Uint8Array, recordVersion: number): ClientHelloResult {
  const end = m.length;
  let p = 4;
  const bad = (what: string) => notTls(`malformed ClientHello: ${what}`);
  if (p + 2 + 32 + 1 > end) return bad("too short");
  const legacyVersion = (m[p]! << 8) | m[p + 1]!;
  p += 2 + 32;
  const sidLen = m[p]!;
  if (sidLen > 32) return bad("session id too long");
  p += 1 + sidLen;
  if (p + 2 > end) return bad("no cipher suites");
  const csLen = (m[p]! << 8) | m[p + 1]!;
  p += 2;
  if (csLen % 2 !== 0 || csLen === 0 || p + csLen > end) return bad("cipher suites");
  const cipherSuites: number[] = [];
  for (let i = 0; i < csLen; i += 2) cipherSuites.push((m[p + i]! << 8) | m[p + i + 1]!);
  p += csLen;
  if (p + 1 > end) return bad("no compression methods");
  const cmLen = m[p]!;
  p += 1 + cmLen;
  if (p > end) return bad("compression methods");
  let serverName: string | undefined;
  const alpn: string[] = [];
  const supportedVersions: number[] = [];
  if (p + 2 <= end) {
    const extLen = (m[p]! << 8) | m[p + 1]!;
    p += 2;
    const extEnd = p + extLen;
    if (extEnd > end) return bad("extensions length");
    while (p + 4 <= extEnd) {
      const type = (m[p]! << 8) | m[p + 1]!;
      const len = (m[p + 2]! << 8) | m[p + 3]!;
      p += 4;
      if (p + len > extEnd) return bad("extension length");
      const e = m.subarray(p, p + len);
      if (type === 0 && e.length >= 2) serverName = readServerName(e);
      else if (type === 16 && e.length >= 2) readAlpn(e, alpn);
      else if (type === 43 && e.length >= 1) {
        for (let i = 1; i + 1 < e.length && i <= e[0]!; i += 2) {
          const v = (e[i]! << 8) | e[i + 1]!;
          if (!isGrease(v)) supportedVersions.push(v);
        }
      }
      p += len;
    }
  }
  return {
    kind: "hello",
    hello: { recordVersion, legacyVersion, cipherSuites, serverName, alpn, supportedVersions },
  };
}

function readServerName(e: Uint8Array): string | undefined {
  const listLen = (e[0]! << 8) | e[1]!;
  let p = 2;
  const end = Math.min(e.length, 2 + listLen);
  while (p + 3 <= end) {
    const t = e[p]!;
    const l = (e[p + 1]! << 8) | e[p + 2]!;
    p += 3;
    if (p + l > end) return undefined;
    if (t === 0) {
      let s = "";
      for (let i = p; i < p + l; i++) s += String.fromCharCode(e[i]!);
      return s.toLowerCase();
    }
    p += l;
  }
  return undefined;
}

function readAlpn(e: Uint8Array, out: string[]): void {
  const listLen = (e[0]! << 8) | e[1]!;
  let p = 2;
  const end = Math.min(e.length, 2 + listLen);
  while (p < end) {
    const l = e[p]!;
    p++;
    if (p + l > end) return;
    out.push(new TextDecoder().decode(e.subarray(p, p + l)));
    p += l;
  }
}

/** SM cipher suites: TLS 1.3 (RFC 8998) and the GB/T 38636 (TLCP) range. */
export function isSmSuite(suite: number): boolean {
  return suite === 0x00c6 || suite === 0x00c7 || (suite >> 8) === 0xe0;
}

/** The signalling values that are not real suites (renegotiation SCSV, fallback SCSV, GREASE). */
function isSignalling(suite: number): boolean {
  return suite === 0x00ff || suite === 0x5600 || isGrease(suite);
}

/** The GM protocol a ClientHello asks for, or undefined for standard TLS. */
export function gmVersionOf(hello: ClientHelloInfo): "TLCP" | "TLSv1.3" | undefined {
  if (hello.recordVersion === TLCP_VERSION || hello.legacyVersion === TLCP_VERSION) return "TLCP";
  const real = hello.cipherSuites.filter((s) => !isSignalling(s));
  if (real.length > 0 && real.every(isSmSuite)) {
    return real.some((s) => s === 0x00c6 || s === 0x00c7) ? "TLSv1.3" : "TLCP";
  }
  return undefined;
}

/** Which provider fits a ClientHello (DESIGN §5): TLCP or SM-only suites → `gm`, else `native`. */
export function chooseProvider(hello: ClientHelloInfo): "gm" | "native" {
  return gmVersionOf(hello) === undefined ? "native" : "gm";
}
