/**
 * The TLS 1.3 side of the shared TLS codec (`../_codec.ts`), the wire constants, and the internal fatal-error type that the
 * engine turns into an alert. Private to this folder.
 *
 * @module
 */

import type { TlsAlertDescription } from "../../../api/tls.ts";
import { concat, equalConstantTime, TlsReader, TlsWriter } from "../_codec.ts";

/** A protocol failure inside the engine: the alert to send and why. Caught by the engine, never escapes it. */
export class Tls13Fatal extends Error {
  /** The alert to send to the peer. */
  readonly alert: TlsAlertDescription;

  constructor(alert: TlsAlertDescription, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Tls13Fatal";
    this.alert = alert;
  }
}

/** Throws a {@link Tls13Fatal}. */
export function fatal(alert: TlsAlertDescription, message: string, cause?: unknown): never {
  throw new Tls13Fatal(alert, `tls13: ${message}`, cause === undefined ? undefined : { cause });
}

/** Record content types (RFC 8446 §5.1). */
export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
} as const;

/** Handshake message types (RFC 8446 §4). */
export const HandshakeType = {
  clientHello: 1,
  serverHello: 2,
  newSessionTicket: 4,
  endOfEarlyData: 5,
  encryptedExtensions: 8,
  certificate: 11,
  certificateRequest: 13,
  certificateVerify: 15,
  finished: 20,
  keyUpdate: 24,
  messageHash: 254,
} as const;

/** Extension code points (RFC 8446 §4.2, RFC 6066, RFC 7301). */
export const ExtensionType = {
  serverName: 0,
  supportedGroups: 10,
  signatureAlgorithms: 13,
  alpn: 16,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  certificateAuthorities: 47,
  postHandshakeAuth: 49,
  signatureAlgorithmsCert: 50,
  keyShare: 51,
} as const;

/** The TLS 1.3 version on the wire. */
export const TLS13 = 0x0304;

/** The legacy version fields carry TLS 1.2. */
export const TLS12 = 0x0303;

/** The ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3). */
export const HRR_RANDOM: Uint8Array = new Uint8Array([
  0xcf,
  0x21,
  0xad,
  0x74,
  0xe5,
  0x9a,
  0x61,
  0x11,
  0xbe,
  0x1d,
  0x8c,
  0x02,
  0x1e,
  0x65,
  0xb8,
  0x91,
  0xc2,
  0xa2,
  0x11,
  0x16,
  0x7a,
  0xbb,
  0x8c,
  0x5e,
  0x07,
  0x9e,
  0x09,
  0xe2,
  0xc8,
  0xa8,
  0x33,
  0x9c,
]);

/** The shared TLS reader; a malformed message is a `decode_error` (see {@link fatal}). */
export class Reader extends TlsReader {
  constructor(bytes: Uint8Array, what: string) {
    super(bytes, what, (message) => fatal("decode_error", message));
  }
}

export { concat, equalConstantTime, TlsWriter as Writer };

/** Wraps `body` as a handshake message: type, 3-byte length, body. */
export function handshakeMessage(type: number, body: Uint8Array): Uint8Array {
  const m = new Uint8Array(4 + body.length);
  m[0] = type;
  m[1] = body.length >>> 16;
  m[2] = (body.length >>> 8) & 0xff;
  m[3] = body.length & 0xff;
  m.set(body, 4);
  return m;
}
