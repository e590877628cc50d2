/**
 * `dubboCodecFactory` and {@link createDubboCodecFactory}: the Dubbo 2 codec (multiplexed by request id).
 *
 * @example
 * ```ts
 * import { createDubboCodecFactory } from "./codec.ts";
 * import { HeaderMap } from "../../lib/api/headers.ts";
 *
 * const out: Uint8Array[] = [];
 * const dubbo = createDubboCodecFactory({ maxBodyBytes: 1 << 20 });
 * const server = dubbo.createServer((b) => out.push(b.slice()), {
 *   newStream(encoder) {
 *     return {
 *       decodeHeaders(headers) {
 *         // headers.get("service"), headers.get("version"), headers.get("method"), attachments...
 *       },
 *       decodeData(_body, endStream) {
 *         if (endStream) encoder.encodeHeaders(new HeaderMap([":status", "404"]), true);
 *       },
 *       decodeTrailers() {},
 *     };
 *   },
 * });
 * ```
 *
 * @module
 */
import type {
  ClientCodecCallbacks,
  CodecFactory,
  CodecOptions,
  ServerCodecCallbacks,
  WriteFn,
} from "../../lib/api/codec.ts";
import { DubboClientCodec } from "./client.ts";
import { dubboLocalReply } from "./mapping.ts";
import { DubboServerCodec } from "./server.ts";
import type { DubboCodecOptions } from "./types.ts";

/** The Dubbo codec factory type: a {@link CodecFactory} with the concrete codec classes. */
export type DubboCodecFactory = {
  readonly name: "dubbo";
  readonly poolMode: "multiplex-request-id";
  createServer(write: WriteFn, callbacks: ServerCodecCallbacks, options?: CodecOptions): DubboServerCodec;
  createClient(write: WriteFn, options?: CodecOptions, callbacks?: ClientCodecCallbacks): DubboClientCodec;
} & CodecFactory;

/**
 * A Dubbo codec factory with its own limits and stats (an RPC proxy builds one per config, with the stats of its
 * `stat_prefix`). `heartbeatIntervalMs` is the upstream idle heartbeat (default 60 s, 0: none).
 */
export function createDubboCodecFactory(
  options: DubboCodecOptions & { heartbeatIntervalMs?: number } = {},
): DubboCodecFactory {
  return {
    name: "dubbo",
    poolMode: "multiplex-request-id",
    createServer(write, callbacks) {
      return new DubboServerCodec(write, callbacks, options);
    },
    createClient(write, _options, callbacks) {
      return new DubboClientCodec(write, options, callbacks);
    },
    localReply: dubboLocalReply,
  };
}

/** The Dubbo codec with default limits and no stats. */
export const dubboCodecFactory: DubboCodecFactory = createDubboCodecFactory();
