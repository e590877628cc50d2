/**
 * The `multiplex-request-id` pool (Bolt, Dubbo): {@link MuxConnPool} as it is. A client codec of this mode assigns
 * the upstream request ids itself and matches responses back by them, so to the pool its requests look exactly
 * like HTTP/2 streams: many per connection up to the codec's `maxConcurrentStreams`, placed on the oldest
 * connection with room, each ending or resetting on its own. The pool is handed a view of the codec factory that
 * declares `multiplex-stream-id` (the mode `MuxConnPool` checks); one view per codec, made once.
 *
 * Known difference: the pool counts its connections in `upstream_cx_http2_total`, as it does for HTTP/2.
 *
 * @module
 */
import type { CodecFactory } from "../api/codec.ts";
import { MuxConnPool } from "./mux_pool.ts";
import type { ConnPoolFactory } from "./pool_factory.ts";

const views = new WeakMap<CodecFactory, CodecFactory>();

function streamIdView(codec: CodecFactory): CodecFactory {
  let v = views.get(codec);
  if (v === undefined) {
    v = {
      name: codec.name,
      poolMode: "multiplex-stream-id",
      createServer: (w, c, o) => codec.createServer(w, c, o),
      createClient: (w, o, c) => codec.createClient(w, o, c),
      ...(codec.localReply ? { localReply: codec.localReply } : {}),
    };
    views.set(codec, v);
  }
  return v;
}

/** `multiplex-request-id`: {@link MuxConnPool} over the codec's own request ids. */
export const multiplexRequestIdPoolFactory: ConnPoolFactory = {
  name: "multiplex-request-id",
  create(host, params) {
    return new MuxConnPool(host, {
      codec: streamIdView(params.codec),
      codecOptions: params.codecOptions,
      resources: params.resources,
      connect: params.connect,
    });
  },
};
