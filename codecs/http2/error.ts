/**
 * {@link Http2CodecError}: an HTTP/2 connection error, as thrown by the codec's `dispatch`.
 *
 * @module
 */
import { CodecError, type CodecErrorCode } from "../../lib/api/errors.ts";

/**
 * A connection error (RFC 9113 §5.4.1) found in `dispatch`. It is a {@link CodecError} (so the connection manager
 * treats it as one) that also carries the HTTP/2 error code and the last stream id the GOAWAY names. By the time it
 * is thrown the codec has written that GOAWAY already; `sendProtocolError` with it writes nothing more.
 */
export class Http2CodecError extends CodecError {
  /** The HTTP/2 error code of the GOAWAY (`ErrorCode` in frames.ts), e.g. 0x1 PROTOCOL_ERROR. */
  readonly http2Code: number;
  /** The last peer-initiated stream id the codec processed (the GOAWAY's last-stream-id). */
  readonly lastStreamId: number;

  /** Makes the error; `status` is the HTTP status a local reply would use (default 400). */
  constructor(
    code: CodecErrorCode,
    message: string,
    options: { http2Code: number; lastStreamId: number; offset?: number; status?: number },
  ) {
    super(code, message, options);
    this.name = "Http2CodecError";
    this.http2Code = options.http2Code;
    this.lastStreamId = options.lastStreamId;
  }
}
