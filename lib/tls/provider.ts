/**
 * The TLS provider contract (DESIGN §5): a provider turns a ciphertext {@link NetConnection} into a plaintext one
 * that carries the handshake facts, so the connection manager and tcp_proxy cannot tell providers apart.
 *
 * Contract:
 * - `accept(transport, context, options)` takes an accepted connection that may already be started (a listener
 *   filter peeked at it) and the bytes already read from it (`options.initial`), which the provider replays into
 *   its handshake first. It takes over the transport's handler. It resolves with a {@link SecureConnection} once
 *   the handshake completed (not yet started: the caller sets a handler and calls `start`), or rejects with a
 *   {@link TlsHandshakeError}; on rejection the transport is closed.
 * - `connect(transport, context, options)` does the same as a client over an unstarted transport.
 * - A provider's `context` is what its `parse*` functions returned; certificates and keys are loaded at parse
 *   time, so a bad file is a config error and not a data-path failure.
 *
 * This interface lives in `lib/tls` (not `lib/api`) because only the listener and the upstream connector call it.
 *
 * @module
 */
import type { NetConnection } from "../api/network.ts";
import type { TlsAlertDescription, TlsHandshakeInfo } from "../api/tls.ts";

/** A connection whose handshake completed: plaintext I/O plus the full handshake facts. */
export interface SecureConnection extends NetConnection {
  /** The handshake facts (version, suite, ALPN, SNI, peer certificates). */
  readonly handshake: TlsHandshakeInfo;
}

/** Why a handshake failed; decides which `ssl.*` counter a listener bumps. */
export type TlsFailureKind =
  /** Protocol failure (bad record, alert, unsupported version or suite). */
  | "handshake"
  /** The handshake did not complete in time. */
  | "timeout"
  /** A client certificate was required and the peer sent none (`ssl.fail_verify_no_cert`). */
  | "no_certificate"
  /** The peer's certificate did not verify (`ssl.fail_verify_error`). */
  | "verify"
  /** The peer closed before the handshake completed. */
  | "closed";

/** A failed handshake. */
export class TlsHandshakeError extends Error {
  /** The failure class. */
  readonly kind: TlsFailureKind;
  /** The alert sent or received, when there was one. */
  readonly alert: TlsAlertDescription | undefined;

  constructor(kind: TlsFailureKind, message: string, options: { alert?: TlsAlertDescription; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TlsHandshakeError";
    this.kind = kind;
    this.alert = options.alert;
  }
}

/** Options of {@link TlsProvider.accept}. */
export interface TlsAcceptOptions {
  /** Bytes already read from the transport (a peeked ClientHello), replayed before anything else. */
  readonly initial?: Uint8Array | undefined;
  /** Handshake deadline in milliseconds. */
  readonly timeoutMs: number;
  /** Queued-output limit of the plaintext side (the listener's `per_connection_buffer_limit_bytes`). */
  readonly highWatermark?: number | undefined;
}

/** Options of {@link TlsProvider.connect}. */
export interface TlsConnectOptions {
  /** Handshake deadline in milliseconds. */
  readonly timeoutMs: number;
  /** Queued-output limit of the plaintext side. */
  readonly highWatermark?: number | undefined;
  /** The upstream host name, when the cluster's `sni` is not set (used for verification). */
  readonly hostname?: string | undefined;
}

/**
 * A TLS implementation behind a transport socket: parses its config into a server and a client context, and
 * accepts or originates handshakes. Implementations: `native` (Deno's rustls), `gm` (our TS engines).
 */
export interface TlsProvider<S = unknown, C = unknown> {
  /** `native` or `gm`. */
  readonly name: string;
  /** Server side: wraps an accepted connection. */
  accept(transport: NetConnection, context: S, options: TlsAcceptOptions): Promise<SecureConnection>;
  /** Client side: wraps an opened connection. */
  connect(transport: NetConnection, context: C, options: TlsConnectOptions): Promise<SecureConnection>;
}

/** Copies handshake facts into the `tls` shape of {@link NetConnection}. */
export function tlsFacts(info: TlsHandshakeInfo): { version?: string; cipher?: string; sni?: string; alpn?: string } {
  const t: { version?: string; cipher?: string; sni?: string; alpn?: string } = {
    version: info.version,
    cipher: info.cipher,
  };
  if (info.sni !== undefined) t.sni = info.sni;
  if (info.alpn !== undefined) t.alpn = info.alpn;
  return t;
}
