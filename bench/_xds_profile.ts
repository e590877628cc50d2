/**
 * A CPU profiler for a Deno process started with `--inspect=127.0.0.1:<port>`, over the inspector's Chrome DevTools
 * protocol (`Profiler.start` / `Profiler.stop`), and a summary of the profile: self and inclusive time per function,
 * and self time per file. Used by `_xds_scale.ts --profile` to say where Ferry's time goes during a push.
 *
 * @module
 */

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** A `Profiler.Profile` of the DevTools protocol. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A connection to one inspector target. */
export class Inspector {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error.message));
      else p.resolve(m.result);
    };
  }

  /** Connects to the first target listed at `http://127.0.0.1:<port>/json/list` (retries for `timeoutMs`). */
  static async connect(port: number, timeoutMs = 30_000): Promise<Inspector> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
          webSocketDebuggerUrl: string;
        }[];
        const url = list[0]?.webSocketDebuggerUrl;
        if (url) {
          const ws = new WebSocket(url);
          await new Promise<void>((resolve, reject) => {
            ws.onopen = () => resolve();
            ws.onerror = () => reject(new Error(`inspector: cannot open ${url}`));
          });
          return new Inspector(ws);
        }
      } catch (e) {
        if (performance.now() > deadline) throw e;
      }
      if (performance.now() > deadline) throw new Error(`inspector on :${port}: no target`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Sends one protocol command and waits for its result (60 s at most). */
  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`inspector: ${method} timed out`));
      }, 60_000);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Starts sampling every `intervalUs` microseconds. */
  async start(intervalUs = 200): Promise<void> {
    await this.send("Profiler.enable");
    await this.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.send("Profiler.start");
  }

  /** Stops sampling and returns the profile. */
  async stop(): Promise<CpuProfile> {
    return ((await this.send("Profiler.stop")) as { profile: CpuProfile }).profile;
  }

  close(): void {
    try {
      this.#ws.close();
    } catch { /* closed */ }
  }
}

/** `root`-relative file of a script URL (`lib/upstream/config.ts`), or the URL's last parts for dependencies. */
function fileOf(url: string, root: string): string {
  if (url === "") return "(native)";
  const u = url.startsWith(root) ? url.slice(root.length) : url;
  const npm = /node_modules\/(?:\.deno\/)?([^/]+)(?:@[^/]+)?\/.*?([^/]+)$/.exec(u);
  if (npm) return `npm:${npm[1]}/${npm[2]}`;
  return u.replace(/^file:\/\//, "");
}

/**
 * A text summary of a profile: total sampled ms, then the `top` functions by self time, by inclusive time (each
 * function counted once per stack), and files by self time.
 */
export function summarize(profile: CpuProfile, root: string, top = 20): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the time before sample i; the sample's own duration is the next delta.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${fileOf(n.callFrame.url, root)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    total += us;
    const name = n.callFrame.functionName;
    if (name === "(idle)" || name === "(program)") idle += us;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    const f = fileOf(n.callFrame.url, root);
    files.set(f, (files.get(f) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const ms = (us: number) => (us / 1000).toFixed(0).padStart(7);
  const list = (m: Map<string, number>, filter: (k: string) => boolean = () => true) =>
    [...m].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) =>
      `${ms(us)} ms ${(us / Math.max(1, total - idle) * 100).toFixed(1).padStart(5)}%  ${k}`
    ).join("\n");
  return [
    `sampled ${(total / 1000).toFixed(0)} ms, of which idle/program ${(idle / 1000).toFixed(0)} ms ` +
    `(percentages of the busy time)`,
    `-- self time by function`,
    list(self),
    `-- inclusive time by function (JavaScript frames, skipping the root)`,
    list(incl, (k) => !k.startsWith("(root)") && !k.startsWith("(program)") && !k.startsWith("(idle)")),
    `-- self time by file`,
    list(files),
  ].join("\n");
}
