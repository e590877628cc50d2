/**
 * Node peer processes for the RPC proxy tests (`tests/integration/bolt_test.ts`, `dubbo_test.ts`): a peer is
 * spawned, awaited until its stdout says it listens, drained from then on so it never blocks on a full pipe, and
 * killed at the end.
 */

/** A running peer process. */
export interface NodePeer {
  readonly child: Deno.ChildProcess;
  /** The match of `SpawnPeerOptions.ready` in what the peer printed first. */
  readonly ready: RegExpExecArray;
  /** SIGKILLs the peer and waits for it to exit; later calls do nothing. */
  kill(): Promise<void>;
}

/** Options of `spawnNodePeer`. */
export interface SpawnPeerOptions {
  /** What the peer prints on stdout once it listens. */
  readonly ready: RegExp;
  /** The peer's name in errors, e.g. `provider p1`. */
  readonly what: string;
  /** The node binary; `node` on PATH by default. */
  readonly node?: string;
  readonly cwd?: string;
  /** Both default to Deno's default for a spawned child (`inherit`). */
  readonly stdin?: "null" | "inherit";
  readonly stderr?: "null" | "inherit";
}

/** Spawns `node <args>` and resolves once its stdout matches `opts.ready` (at most 15 s, else throws). */
export async function spawnNodePeer(args: string[], opts: SpawnPeerOptions): Promise<NodePeer> {
  const child = new Deno.Command(opts.node ?? "node", {
    args,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    stdin: opts.stdin ?? "inherit",
    stdout: "piped",
    stderr: opts.stderr ?? "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 15_000;
  let ready: RegExpExecArray | null;
  while (!(ready = opts.ready.exec(seen))) {
    if (Date.now() > deadline) throw new Error(`${opts.what} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${opts.what} exited: ${seen}`);
    seen += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  let killed = false;
  return {
    child,
    ready,
    async kill() {
      if (killed) return;
      killed = true;
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}
