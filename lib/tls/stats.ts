/**
 * Envoy's TLS stats of a listener (`listener.<prefix>.ssl.*`) or a cluster (`cluster.<name>.ssl.*`).
 *
 * @module
 */
import type { Counter, StatsScope } from "../api/stats.ts";
import type { SecureConnection, TlsFailureKind } from "./provider.ts";

/** The `ssl.*` counters of one listener or cluster. */
export class SslStats {
  readonly handshake: Counter;
  readonly connectionError: Counter;
  readonly failVerifyNoCert: Counter;
  readonly failVerifyError: Counter;
  readonly noCertificate: Counter;
  readonly sessionReused: Counter;
  readonly #scope: StatsScope;
  /** `ciphers.<suite>` and `versions.<version>` by name, looked up once (a scope lookup builds the full name). */
  readonly #named = new Map<string, Counter>();

  /** `scope` is the listener or cluster scope; counters go under `ssl.`. */
  constructor(scope: StatsScope) {
    this.#scope = scope.scope("ssl");
    this.handshake = this.#scope.counter("handshake");
    this.connectionError = this.#scope.counter("connection_error");
    this.failVerifyNoCert = this.#scope.counter("fail_verify_no_cert");
    this.failVerifyError = this.#scope.counter("fail_verify_error");
    this.noCertificate = this.#scope.counter("no_certificate");
    this.sessionReused = this.#scope.counter("session_reused");
  }

  /** Counts a completed handshake: `handshake`, `ciphers.<suite>`, `versions.<version>`, `no_certificate`. */
  onHandshake(conn: SecureConnection): void {
    const info = conn.handshake;
    this.handshake.inc();
    this.#namedCounter("ciphers.", info.cipher).inc();
    this.#namedCounter("versions.", info.version).inc();
    if (info.peerCertificates.length === 0) this.noCertificate.inc();
    if (info.resumed) this.sessionReused.inc();
  }

  #namedCounter(prefix: string, name: string): Counter {
    const key = prefix + name;
    let c = this.#named.get(key);
    if (c === undefined) this.#named.set(key, c = this.#scope.counter(key));
    return c;
  }

  /** Counts a completed handshake known only by its ALPN (the `Deno.listenTls` fast path). */
  onFastHandshake(): void {
    this.handshake.inc();
    this.noCertificate.inc();
  }

  /** Counts a failed handshake. */
  onFailure(kind: TlsFailureKind): void {
    if (kind === "no_certificate") this.failVerifyNoCert.inc();
    else if (kind === "verify") this.failVerifyError.inc();
    this.connectionError.inc();
  }
}
