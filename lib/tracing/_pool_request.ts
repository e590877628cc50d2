/**
 * One buffered request on a cluster's connection pool, for the exporters: headers and a body out, the status,
 * headers, trailers and body back (bounded), a timeout. It uses the cluster's balancer and pools, so exports share
 * connections (HTTP/2 multiplexes them) and the cluster's stats, and no `fetch()` runs in the proxy.
 *
 * @module
 */
import type { CodecFactory, StreamDecoder, StreamEncoder, StreamResetReason } from "../api/codec.ts";
import type { HeaderMap } from "../api/headers.ts";
import type { Cancellable, Cluster, PoolCallbacks, PoolFailureReason, PoolReadyInfo } from "../api/upstream.ts";

/** A complete response. */
export interface PoolResponse {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly trailers: HeaderMap | undefined;
  readonly body: Uint8Array;
}

const MAX_BODY = 64 * 1024;

/**
 * Sends `headers` + `body` to a host of `cluster` (on the pool of `codec`, or the cluster's HTTP pool); `done` is
 * called once with the response or a one-line failure.
 */
export function poolRequest(
  cluster: Cluster,
  request: { headers: HeaderMap; body: Uint8Array; timeoutMs: number; codec?: CodecFactory },
  done: (r: PoolResponse | { error: string }) => void,
): void {
  const host = cluster.chooseHost();
  if (!host) {
    cluster.info.stats.upstream_cx_none_healthy.inc();
    done({ error: `cluster "${cluster.info.name}": no healthy upstream host` });
    return;
  }
  let finished = false;
  let handle: Cancellable | undefined;
  let encoder: StreamEncoder | undefined;
  let status = 0;
  let respHeaders: HeaderMap | undefined;
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const finish = (r: PoolResponse | { error: string }) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    handle?.cancel();
    if ("error" in r && encoder) {
      try {
        encoder.resetStream("local-reset");
      } catch {
        // already gone
      }
    }
    done(r);
  };
  const complete = (trailers: HeaderMap | undefined) => {
    const body = new Uint8Array(bytes);
    let off = 0;
    for (const c of chunks) {
      body.set(c, off);
      off += c.length;
    }
    finish({ status, headers: respHeaders!, trailers, body });
  };
  const timer = setTimeout(() => finish({ error: "timeout" }), Math.max(1, request.timeoutMs));
  const decoder: StreamDecoder = {
    decode1xxHeaders(_h: HeaderMap) {},
    decodeHeaders(h: HeaderMap, end: boolean) {
      status = Number(h.get(":status") ?? 0);
      respHeaders = h;
      if (end) complete(undefined);
    },
    decodeData(d: Uint8Array, end: boolean) {
      if (finished) return;
      bytes += d.length;
      if (bytes > MAX_BODY) return finish({ error: "response too large" });
      if (d.length > 0) chunks.push(d.slice());
      if (end) complete(undefined);
    },
    decodeTrailers(t: HeaderMap) {
      complete(t);
    },
    onReset(reason: StreamResetReason, detail?: string) {
      finish({ error: `stream reset (${reason}${detail ? `: ${detail}` : ""})` });
    },
  } as StreamDecoder;
  const callbacks: PoolCallbacks = {
    onPoolReady(enc: StreamEncoder, _info: PoolReadyInfo) {
      handle = undefined;
      if (finished) {
        enc.resetStream("local-reset");
        return;
      }
      encoder = enc;
      enc.encodeHeaders(request.headers, false);
      enc.encodeData(request.body, true);
    },
    onPoolFailure(reason: PoolFailureReason, detail: string) {
      handle = undefined;
      finish({ error: `${reason}: ${detail}` });
    },
  };
  try {
    const pool = request.codec ? cluster.pool(host, request.codec) : cluster.httpPool(host);
    const h = pool.newStream(decoder, callbacks);
    if (h && !finished && !encoder) handle = h;
  } catch (e) {
    finish({ error: e instanceof Error ? e.message : String(e) });
  }
}
