/**
 * The sofa-rpc-node Bolt peers of `tests/integration/rpc/` (installed by `.ci/run`, or here with `npm ci`), run
 * with `node` for the Bolt tests: providers (`provider.mjs`) and a load-generating consumer (`consumer.mjs`).
 *
 * @module
 */
import { freePort } from "../fakes/ports.ts";
import { spawnNodePeer } from "./rpc_peers.ts";

const PEERS = new URL("../integration/rpc/", import.meta.url).pathname;

/** Installs the node peers once (`npm ci`), as `.ci/run` does on a clean machine. */
export async function ensureBoltPeers(): Promise<void> {
  try {
    Deno.statSync(`${PEERS}node_modules/sofa-rpc-node`);
    return;
  } catch {
    // not installed yet
  }
  const r = await new Deno.Command("npm", {
    args: ["ci", "--no-fund", "--no-audit", "--loglevel=error"],
    cwd: PEERS,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`npm ci in ${PEERS} failed: ${new TextDecoder().decode(r.stderr)}`);
}

/** A running Bolt provider. */
export interface BoltProvider {
  readonly port: number;
  /** SIGKILLs it and waits for it to exit; later calls do nothing. */
  kill(): Promise<void>;
}

/**
 * Starts `provider.mjs` (installing the peers first if needed) on a free port serving `services`
 * (`iface:version,...`); each answers echo(x) with `<name>:<x>` and slow(ms, x) after ms milliseconds.
 */
export async function startBoltProvider(name: string, services: string): Promise<BoltProvider> {
  await ensureBoltPeers();
  const port = freePort();
  const peer = await spawnNodePeer([`${PEERS}provider.mjs`, String(port), name, services], {
    ready: /ready/,
    what: `provider ${name}`,
  });
  return { port, kill: () => peer.kill() };
}

/** What `consumer.mjs` reports: answers matched to their callers, errors and which provider answered. */
export interface BoltCallResult {
  ok: number;
  mismatched: number;
  errors: number;
  byProvider: Record<string, number>;
  messages: string[];
  ms: number;
}

/** Options of `boltCalls`: the service (`com.ferry.Echo` 1.0 `echo` by default), the load, the client timeout. */
export interface BoltCallOptions {
  iface?: string;
  version?: string;
  method?: string;
  count: number;
  concurrency: number;
  /** The client's responseTimeout; 3000 ms by default. */
  timeoutMs?: number;
  arg?: string;
}

/** Runs `consumer.mjs` against 127.0.0.1:`port` to completion (bounded by a 60 s kill). */
export async function boltCalls(port: number, opts: BoltCallOptions): Promise<BoltCallResult> {
  const args = [
    `${PEERS}consumer.mjs`,
    `127.0.0.1:${port}`,
    opts.iface ?? "com.ferry.Echo",
    opts.version ?? "1.0",
    opts.method ?? "echo",
    String(opts.count),
    String(opts.concurrency),
    String(opts.timeoutMs ?? 3000),
    ...(opts.arg !== undefined ? [opts.arg] : []),
  ];
  const child = new Deno.Command("node", { args, stdout: "piped", stderr: "inherit" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!text) throw new Error(`consumer produced nothing (exit ${out.code})`);
  return JSON.parse(text.split("\n").pop()!) as BoltCallResult;
}
