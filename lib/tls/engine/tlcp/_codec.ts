/**
 * The TLCP side of the shared TLS codec (`../_codec.ts`), byte helpers, and the internal fatal-error type that the engine turns
 * into an alert. Private to this folder.
 *
 * @module
 */

import type { TlsAlertDescription } from "../../../api/tls.ts";
import { concat, equalConstantTime, TlsReader, TlsWriter } from "../_codec.ts";

/** A protocol failure inside the engine: the alert to send and why. Caught by the engine, never escapes it. */
export class TlcpFatal extends Error {
  /** The alert to send to the peer. */
  readonly alert: TlsAlertDescription;

  constructor(alert: TlsAlertDescription, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlcpFatal";
    this.alert = alert;
  }
}

/** The shared TLS reader; a malformed message is a `decode_error` carrying the `tlcp:` prefix. */
export class Reader extends TlsReader {
  constructor(bytes: Uint8Array, what: string) {
    super(bytes, what, (message) => {
      throw new TlcpFatal("decode_error", `tlcp: ${message}`);
    });
  }
}

export { concat, equalConstantTime as bytesEqual, TlsWriter as Writer };

/** Fresh random bytes. */
export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
