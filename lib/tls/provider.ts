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
import type { ObjReader } from "../config/reader.ts";

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

/** Options a transport-socket parser passes to a {@link TlsProviderFactory}. */
export interface TlsParseOptions {
  /**
   * The context may be replaced while it is in use (its certificates or trust anchors come from the secret
   * provider): the listener reads it per handshake, so the factory must not mark it for a listening socket that
   * would bake the certificate in (the native provider's `Deno.listenTls` fast path).
   */
  readonly rotating?: boolean;
}

/**
 * A TLS provider as a registered factory (DESIGN §4): a name, the transport socket `typed_config` `@type` URLs it
 * parses, its config-time step (`parseServer`/`parseClient`: typed config to the provider's context, certificates
 * loaded, {@link ConfigError}s naming the path) and the {@link TlsProvider} that runs handshakes with that context.
 * Listed in `lib/tls/providers.ts` (exported by `lib/tls/mod.ts`) and looked up in a `Registry` by `@type`; a
 * third party adds one to the list of its own build.
 */
export interface TlsProviderFactory<S = unknown, C = unknown> {
  /** `native`, `gm`, ...: also the transport socket's `kind`. */
  readonly name: string;
  /** Every `@type` this factory parses (server and client). */
  readonly configTypes: readonly string[];
  /** The `@type`s a listener may name; the first is quoted in messages. Empty when there is no server side. */
  readonly serverConfigTypes: readonly string[];
  /** The `@type`s a cluster may name; the first is quoted in messages. Empty when there is no client side. */
  readonly clientConfigTypes: readonly string[];
  /** The provider that accepts and originates handshakes with the contexts parsed here. */
  readonly provider: TlsProvider<S, C>;
  /**
   * Parses a listener's `typed_config` (`type` is its `@type`, already read) and closes the reader. Called for any
   * of `configTypes`, so it rejects a client-only type with a message that says so.
   */
  parseServer(tc: ObjReader, type: string, options: TlsParseOptions): S;
  /** Parses a cluster's `typed_config`, as {@link parseServer} does for listeners. */
  parseClient(tc: ObjReader, type: string, options: TlsParseOptions): C;
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
