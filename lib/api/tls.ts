/**
 * The TLS contracts: handshake facts, a sans-I/O protocol engine, and the provider that turns a connection into
 * a secure one.
 *
 * Engines (`lib/tls/engine/tls13/`, `lib/tls/engine/tlcp/`) are **sans-I/O**: they never touch a socket. The
 * provider feeds them ciphertext from the network with `receive`, hands them application data with `send`, and
 * they answer through their callbacks (`write` ciphertext to the network, `onData` plaintext for the
 * application). This keeps the protocol logic synchronous, testable in memory, and usable over any transport.
 *
 * Contract for engines:
 * - `receive(data)` may be called with any split of the byte stream; the engine buffers partial records. `data` is
 *   only valid during the call.
 * - Callbacks are called synchronously from `start`, `receive`, `send`, `close` or `keyUpdate`.
 * - Any protocol failure ends the engine with exactly one `onError(TlsAlertError)` (after writing the alert to the
 *   peer through `write`); nothing is called after `onError` or `onClose`.
 * - `send` before the handshake completes queues the data (server: after Finished; client: after Finished).
 *
 * @module
 */

/** TLS protocol versions Ferry speaks. */
export type TlsVersion = "TLSv1.2" | "TLSv1.3" | "TLCP";

/** What a completed handshake established. */
export interface TlsHandshakeInfo {
  /** The negotiated protocol version (`%DOWNSTREAM_TLS_VERSION%`). */
  readonly version: TlsVersion;
  /** IANA / GB/T name, e.g. `TLS_SM4_GCM_SM3`, `ECC_SM4_CBC_SM3`, `TLS_AES_128_GCM_SHA256`. */
  readonly cipher: string;
  /** Negotiated ALPN protocol. */
  readonly alpn?: string | undefined;
  /** SNI sent by the client. */
  readonly sni?: string | undefined;
  /** The peer's certificate chain, DER, leaf first (empty when the peer sent none). TLCP: sign cert then enc cert. */
  readonly peerCertificates: readonly Uint8Array[];
  /** True for an abbreviated (resumed) handshake. */
  readonly resumed: boolean;
  /** Key exchange group or method, e.g. `curveSM2`, `x25519`, `ECC`, `ECDHE`. */
  readonly group?: string | undefined;
}

/** TLS alert descriptions (RFC 8446 §6, GB/T 38636 adds `unsupported_site2site` etc. which map to these). */
export type TlsAlertDescription =
  | "close_notify"
  | "unexpected_message"
  | "bad_record_mac"
  | "record_overflow"
  | "handshake_failure"
  | "bad_certificate"
  | "unsupported_certificate"
  | "certificate_revoked"
  | "certificate_expired"
  | "certificate_unknown"
  | "illegal_parameter"
  | "unknown_ca"
  | "access_denied"
  | "decode_error"
  | "decrypt_error"
  | "protocol_version"
  | "insufficient_security"
  | "internal_error"
  | "inappropriate_fallback"
  | "user_canceled"
  | "missing_extension"
  | "unsupported_extension"
  | "unrecognized_name"
  | "no_application_protocol"
  | "certificate_required"
  | "no_renegotiation";

/** Alert codes on the wire. */
export const TLS_ALERT_CODES: Readonly<Record<TlsAlertDescription, number>> = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  no_renegotiation: 100,
  missing_extension: 109,
  unsupported_extension: 110,
  unrecognized_name: 112,
  certificate_required: 116,
  no_application_protocol: 120,
};

/** A TLS failure: the alert sent (`sent: true`) or received from the peer (`sent: false`). */
export class TlsAlertError extends Error {
  /** The alert's description; {@link TLS_ALERT_CODES} gives its wire code. */
  readonly alert: TlsAlertDescription;
  /** True if this side sent the alert (it found the fault), false if the peer sent it. */
  readonly sent: boolean;

  /** Makes the error; `cause` keeps the underlying error (e.g. a certificate verification failure). */
  constructor(alert: TlsAlertDescription, message: string, options: { sent: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TlsAlertError";
    this.alert = alert;
    this.sent = options.sent;
  }
}

/** How an engine talks back to its provider. */
export interface TlsEngineCallbacks {
  /**
   * Ciphertext (records) to send to the peer. The engine does not reuse the buffer afterwards, unless
   * {@link TlsEngineCallbacks.writeCopies} is true.
   */
  write(data: Uint8Array): void;
  /**
   * True if `write` copies `data` before it returns (a connection's write queue does): an engine may then seal
   * application data into a shared scratch buffer instead of a new one per call.
   */
  readonly writeCopies?: boolean;
  /** Decrypted application data. Only valid during the call. */
  onData(data: Uint8Array): void;
  /** The handshake completed. */
  onHandshake(info: TlsHandshakeInfo): void;
  /** The peer sent close_notify (its write side is done). */
  onClose(): void;
  /** A fatal error; the engine is dead. */
  onError(err: TlsAlertError): void;
}

/** A sans-I/O TLS endpoint (see the module contract). */
export interface TlsEngine {
  /** Starts the handshake (the client writes its ClientHello; a server waits). */
  start(): void;
  /** Ciphertext from the peer. */
  receive(data: Uint8Array): void;
  /** Application data to protect and send. */
  send(data: Uint8Array): void;
  /** Sends close_notify; further `send` calls are ignored. */
  close(): void;
  /** TLS 1.3: sends a KeyUpdate (requesting the peer's if `requestPeer`). */
  keyUpdate?(requestPeer: boolean): void;
  /** True once the handshake has completed. */
  readonly handshakeComplete: boolean;
  /** What the handshake established, once complete (the same object `onHandshake` received); undefined before. */
  readonly info: TlsHandshakeInfo | undefined;
}
