/**
 * Starts the test xDS control plane (`control_plane.ts`) as its own process and drives its control API.
 *
 * ```ts
 * await using cp = await startControlPlane({ snapshot: { version: "v1", resources: { cds: [...] } } });
 * // point Ferry's ADS cluster at 127.0.0.1:${cp.grpcPort}
 * await cp.setSnapshot({ version: "v2", resources: { cds: [...] } });
 * assertEquals(await cp.waitAcked("cds", "v2"), { acked: "v2" });
 * ```
 *
 * @module
 */
import type { ControlPlaneState, SnapshotInput } from "./control_plane.ts";

export type { ControlPlaneState, SnapshotInput };

/** TLS files of the gRPC listener; with `ca`, clients must present a certificate it signed (mTLS). */
export interface ControlPlaneTls {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** gRPC port (0 = any free port). */
  readonly port?: number;
  /** Control API port (0 = any free port). */
  readonly adminPort?: number;
  readonly tls?: ControlPlaneTls;
  /** The snapshot to serve from the start (before any client can connect). */
  readonly snapshot?: SnapshotInput;
  /** Or a file holding it (JSON, or YAML when named `.yaml`/`.yml`); `snapshot` wins when both are given. */
  readonly snapshotFile?: string;
  /** How long to wait for the process to be ready, in ms (default 30 s). */
  readonly startTimeoutMs?: number;
}

/** The outcome of {@link ControlPlane.waitAcked}. */
export type WaitResult = { readonly acked: string } | { readonly nacked: string };

/** A running control plane process. */
export interface ControlPlane {
  /** The gRPC (ADS) port on 127.0.0.1; stays the same across {@link restart}. */
  readonly grpcPort: number;
  /** The control API port on 127.0.0.1; stays the same across {@link restart}. */
  readonly adminPort: number;
  /** `PUT /snapshot`: replaces the snapshot and pushes it; rejects with the server's one-line error. */
  setSnapshot(snapshot: SnapshotInput): Promise<void>;
  /** `GET /state`. */
  state(): Promise<ControlPlaneState>;
  /**
   * `POST /wait`: resolves once a stream ACKs `version` of `type` (`lds`... or a type URL), or with `{nacked}` if
   * it is NACKed; rejects after `timeoutMs` (default 10 s) with the current state in the message.
   */
  waitAcked(type: string, version: string, opts?: { readonly node?: string; readonly timeoutMs?: number }): Promise<
    WaitResult
  >;
  /** `POST /disconnect`: ends every open stream with UNAVAILABLE; returns how many there were. */
  disconnect(): Promise<number>;
  /** SIGTERM, then waits for the exit (SIGKILL after 5 s). Idempotent. */
  kill(): Promise<void>;
  /**
   * Kills the process and starts a new one on the same ports, serving the last snapshot set (or `snapshot`).
   * Its state (versions sent, ACKs, nodes) starts empty. A client that reconnects already holding the current
   * version (SotW `version_info`, delta `initial_resource_versions`) gets no response, so it sends no new ACK:
   * wait for a version set after the restart, or read `state().streams`.
   */
  restart(opts?: { readonly snapshot?: SnapshotInput }): Promise<void>;
  /** The process's stderr so far (its log), for failure messages. */
  log(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

const SCRIPT = new URL("./control_plane.ts", import.meta.url);

interface Proc {
  readonly child: Deno.ChildProcess;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly done: Promise<void>;
}

/** Starts `control_plane.ts` in its own Deno process and waits until it is ready. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const dir = await Deno.makeTempDir({ prefix: "ferry-xds-cp-" });
  let snapshot = opts.snapshot;
  let logText = "";
  let proc: Proc | undefined;
  let killed = false;

  const spawn = async (port: number, adminPort: number): Promise<Proc> => {
    const args = ["run", "-A", SCRIPT.pathname, "--port", String(port), "--admin-port", String(adminPort)];
    if (opts.tls) {
      args.push("--tls-cert", opts.tls.cert, "--tls-key", opts.tls.key);
      if (opts.tls.ca !== undefined) args.push("--tls-ca", opts.tls.ca);
    }
    if (snapshot !== undefined) {
      const file = `${dir}/snapshot.json`;
      await Deno.writeTextFile(file, JSON.stringify(snapshot));
      args.push("--snapshot", file);
    } else if (opts.snapshotFile !== undefined) {
      args.push("--snapshot", opts.snapshotFile);
    }
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: new URL("../../", import.meta.url).pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderrDone = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        logText += dec.decode(chunk, { stream: true });
        if (logText.length > 200_000) logText = logText.slice(-100_000);
      }
    })();
    const reader = child.stdout.getReader();
    const dec = new TextDecoder();
    let out = "";
    let ready: { grpc_port: number; admin_port: number } | undefined;
    const timeoutMs = opts.startTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, timeoutMs);
    try {
      while (!ready) {
        const { value, done } = await reader.read();
        if (done) break;
        out += dec.decode(value, { stream: true });
        const nl = out.indexOf("\n");
        if (nl >= 0) ready = JSON.parse(out.slice(0, nl));
      }
    } finally {
      clearTimeout(timer);
    }
    // Nothing else is printed on stdout; keep draining it so that the pipe never fills.
    const stdoutDone = (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch { /* closed */ }
    })();
    if (!ready) {
      await child.status;
      await Promise.allSettled([stderrDone, stdoutDone]);
      throw new Error(`control plane did not start: ${logText.trim().split("\n").slice(-5).join(" | ")}`);
    }
    const done = Promise.all([child.status, stderrDone, stdoutDone]).then(() => {});
    return { child, grpcPort: ready.grpc_port, adminPort: ready.admin_port, done };
  };

  const stop = async (): Promise<void> => {
    const p = proc;
    if (!p) return;
    proc = undefined;
    try {
      p.child.kill("SIGTERM");
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5_000);
    await p.done;
    clearTimeout(timer);
  };

  proc = await spawn(opts.port ?? 0, opts.adminPort ?? 0);
  const grpcPort = proc.grpcPort;
  const adminPort = proc.adminPort;

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    if (!proc) throw new Error("control plane is not running");
    const init: RequestInit = { method };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, init);
    const text = await res.text();
    return { status: res.status, json: text === "" ? null : JSON.parse(text) };
  };

  const cp: ControlPlane = {
    grpcPort,
    adminPort,
    async setSnapshot(s) {
      const r = await call("PUT", "/snapshot", s);
      if (r.status !== 200) throw new Error((r.json as { error?: string } | null)?.error ?? `status ${r.status}`);
      snapshot = s;
    },
    async state() {
      return (await call("GET", "/state")).json as ControlPlaneState;
    },
    async waitAcked(type, version, o = {}) {
      const q = new URLSearchParams({ type, acked: version, timeout_ms: String(o.timeoutMs ?? 10_000) });
      if (o.node !== undefined) q.set("node", o.node);
      const r = await call("POST", `/wait?${q}`);
      if (r.status === 200) return r.json as WaitResult;
      const st = await cp.state().catch(() => undefined);
      const t = st?.types[type] ?? Object.values(st?.types ?? {}).find((x) => x.type_url === type);
      throw new Error(
        `control plane: ${type} version ${JSON.stringify(version)} was not ACKed (${JSON.stringify(r.json)}); ` +
          `sent ${JSON.stringify(t?.versions_sent)}, acked ${JSON.stringify(t?.acked_versions)}, ` +
          `streams ${st?.connected_streams}`,
      );
    },
    async disconnect() {
      return ((await call("POST", "/disconnect")).json as { closed: number }).closed;
    },
    async kill() {
      killed = true;
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    async restart(o = {}) {
      if (killed) throw new Error("control plane was killed");
      if (o.snapshot !== undefined) snapshot = o.snapshot;
      await stop();
      // The old process's sockets are gone once it exited; a few retries cover a slow port release.
      for (let attempt = 1;; attempt++) {
        try {
          proc = await spawn(grpcPort, adminPort);
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    },
    log: () => logText,
    [Symbol.asyncDispose]: () => cp.kill(),
  };
  return cp;
}
