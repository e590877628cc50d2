/**
 * Worker threads for `--concurrency N`: the main thread serves too and holds the admin API; N−1 workers each
 * run the same listeners (SO_REUSEPORT spreads connections across them) with their own clusters and pools, as
 * Envoy's workers do. The admin API merges their stats.
 *
 * @module
 */
import type { StatsSnapshot } from "../observe/stats.ts";
import type { RuntimeState } from "../runtime/mod.ts";

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
  | { type: "listener-update"; raw: unknown; id: number }
  | { type: "listener-remove"; name: string; id: number }
  | { type: "runtime"; state: RuntimeState };

type WorkerReply =
  | { type: "started" }
  | { type: "error"; message: string }
  | { type: "stats"; id: number; snap: StatsSnapshot | undefined }
  | { type: "drained"; id: number }
  | { type: "counters-reset"; id: number }
  | { type: "log-levels"; id: number; levels: Record<string, string> }
  | { type: "listener-done"; id: number; error?: string };

/** The worker threads of one process. */
export class WorkerSet {
  readonly #workers: Worker[];
  #nextId = 1;
  #waiting = new Map<number, (r: WorkerReply) => void>();

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    for (const w of workers) {
      w.onmessage = (e: MessageEvent<WorkerReply>) => {
        const r = e.data;
        if (r.type !== "started" && r.type !== "error") {
          const cb = this.#waiting.get(r.id);
          this.#waiting.delete(r.id);
          cb?.(r);
        }
      };
    }
  }

  /** Starts `n` workers with the raw bootstrap; rejects with the first worker's start-up error. */
  static async start(n: number, raw: unknown, options: { drainTimeMs: number; logLevel: string }): Promise<WorkerSet> {
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const w = new Worker(new URL("./worker_main.ts", import.meta.url), {
          type: "module",
          name: `ferry-worker-${i + 1}`,
        });
        workers.push(w);
        await new Promise<void>((resolve, reject) => {
          w.onmessage = (e: MessageEvent<WorkerReply>) => {
            if (e.data.type === "started") resolve();
            else if (e.data.type === "error") reject(new Error(`worker ${i + 1}: ${e.data.message}`));
          };
          w.onerror = (e) => {
            e.preventDefault();
            reject(new Error(`worker ${i + 1}: ${e.message}`));
          };
          w.postMessage({ type: "start", raw, ...options } satisfies WorkerRequest);
        });
      }
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
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
   * applied it. Rejects naming the first worker that failed or did not answer within 10 s.
   */
  async addOrUpdateListener(raw: unknown): Promise<void> {
    await this.#applyListenerChange((id) => ({ type: "listener-update", raw, id }));
  }

  /** Removes a runtime listener on every worker; rejects naming the first worker that failed. */
  async removeListener(name: string): Promise<void> {
    await this.#applyListenerChange((id) => ({ type: "listener-remove", name, id }));
  }

  async #applyListenerChange(msg: (id: number) => WorkerRequest): Promise<void> {
    const replies = await Promise.all(this.#workers.map((w) => this.#ask(w, msg, 10_000)));
    replies.forEach((r, i) => {
      if (r?.type !== "listener-done") throw new Error(`worker ${i + 1}: no answer to a listener change`);
      if (r.error !== undefined) throw new Error(`worker ${i + 1}: ${r.error}`);
    });
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
