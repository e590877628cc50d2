/**
 * Cooperative slicing for long control-plane work: a 10,000-cluster update applied in one piece held the event loop
 * for seconds (bench/xds.sh: data-path requests stalled 1.4–4 s). Loops call {@link Slicer.tick} per item; once the
 * slice's budget is spent it yields a macrotask turn, so the epoll engine, timers and admin run in between.
 *
 * @module
 */

/**
 * Yields to the event loop (a macrotask turn, so I/O and timers run). `setTimeout(0)`, not `setImmediate`: measured
 * here, a loop yielding with `setImmediate` every 4 ms let 4 socket round trips through in 2 s (Deno's ops were not
 * polled), with `setTimeout(0)` 12,500 (worst 10 ms).
 */
function yieldTurn(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Hands the event loop back every `budgetMs` of work; see the module doc. */
export class Slicer {
  readonly budgetMs: number;
  #start = performance.now();

  constructor(budgetMs = 4) {
    this.budgetMs = budgetMs;
  }

  /** Resolves at once while the slice lasts; after it, yields a turn first and starts a new slice. */
  tick(): Promise<void> | undefined {
    if (performance.now() - this.#start < this.budgetMs) return undefined;
    return yieldTurn().then(() => {
      this.#start = performance.now();
    });
  }
}
