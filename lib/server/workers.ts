/**
 * Worker threads for `--concurrency N`: the main thread serves too and holds the admin API and the one xDS stream;
 * N−1 workers each run the same listeners (SO_REUSEPORT spreads connections across them) with their own clusters
 * and pools, as Envoy's workers do. The admin API merges their stats.
 *
 * Dynamic config reaches the workers as the raw Envoy JSON the main thread applied ({@link WorkerConfigOp}),
 * posted in the order the main thread applied it; each worker applies config messages one at a time, in arrival
 * order, with the same `Server` methods, so a cluster is in place before the endpoints and listeners that need it.
 *
 * @module
 */
import { getLogger } from "../observe/log.ts";
import type { StatsSnapshot } from "../observe/stats.ts";
import type { RuntimeState } from "../runtime/mod.ts";

const log = getLogger("main");

/** Requests the main thread sends a worker. */
export type WorkerRequest =
  | { type: "start"; raw: unknown; drainTimeMs: number; logLevel: string }
  | { type: "stats"; id: number }
  | { type: "log"; level: string }
  | { type: "log-component"; component: string; level: string }
  | { type: "reset-counters"; id: number }
  | { type: "log-levels"; id: number }
  | { type: "drain"; ms: number; id: number }
  | { type: "stop-accepting"; graceful: boolean }
  | { type: "listener-update"; raw: unknown; path: string; id: number }
  | { type: "listener-remove"; name: string; id: number }
  | { type: "runtime"; state: RuntimeState }
  | { type: "config"; json: string; id: number }
  | { type: "listener-fds"; id: number };

/**
 * One dynamic config change the main thread applied (from xDS), as the raw Envoy JSON it applied, for a worker to
 * apply the same way. `path` is the field path errors name.
 * - `cluster`: add or update a cluster from an Envoy `Cluster` (secret references resolve against the worker's
 *   secrets, which SDS changes keep equal to the main thread's).
 * - `cluster-remove`: remove a cluster.
 * - `hosts`: replace a cluster's hosts from a `ClusterLoadAssignment`; `raw: null` leaves it without hosts.
 * - `route`: replace a route configuration (for every connection manager that names it; none is not an error,
 *   the listener that needs it may come next).
 * - `secret`: add or replace a secret from an Envoy `Secret`.
 */
export type WorkerConfigOp =
  | { kind: "cluster"; name: string; raw: unknown; path: string }
  | { kind: "cluster-remove"; name: string }
  | { kind: "hosts"; cluster: string; raw: unknown }
  | { kind: "route"; name: string; raw: unknown; path: string }
  | { kind: "secret"; name: string; raw: unknown; path: string };

/** The listening sockets of one listener in one isolate (for a hot upgrade handing sockets over). */
export interface ListenerFd {
  readonly listener: string;
  readonly address: string;
  /**
   * Its file descriptors (its own, then any inherited beside it: `Listener.fds`); empty where the socket engine does
   * not expose them (`Deno.listen`, `Deno.listenTls`).
   */
  readonly fds: number[];
}

type WorkerReply =
  | { type: "started" }
  | { type: "error"; message: string }
  | { type: "stats"; id: number; snap: StatsSnapshot | undefined }
  | { type: "drained"; id: number }
  | { type: "counters-reset"; id: number }
  | { type: "log-levels"; id: number; levels: Record<string, string> }
  | { type: "listener-done"; id: number; error?: string }
  | { type: "config-done"; id: number; error?: string }
  | { type: "listener-fds"; id: number; fds: ListenerFd[] };

/** What a config change did on one worker: `worker` counts from 1; `error` unset when it applied. */
export interface WorkerConfigResult {
  readonly worker: number;
  readonly error?: string;
}

/** The worker threads of one process. */
export class WorkerSet {
  readonly #workers: Worker[];
  #nextId = 1;
  #waiting = new Map<number, (r: WorkerReply) => void>();

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    // Handlers through a local: see tests/gc_hygiene_test.ts.
    const onMessage = (e: MessageEvent<WorkerReply>) => {
      const r = e.data;
      if (r.type !== "started" && r.type !== "error") {
        const cb = this.#waiting.get(r.id);
        this.#waiting.delete(r.id);
        cb?.(r);
      }
    };
    for (const w of workers) w.onmessage = onMessage;
  }

  /** Starts `n` workers with the raw bootstrap; rejects with the first worker's start-up error. */
  static async start(n: number, raw: unknown, options: { drainTimeMs: number; logLevel: string }): Promise<WorkerSet> {
    // Started side by side: each parses the bootstrap and binds on its own thread (at 64 cores, one after another
    // would take 64 start-ups).
    const workers: Worker[] = [];
    const started: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./worker_main.ts", import.meta.url), {
        type: "module",
        name: `ferry-worker-${i + 1}`,
      });
      workers.push(w);
      started.push(
        new Promise<void>((resolve, reject) => {
          const onMessage = (e: MessageEvent<WorkerReply>) => {
            if (e.data.type === "started") resolve();
            else if (e.data.type === "error") reject(new Error(`worker ${i + 1}: ${e.data.message}`));
          };
          const onError = (e: ErrorEvent) => {
            e.preventDefault();
            reject(new Error(`worker ${i + 1}: ${e.message}`));
          };
          w.onmessage = onMessage;
          w.onerror = onError;
          w.postMessage({ type: "start", raw, ...options } satisfies WorkerRequest);
        }),
      );
    }
    const outcomes = await Promise.allSettled(started);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed) {
      for (const w of workers) w.terminate();
      throw failed.reason;
    }
    workers.forEach((w, i) => {
      const onError = (e: ErrorEvent) => {
        // As an uncaught error on the main thread does (and as Envoy does when a worker crashes), it ends the
        // process: a dead worker's SO_REUSEPORT sockets would otherwise keep taking its share of new connections
        // into accept queues nobody reads. Not prevented, so Deno propagates it.
        log.error(`worker ${i + 1}: uncaught error: ${e.message}`);
      };
      w.onerror = onError;
    });
    return new WorkerSet(workers);
  }

  get size(): number {
    return this.#workers.length;
  }

  #ask(w: Worker, msg: (id: number) => WorkerRequest, timeoutMs: number): Promise<WorkerReply | undefined> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      w.postMessage(msg(id));
    });
  }

  /** Every worker's stats snapshot (a worker that does not answer within 2 s is left out). */
  async snapshots(): Promise<StatsSnapshot[]> {
    const replies = await Promise.all(this.#workers.map((w) => this.#ask(w, (id) => ({ type: "stats", id }), 2000)));
    const out: StatsSnapshot[] = [];
    for (const r of replies) if (r?.type === "stats" && r.snap) out.push(r.snap);
    return out;
  }

  /** The main thread's runtime admin layer and health-check state, after `/runtime_modify` or `/healthcheck/*`. */
  setRuntimeState(state: RuntimeState): void {
    for (const w of this.#workers) w.postMessage({ type: "runtime", state } satisfies WorkerRequest);
  }

  setLogLevel(level: string): void {
    for (const w of this.#workers) w.postMessage({ type: "log", level } satisfies WorkerRequest);
  }

  /** `POST /logging?<component>=<level>` on every worker (the main thread sets its own). */
  setComponentLogLevel(component: string, level: string): void {
    for (const w of this.#workers) {
      w.postMessage({ type: "log-component", component, level } satisfies WorkerRequest);
    }
  }

  /**
   * `POST /reset_counters` on every worker (the main thread resets its own store). Resolves once each worker has
   * reset its counters, so that stats read afterwards start from zero (a worker silent for 2 s is not waited for).
   */
  async resetCounters(): Promise<void> {
    await Promise.all(this.#workers.map((w) => this.#ask(w, (id) => ({ type: "reset-counters", id }), 2000)));
  }

  /** Each worker's component log levels, in worker order (a worker silent for 2 s is left out). */
  async logLevels(): Promise<Record<string, string>[]> {
    const replies = await Promise.all(
      this.#workers.map((w) => this.#ask(w, (id) => ({ type: "log-levels", id }), 2000)),
    );
    const out: Record<string, string>[] = [];
    for (const r of replies) if (r?.type === "log-levels") out.push(r.levels);
    return out;
  }

  /**
   * Applies a runtime listener add or update (the raw Envoy `Listener`) on every worker, after the main thread
   * applied it; resolves with each worker's outcome (a worker silent for 10 s is reported as failed). Never rejects.
   * `path` is the config path the main thread parsed it at: the workers parse it at the same one, so that what a
   * context derives from its path (its default TLS 1.3 ticket key, its TLCP session-sharing name) is the same in
   * every event loop and differs between listeners.
   */
  addOrUpdateListener(raw: unknown, path: string): Promise<WorkerConfigResult[]> {
    return this.#applyListenerChange((id) => ({ type: "listener-update", raw, path, id }));
  }

  /**
   * Applies one dynamic config change on every worker. The message is posted to each worker before this returns,
   * so changes reach the workers in the order of the calls; the promise resolves when every worker answered (or
   * `timeoutMs` passed: reported as an error of that worker). Never rejects: failures are in the results.
   */
  applyConfig(op: WorkerConfigOp, timeoutMs = 10_000): Promise<WorkerConfigResult[]> {
    // Serialized once, posted as a string: the structured clone of a 10,000-route table costs the main thread
    // ~50 ms per worker, JSON.stringify ~10 ms once and the string copy ~1 ms per worker (measured on the 2-core VM).
    const json = JSON.stringify(op);
    return Promise.all(this.#workers.map(async (w, i): Promise<WorkerConfigResult> => {
      const r = await this.#ask(w, (id) => ({ type: "config", json, id }), timeoutMs);
      if (r?.type !== "config-done") return { worker: i + 1, error: `no answer within ${timeoutMs} ms` };
      return r.error === undefined ? { worker: i + 1 } : { worker: i + 1, error: r.error };
    }));
  }

  /**
   * Every worker's listening sockets, in worker order (a worker silent for 2 s gives an empty list): with the
   * main thread's, what a hot upgrade hands over, N sockets per listener.
   */
  async listenerFds(): Promise<ListenerFd[][]> {
    const replies = await Promise.all(
      this.#workers.map((w) => this.#ask(w, (id) => ({ type: "listener-fds", id }), 2000)),
    );
    return replies.map((r) => r?.type === "listener-fds" ? r.fds : []);
  }

  /** Removes a runtime listener on every worker; resolves with each worker's outcome. Never rejects. */
  removeListener(name: string): Promise<WorkerConfigResult[]> {
    return this.#applyListenerChange((id) => ({ type: "listener-remove", name, id }));
  }

  #applyListenerChange(msg: (id: number) => WorkerRequest): Promise<WorkerConfigResult[]> {
    return Promise.all(this.#workers.map(async (w, i): Promise<WorkerConfigResult> => {
      const r = await this.#ask(w, msg, 10_000);
      if (r?.type !== "listener-done") return { worker: i + 1, error: "no answer to a listener change within 10 s" };
      return r.error === undefined ? { worker: i + 1 } : { worker: i + 1, error: r.error };
    }));
  }

  stopAccepting(graceful: boolean): void {
    for (const w of this.#workers) w.postMessage({ type: "stop-accepting", graceful } satisfies WorkerRequest);
  }

  /** Drains every worker (up to `ms`), then terminates them. */
  async drainAndStop(ms: number): Promise<void> {
    await Promise.all(this.#workers.map((w) => this.#ask(w, (id) => ({ type: "drain", ms, id }), ms + 5000)));
    for (const w of this.#workers) w.terminate();
  }
}

const LISTENER_PER_WORKER = /^listener\.(.+)\.(downstream_cx_total|downstream_cx_active)$/;

/**
 * Adds Envoy's per-worker listener stats to each event loop's snapshot (index 0 the main thread, then the workers
 * in order): `listener.<prefix>.worker_<i>.downstream_cx_total` and `..._active`, so that the merged stats still show
 * how the kernel spread connections over the loops. Modifies and returns the snapshots.
 */
export function addPerWorkerListenerStats(snapshots: StatsSnapshot[]): StatsSnapshot[] {
  snapshots.forEach((snap, i) => {
    for (const [name, v] of Object.entries(snap.counters)) {
      const m = LISTENER_PER_WORKER.exec(name);
      if (m) snap.counters[`listener.${m[1]}.worker_${i}.${m[2]}`] = v;
    }
    for (const [name, g] of Object.entries(snap.gauges)) {
      const m = LISTENER_PER_WORKER.exec(name);
      if (m) snap.gauges[`listener.${m[1]}.worker_${i}.${m[2]}`] = { ...g };
    }
  });
  return snapshots;
}
