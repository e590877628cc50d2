/**
 * What the connection pools share (`Http1ConnPool`, `MuxConnPool`): the waiting-stream handle, the host counters of
 * a host that is not a `HostImpl`, failing the wait queue, and counting a failed connect. Private to this folder.
 *
 * @module
 */
import type { StreamDecoder } from "../api/codec.ts";
import type { Cancellable, ClusterStats, Host, PoolCallbacks, PoolFailureReason } from "../api/upstream.ts";
import { errorText, isConnectTimeout } from "./connect.ts";
import { type HostCounters, HostImpl } from "./host.ts";
import type { ClusterResources } from "./resources.ts";

/** The pool a waiting stream belongs to: cancelling the handle takes it out of the queue. */
export interface PendingOwner {
  _cancel(p: PendingStream): void;
}

/** A stream waiting for a connection. */
export class PendingStream implements Cancellable {
  readonly decoder: StreamDecoder;
  readonly callbacks: PoolCallbacks;
  readonly #pool: PendingOwner;
  done = false;

  constructor(pool: PendingOwner, decoder: StreamDecoder, callbacks: PoolCallbacks) {
    this.#pool = pool;
    this.decoder = decoder;
    this.callbacks = callbacks;
  }

  cancel(): void {
    if (this.done) return;
    this.#pool._cancel(this);
  }
}

/** The host's health counters, or throw-away ones for a host that keeps none. */
export function hostCounters(host: Host): HostCounters {
  return host instanceof HostImpl ? host.counters : {
    cxTotal: 0,
    cxActive: 0,
    cxConnectFail: 0,
    rqTotal: 0,
    rqError: 0,
    rqSuccess: 0,
    rqTimeout: 0,
  };
}

/** Ends every waiting stream with `reason` (breaker and gauge released first, then the callbacks). */
export function failPendingStreams(
  pending: readonly PendingStream[],
  pool: { res: ClusterResources; stats: ClusterStats; host: Host },
  reason: PoolFailureReason,
  detail: string,
): void {
  for (const p of pending) {
    p.done = true;
    pool.res.pendingRequests.dec();
    pool.stats.upstream_rq_pending_active.dec();
  }
  for (const p of pending) p.callbacks.onPoolFailure(reason, detail, pool.host);
}

/**
 * Counts a failed connect (cluster stats, breaker, host counters) and returns how the waiting streams fail with it:
 * as Envoy, a failed connect fails the queue rather than letting it wait for the next attempt.
 */
export function connectFailure(
  e: unknown,
  pool: { res: ClusterResources; stats: ClusterStats; hc: HostCounters; name: string; host: Host },
): { reason: PoolFailureReason; detail: string } {
  const { stats, hc } = pool;
  pool.res.connections.dec();
  stats.upstream_cx_active.dec();
  stats.upstream_cx_connect_fail.inc();
  hc.cxActive--;
  hc.cxConnectFail++;
  const timeout = isConnectTimeout(e);
  if (timeout) stats.upstream_cx_connect_timeout.inc();
  return {
    reason: timeout ? "timeout" : "connect-failure",
    detail: `cluster "${pool.name}": connect to ${pool.host.key} failed: ${errorText(e)}`,
  };
}
