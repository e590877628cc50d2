/**
 * The three error types of Ferry.
 *
 * - {@link ConfigError}: control-plane errors (bootstrap, xDS). Carries the field path so the one-line message
 *   names exactly what is wrong: `config: static_resources.clusters[1].lb_policy: "X" is not supported`.
 * - {@link ProxyError}: data-path errors. A closed union `code`, where the error came from, and whether a retry
 *   may help. The data path records these as response flags and answers locally; it never lets them escape.
 * - {@link CodecError}: a protocol parse failure with the byte offset where it was found.
 *
 * @module
 */

/** A configuration error with the dotted field path of the offending value. */
export class ConfigError extends Error {
  /** Field path such as `static_resources.listeners[0].address`. Empty for whole-document errors. */
  readonly path: string;
  /** The detail without the path prefix. */
  readonly detail: string;

  /**
   * Makes the error; the message is `config: <path>: <detail>` (or `config: <detail>` for an empty path).
   * `options.cause` keeps the underlying error, e.g. a JSON or file-system error.
   */
  constructor(path: string, detail: string, options?: ErrorOptions) {
    super(path ? `config: ${path}: ${detail}` : `config: ${detail}`, options);
    this.name = "ConfigError";
    this.path = path;
    this.detail = detail;
  }
}

/** Where a data-path error originated. */
export type ErrorSource = "downstream" | "upstream" | "internal";

/** The closed set of data-path error codes. */
export type ProxyErrorCode =
  | "ConnectTimeout"
  | "ConnectRefused"
  | "ConnectionReset"
  | "ConnectionClosed"
  | "UpstreamTimeout"
  | "PerTryTimeout"
  | "IdleTimeout"
  | "NoHealthyUpstream"
  | "NoRoute"
  | "NoCluster"
  | "Overflow"
  | "InvalidHttpHeader"
  | "InvalidHttpMessage"
  | "TlsHandshakeFailure"
  | "FilterError"
  | "Internal";

/** A data-path error: what happened, on which side, and whether a retry may help. */
export class ProxyError extends Error {
  /** What went wrong, from a closed set; callers branch on it for the response flag (`Overflow` → `UO`). */
  readonly code: ProxyErrorCode;
  /** Which side caused it: the downstream client, the upstream host, or Ferry itself. */
  readonly source: ErrorSource;
  /** True if another attempt (another connection or host) may succeed, e.g. a refused or timed-out connect. */
  readonly retryable: boolean;

  /** Makes the error; `retryable` defaults to false, and `cause` keeps the underlying error. */
  constructor(
    code: ProxyErrorCode,
    message: string,
    options: { source: ErrorSource; retryable?: boolean; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProxyError";
    this.code = code;
    this.source = options.source;
    this.retryable = options.retryable ?? false;
  }
}

/** Codec error codes; HTTP/1 maps them to a status code for the local reply. */
export type CodecErrorCode =
  | "BadRequestLine"
  | "BadStatusLine"
  | "BadHeader"
  | "HeadersTooLarge"
  | "TooManyHeaders"
  | "BadContentLength"
  | "BadTransferEncoding"
  | "BadChunk"
  | "BadVersion"
  | "BadMethod"
  | "BadUri"
  | "BodyTooLarge"
  | "UnexpectedData"
  | "Protocol";

/** A protocol parse failure at a byte offset of the connection's input. */
export class CodecError extends Error {
  /** What is malformed; the connection manager records it as `codec_error:<code>` in the response details. */
  readonly code: CodecErrorCode;
  /** Offset into the buffer being parsed when the error was found (best effort). */
  readonly offset: number;
  /** For HTTP codecs: the status the downstream should get (400, 413, 431, 501, 505). */
  readonly status: number;

  /** Makes the error; `offset` defaults to 0 and `status` to 400. */
  constructor(code: CodecErrorCode, message: string, options: { offset?: number; status?: number } = {}) {
    super(message);
    this.name = "CodecError";
    this.code = code;
    this.offset = options.offset ?? 0;
    this.status = options.status ?? 400;
  }
}
