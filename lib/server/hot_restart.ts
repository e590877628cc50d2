/**
 * Hot upgrade, in the spirit of Envoy's hot restart and MOSN's listener hand-over: a new Ferry started with
 * `--restart-epoch N` takes the listening sockets of the running one (epoch N−1) and serves them while the old one
 * drains and exits, so that no connection is refused and none waiting in an accept queue is lost.
 *
 * **The exchange.** Every Ferry with hot restart on (`--restart-epoch`, `--base-id` or `--socket-path` given)
 * listens on a Unix control socket named `<socket-path>_<base-id>_<epoch>` (default `@ferry_domain_socket`, an
 * abstract name). The new process (the child) connects to its parent's and asks, in order:
 * 1. `hello`: versions and epochs must match (else a one-line error, and the parent is untouched);
 * 2. `listeners`: the parent's listening sockets, each listener's (its main thread's and its worker threads'),
 *    sent as descriptors with `SCM_RIGHTS` (`lib/network/_fd_passing.ts`). A child listener with the same name and
 *    configured address adopts them into the epoll engine instead of binding
 *    ({@link ListenerManager.inheritedSocket}); listeners the parent does not have are bound fresh;
 * 3. `shutdown-admin`: the parent closes its admin API so the child can bind it (as Envoy's `ShutdownAdmin`), and
 *    answers with the time the first epoch started (`uptime_all_epochs`);
 * 4. once the child serves: `stats` (the parent's counters, which the child adds to its own, so `/stats` does not
 *    start again from 0) and `drain`: the parent stops accepting — it closes its copies of the listening
 *    descriptors, which leaves the sockets open through the child's — and drains (below);
 * 5. while the parent drains, `stats` again every second (the child adds what the parent counted since), and the
 *    parent's final counts just before it exits; `terminate` at `--parent-shutdown-time-s`.
 *
 * **The parent's drain** (`--drain-strategy`): `gradual` (default) — at once, HTTP responses carry
 * `connection: close` (keep-alive clients reconnect, to the child) and TCP connections go on; after
 * {@link GRADUAL_IDLE_MS} (or the drain time if shorter), HTTP/1 connections still idle are closed and HTTP/2 ones get
 * GOAWAY (Server's drain); `immediate` — that at once. The parent exits when its last connection ends, after
 * `--drain-time-s` at most (then closing what is left), and at `--parent-shutdown-time-s` whatever happens.
 *
 * **Fallback.** A listener on `Deno.listenTls` (the native TLS fast path) has no descriptor to pass; neither has
 * any listener of a parent without the epoll engine (`FERRY_IO=deno`, or no FFI). Such a child listener binds the
 * parent's port beside it with SO_REUSEPORT, and the parent then stops accepting: a connection that sits in the
 * parent's accept queue at that moment is lost (reset), which the descriptor hand-over never does. Without FFI the
 * control channel itself runs on Deno's Unix sockets (same framing, no descriptors), on a file system
 * `--socket-path` only (Deno has no abstract names).
 *
 * **Experimental: idle connection migration** (`--experimental-migrate-idle-connections`, MOSN's connection
 * migration): the child asks for it with `drain`; when the parent would close its idle HTTP/1 connections, it
 * detaches them instead ({@link Listener.detachConnections}) and pushes their descriptors (`connections`); the child
 * serves each as just accepted ({@link Listener.adoptConnection}).
 *
 * Not done: a `SIGUSR2` / admin trigger (the new process is started by the operator with the next epoch).
 *
 * @module
 */
import type { NetConnection, NetworkFilter } from "../api/network.ts";
import type { ListenerConfig } from "../config/bootstrap.ts";
import { getLogger } from "../observe/log.ts";
import {
  closeFd,
  connectFdChannel,
  FdChannel,
  type FdMessage,
  fdPassingAvailable,
  FdServer,
  MAX_FDS_PER_MESSAGE,
} from "../network/_fd_passing.ts";
import type { InheritedSocket } from "./listener_manager.ts";
import type { Server } from "./server.ts";

const log = getLogger("main");

/** The protocol version: two Ferrys hand over only when theirs are equal (`/hot_restart_version`). */
export const HOT_RESTART_VERSION = "ferry.1";
/** Default `--socket-path`: an abstract Unix socket name (Envoy's is `@envoy_domain_socket`). */
export const DEFAULT_SOCKET_PATH = "@ferry_domain_socket";
/** With `--drain-strategy gradual`, how long idle HTTP/1 connections may still send one more request. */
export const GRADUAL_IDLE_MS = 1000;
/** How often a child pulls the draining parent's counters. */
export const STATS_PULL_MS = 1000;

/** `--drain-strategy`. */
export type DrainStrategy = "gradual" | "immediate";

/** The hot-restart settings from the command line. */
export interface HotRestartOptions {
  /** `--restart-epoch` (0: the first process). */
  readonly epoch: number;
  /** `--base-id`: tells apart Ferrys on one host (default 0). */
  readonly baseId: number;
  /** `--socket-path` (`@name`: abstract). */
  readonly socketPath: string;
  /** `--drain-time-s` in ms. */
  readonly drainTimeMs: number;
  /** `--parent-shutdown-time-s` in ms. */
  readonly parentShutdownTimeMs: number;
  readonly drainStrategy: DrainStrategy;
  /**
   * `--experimental-migrate-idle-connections` (the child asks): the parent hands its idle HTTP/1 keep-alive
   * connections over instead of closing them.
   */
  readonly migrateIdle?: boolean;
}

/** A hot-restart failure an operator sees as one line (`ferry: --restart-epoch 1: ...`). */
export class HotRestartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HotRestartError";
  }
}

/** The control socket name of `epoch`. */
export function controlSocketName(socketPath: string, baseId: number, epoch: number): string {
  return `${socketPath}_${baseId}_${epoch}`;
}

/** One listener as the parent describes it; `fds` index the descriptors of the message. */
interface ListenerEntry {
  name: string;
  address: string;
  /** The configured port (0: chosen at bind). */
  port: number;
  /** The port bound. */
  boundPort: number;
  fds: number[];
}

type RequestBody =
  | { type: "hello"; version: string; epoch: number }
  | { type: "listeners" }
  | { type: "shutdown-admin" }
  | { type: "stats" }
  | { type: "drain"; migrate?: boolean }
  | { type: "terminate" };
type Request = RequestBody & { id: number };

type Reply =
  | { id: number; type: "hello"; version: string; epoch: number; pid: number }
  | { id: number; type: "listeners"; listeners: ListenerEntry[] }
  | { id: number; type: "admin-closed"; originalStartTime: number }
  | { id: number; type: "stats"; counters: Record<string, number>; connections: number; final?: boolean }
  | { id: number; type: "ok" }
  | { id: number; type: "connections"; listener: string }
  | { id: number; type: "error"; message: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Per-worker listener stats are recomputed by each process from its own event loops: not carried over. */
const NOT_CARRIED = /\.worker_\d+\./;

function encode(m: Request | Reply): Uint8Array {
  return enc.encode(JSON.stringify(m));
}

/**
 * The child's side: the connection to the parent, the sockets it sent, and the hand-over. Made by
 * {@link ParentConnection.connect} before the server starts; see the module doc for the order of calls.
 */
export class ParentConnection {
  readonly #ch: ControlChannel;
  readonly #opts: HotRestartOptions;
  readonly #name: string;
  #nextId = 1;
  readonly #waiting = new Map<number, (r: Reply) => void>();
  #entries: ListenerEntry[] = [];
  #fds: number[] = [];
  readonly #taken = new Set<number>();
  readonly #used = new Set<ListenerEntry>();
  /** Counter values of the parent already added here. */
  readonly #seen = new Map<string, number>();
  #server: Server | undefined;
  #pullTimer: ReturnType<typeof setInterval> | undefined;
  #terminateTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** The parent's pid (from `hello`). */
  parentPid = 0;
  /** When the first epoch started (ms since the epoch), from the parent. */
  originalStartTime: number | undefined;
  /** Resolves when the parent has gone (its control connection closed). */
  readonly parentGone: Promise<void>;
  #resolveGone!: () => void;

  private constructor(ch: ControlChannel, opts: HotRestartOptions, name: string) {
    this.#ch = ch;
    this.#opts = opts;
    this.#name = name;
    this.parentGone = new Promise((r) => this.#resolveGone = r);
    void this.#readLoop();
  }

  /**
   * Connects to the parent (epoch − 1), checks versions and epochs, and receives its listening sockets. Throws a
   * {@link HotRestartError} with one line for the operator when there is no parent or it does not match.
   */
  static async connect(opts: HotRestartOptions): Promise<ParentConnection> {
    const flag = `--restart-epoch ${opts.epoch}`;
    const name = controlSocketName(opts.socketPath, opts.baseId, opts.epoch - 1);
    let ch: ControlChannel;
    try {
      ch = await connectControl(name);
    } catch (e) {
      if (e instanceof HotRestartError) throw new HotRestartError(`${flag}: ${e.message}`);
      throw new HotRestartError(
        `${flag}: no Ferry of epoch ${opts.epoch - 1} listens on ${name} (is the running one on another ` +
          `--base-id, or at another epoch?): ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
    const p = new ParentConnection(ch, opts, name);
    try {
      const hello = await p.#ask({ type: "hello", version: HOT_RESTART_VERSION, epoch: opts.epoch });
      if (hello.type !== "hello") throw new HotRestartError(`${flag}: the parent refused: ${describeReply(hello)}`);
      p.parentPid = hello.pid;
      const r = await p.#askWithFds({ type: "listeners" });
      if (r.reply.type !== "listeners") throw new HotRestartError(`${flag}: ${describeReply(r.reply)}`);
      p.#entries = r.reply.listeners;
      p.#fds = r.fds;
    } catch (e) {
      p.close();
      if (e instanceof HotRestartError) throw e;
      throw new HotRestartError(`${flag}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    log.info(
      `hot restart: epoch ${opts.epoch} took ${p.#fds.length} listening socket(s) of ${p.#entries.length} ` +
        `listener(s) from pid ${p.parentPid} over ${name}`,
    );
    return p;
  }

  /** The parent's sockets for `config` (same name and configured address), for {@link ListenerManager}. */
  socketFor(config: ListenerConfig): InheritedSocket | undefined {
    const e = this.#entries.find((x) =>
      x.name === config.name && x.address === config.address.address && x.port === config.address.port
    );
    // Each entry once: a listener removed and added again while initializing binds fresh.
    if (e === undefined || this.#used.has(e)) return undefined;
    this.#used.add(e);
    const fds = e.fds.map((i) => this.#fds[i]).filter((fd): fd is number => fd !== undefined);
    return {
      fds,
      port: e.boundPort,
      taken: (took) => {
        for (const fd of took) this.#taken.add(fd);
      },
    };
  }

  /** Closes the received descriptors no listener took (listeners the child does not have, or TLS fallbacks). */
  closeUnused(): void {
    for (const fd of this.#fds) if (!this.#taken.has(fd)) closeFd(fd);
    this.#fds = [];
  }

  /** Asks the parent to close its admin API (before this process binds its own). */
  async shutdownParentAdmin(): Promise<void> {
    const r = await this.#ask({ type: "shutdown-admin" });
    if (r.type === "admin-closed") this.originalStartTime = r.originalStartTime;
  }

  /**
   * The hand-over, once this process serves: adds the parent's counters, tells it to drain, then keeps adding
   * what it counts until it exits, and tells it to terminate at the parent shutdown time.
   */
  async handOver(server: Server): Promise<void> {
    this.#server = server;
    server.hotRestartVersion = HOT_RESTART_VERSION;
    if (this.originalStartTime !== undefined) server.originalStartTime = this.originalStartTime;
    server.stats.gauge("server.hot_restart_epoch").set(this.#opts.epoch);
    server.stats.gauge("server.hot_restart_generation").set(this.#opts.epoch + 1);
    await this.#pullStats();
    const r = await this.#ask({ type: "drain", migrate: this.#opts.migrateIdle === true });
    if (r.type !== "ok") throw new HotRestartError(`--restart-epoch ${this.#opts.epoch}: ${describeReply(r)}`);
    log.info(`hot restart: serving; the parent (pid ${this.#parentDesc()}) drains`);
    this.#pullTimer = setInterval(() => void this.#pullStats().catch(() => {}), STATS_PULL_MS);
    this.#terminateTimer = setTimeout(() => {
      log.info(`hot restart: parent shutdown time reached: terminating pid ${this.parentPid}`);
      void this.#ask({ type: "terminate" }).catch(() => {});
    }, this.#opts.parentShutdownTimeMs);
  }

  /** Serves connections the parent detached (`--experimental-migrate-idle-connections`). */
  #adoptConnections(listener: string, fds: number[]): void {
    const l = this.#server?.listenerManager.get(listener);
    let n = 0;
    for (const fd of fds) {
      if (l?.adoptConnection(fd)) n++;
      else closeFd(fd);
    }
    log.info(`hot restart: took over ${n} idle connection(s) of listener "${listener}" from the parent`);
  }

  #parentDesc(): string {
    return `${this.parentPid}, epoch ${this.#opts.epoch - 1}`;
  }

  async #pullStats(): Promise<void> {
    if (this.#closed) return;
    const r = await this.#ask({ type: "stats" });
    if (r.type === "stats") this.#addStats(r.counters, r.connections);
  }

  /** Adds the parent's counters counted since the last pull (Envoy's counter import). */
  #addStats(counters: Record<string, number>, connections: number): void {
    const s = this.#server;
    if (!s) return;
    for (const [name, v] of Object.entries(counters)) {
      const delta = v - (this.#seen.get(name) ?? 0);
      this.#seen.set(name, v);
      if (delta > 0) s.stats.counter(name).inc(delta);
    }
    s.stats.gauge("server.parent_connections").set(connections);
  }

  #ask(req: RequestBody): Promise<Reply> {
    return this.#askWithFds(req).then((r) => r.reply);
  }

  #askWithFds(req: RequestBody): Promise<{ reply: Reply; fds: number[] }> {
    if (this.#closed) return Promise.reject(new Error(`the parent's control socket ${this.#name} is closed`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (reply) => {
        const fds = (reply as { fds?: number[] }).fds ?? [];
        delete (reply as { fds?: number[] }).fds;
        if (reply.type === "error" && reply.message === "\0closed") {
          reject(new Error(`the parent closed its control socket ${this.#name}`));
        } else resolve({ reply, fds });
      });
      this.#ch.send(encode({ ...req, id } as Request)).catch((e) => {
        this.#waiting.delete(id);
        reject(e);
      });
    });
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const m = await this.#ch.recv();
        if (m === undefined) break;
        const reply = JSON.parse(dec.decode(m.payload)) as Reply;
        if (reply.type === "connections") {
          this.#adoptConnections(reply.listener, m.fds);
          continue;
        }
        if (reply.type === "stats" && reply.final) {
          // The parent's last counts, sent just before it exits.
          this.#addStats(reply.counters, 0);
          for (const fd of m.fds) closeFd(fd);
          continue;
        }
        const cb = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        if (cb) cb(Object.assign(reply, { fds: m.fds }));
        else for (const fd of m.fds) closeFd(fd);
      }
    } catch (e) {
      log.warn(`hot restart: control connection: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const cb of this.#waiting.values()) cb({ id: 0, type: "error", message: "\0closed" });
    this.#waiting.clear();
    this.close();
  }

  /** Stops pulling stats and closes the connection (when the parent has gone, or this process stops). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pullTimer);
    clearTimeout(this.#terminateTimer);
    this.#ch.close();
    this.#server?.stats.gauge("server.parent_connections").set(0);
    if (this.#server) log.info(`hot restart: the parent (pid ${this.#parentDesc()}) has gone`);
    this.#resolveGone();
  }
}

/**
 * An idle HTTP/1 keep-alive connection of the HTTP connection manager (plain TCP, no request in progress or begun,
 * nothing buffered): what `--experimental-migrate-idle-connections` moves. Read through the manager's public fields.
 */
function idleHttp1(conn: NetConnection, filters: readonly NetworkFilter[]): boolean {
  const last = filters[filters.length - 1] as {
    activeStreams?: unknown;
    codec?: { idle?: unknown; multiplexed?: unknown; keepAlive?: unknown };
  } | undefined;
  const c = last?.codec;
  return !conn.secure && last?.activeStreams === 0 && c?.idle === true && c.multiplexed === false &&
    c.keepAlive === true;
}

function describeReply(r: Reply): string {
  return r.type === "error" ? r.message : `unexpected answer "${r.type}"`;
}

/** Options of {@link HotRestartServer.listen}. */
export interface HotRestartServerOptions {
  /** Ends this process now (`--parent-shutdown-time-s`, or a child's `terminate`). */
  readonly exit: () => void;
}

/**
 * The parent's side: listens on this epoch's control socket and answers a child's requests (see the module doc).
 * Made by {@link HotRestartServer.listen} once the server runs; {@link HotRestartServer.close} before exiting.
 */
export class HotRestartServer {
  readonly #fdServer: ControlServer;
  readonly #server: Server;
  readonly #opts: HotRestartOptions;
  readonly #exit: () => void;
  readonly #children = new Set<ControlChannel>();
  #draining = false;
  #closed = false;
  #shutdownTimer: ReturnType<typeof setTimeout> | undefined;
  #gradualTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(fdServer: ControlServer, server: Server, opts: HotRestartOptions, exit: () => void) {
    this.#fdServer = fdServer;
    this.#server = server;
    this.#opts = opts;
    this.#exit = exit;
  }

  /**
   * Binds this epoch's control socket. Throws a {@link HotRestartError} if it is taken (another Ferry runs this
   * epoch with this base id) or hot restart cannot run here.
   */
  static async bind(opts: HotRestartOptions): Promise<ControlServer> {
    const flag = `--restart-epoch ${opts.epoch}`;
    const name = controlSocketName(opts.socketPath, opts.baseId, opts.epoch);
    try {
      return await listenControl(name);
    } catch (e) {
      const taken = (e as { code?: number }).code === 98 || e instanceof Deno.errors.AddrInUse;
      if (e instanceof HotRestartError) throw new HotRestartError(`${flag}: ${e.message}`);
      throw new HotRestartError(
        taken
          ? `${flag}: another Ferry with --base-id ${opts.baseId} runs epoch ${opts.epoch} (${name} is taken): ` +
            `start this one with --restart-epoch ${opts.epoch + 1} to take over from it, or use another --base-id`
          : `${flag}: cannot listen on ${name}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  }

  /** Serves children on `fdServer` (from {@link HotRestartServer.bind}) for `server`. */
  static listen(
    fdServer: ControlServer,
    server: Server,
    opts: HotRestartOptions,
    options: HotRestartServerOptions,
  ): HotRestartServer {
    const h = new HotRestartServer(fdServer, server, opts, options.exit);
    server.hotRestartVersion = HOT_RESTART_VERSION;
    server.stats.gauge("server.hot_restart_epoch").set(opts.epoch);
    server.stats.gauge("server.hot_restart_generation").set(opts.epoch + 1);
    void h.#acceptLoop();
    return h;
  }

  /** True once a child asked this process to drain. */
  get draining(): boolean {
    return this.#draining;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let ch: ControlChannel | undefined;
      try {
        ch = await this.#fdServer.accept();
      } catch (e) {
        log.warn(`hot restart: accept: ${e instanceof Error ? e.message : String(e)}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (ch === undefined) return;
      this.#children.add(ch);
      void this.#serve(ch).finally(() => {
        this.#children.delete(ch);
        ch.close();
      });
    }
  }

  async #serve(ch: ControlChannel): Promise<void> {
    let adminClosed = false;
    try {
      for (;;) {
        const m = await ch.recv();
        if (m === undefined) break;
        for (const fd of m.fds) closeFd(fd);
        const req = JSON.parse(dec.decode(m.payload)) as Request;
        if (req.type === "shutdown-admin") adminClosed = true;
        await this.#handle(ch, req);
      }
    } catch (e) {
      log.warn(`hot restart: a child's request failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (adminClosed && !this.#draining && !this.#closed) {
      // The new process went away before taking over: this one keeps serving, with its admin API back.
      log.warn("hot restart: the new epoch left before taking over; this process keeps serving");
      await this.#server.reopenAdmin().catch((e) => log.error(`hot restart: admin API: ${e.message ?? e}`));
    }
  }

  async #handle(ch: ControlChannel, req: Request): Promise<void> {
    const id = req.id;
    const s = this.#server;
    switch (req.type) {
      case "hello": {
        const mine = this.#opts.epoch;
        if (req.version !== HOT_RESTART_VERSION) {
          return void await ch.send(encode({
            id,
            type: "error",
            message: `hot restart version mismatch: the running Ferry (epoch ${mine}) speaks ${HOT_RESTART_VERSION}, ` +
              `the new one ${req.version}`,
          }));
        }
        if (req.epoch !== mine + 1) {
          return void await ch.send(encode({
            id,
            type: "error",
            message: `epoch mismatch: the running Ferry is epoch ${mine}, so the new one must be ${mine + 1}, not ` +
              `${req.epoch}`,
          }));
        }
        log.info(`hot restart: epoch ${req.epoch} connected`);
        return void await ch.send(
          encode({ id, type: "hello", version: HOT_RESTART_VERSION, epoch: mine, pid: Deno.pid }),
        );
      }
      case "listeners": {
        const fds: number[] = [];
        const perIsolate = await s.listenerFds();
        const listeners: ListenerEntry[] = s.listeners.map((l) => {
          const own = l.fds;
          // The main thread's sockets (its own, and any it inherited), then each worker thread's.
          const all = [...own];
          for (const iso of perIsolate.slice(1)) {
            for (const x of iso) {
              if (x.listener !== l.config.name) continue;
              // Each isolate's descriptors (`fds`; `fd`, -1 for none, in older builds of the worker protocol).
              const y = x as { fds?: readonly number[]; fd?: number };
              for (const fd of y.fds ?? (y.fd !== undefined && y.fd >= 0 ? [y.fd] : [])) {
                if (!all.includes(fd)) all.push(fd);
              }
            }
          }
          const idx = all.slice(0, MAX_FDS_PER_MESSAGE - fds.length).map((fd) => fds.push(fd) - 1);
          return {
            name: l.config.name,
            address: l.config.address.address,
            port: l.config.address.port,
            boundPort: l.port,
            fds: idx,
          };
        });
        return void await ch.send(encode({ id, type: "listeners", listeners }), fds);
      }
      case "shutdown-admin": {
        const admin = s.admin;
        s.admin = undefined;
        await admin?.close();
        if (admin) log.info("hot restart: admin API closed for the new epoch");
        return void await ch.send(encode({ id, type: "admin-closed", originalStartTime: s.originalStartTime }));
      }
      case "stats":
        return void await ch.send(encode({ id, type: "stats", ...await this.#counters() }));
      case "drain":
        await ch.send(encode({ id, type: "ok" }));
        this.#drain(req.migrate === true ? ch : undefined);
        return;
      case "terminate":
        await ch.send(encode({ id, type: "ok" }));
        log.info("hot restart: terminated by the new epoch");
        await this.#finalStats();
        this.#exit();
        return;
    }
  }

  async #counters(): Promise<{ counters: Record<string, number>; connections: number }> {
    const snap = await this.#server.statsSnapshot();
    const counters: Record<string, number> = {};
    for (const [name, v] of Object.entries(snap.counters)) if (!NOT_CARRIED.test(name)) counters[name] = v;
    return { counters, connections: this.#server.listenerManager.connections };
  }

  /** Stops accepting (the sockets live on in the child) and drains; see the module doc. */
  #drain(migrateTo: ControlChannel | undefined): void {
    if (this.#draining) return;
    this.#draining = true;
    const s = this.#server;
    const { drainTimeMs, parentShutdownTimeMs, drainStrategy } = this.#opts;
    log.info(
      `hot restart: the new epoch serves; draining (${drainStrategy}) for up to ${Math.round(drainTimeMs / 1000)} s`,
    );
    s.stopAccepting(false);
    const started = performance.now();
    const full = async () => {
      if (migrateTo) await this.#migrate(migrateTo).catch((e) => log.warn(`hot restart: migration: ${e.message ?? e}`));
      void s.drainAndStop(Math.max(0, drainTimeMs - (performance.now() - started)));
    };
    if (drainStrategy === "immediate") void full();
    else this.#gradualTimer = setTimeout(full, Math.min(GRADUAL_IDLE_MS, drainTimeMs));
    this.#shutdownTimer = setTimeout(async () => {
      log.info("hot restart: parent shutdown time reached: exiting");
      await this.#finalStats();
      this.#exit();
    }, parentShutdownTimeMs);
  }

  /**
   * Detaches this thread's idle HTTP/1 keep-alive connections and sends them to the child, which serves them as if
   * just accepted: their next request goes to the child, and no FIN is sent. Worker threads' connections are not
   * moved (they drain as usual).
   */
  async #migrate(ch: ControlChannel): Promise<void> {
    // Without descriptor passing (no FFI here), nothing can move: the connections drain as usual.
    if (!(ch instanceof FdChannel)) return;
    let total = 0;
    for (const l of this.#server.listeners) {
      const fds = l.detachConnections(idleHttp1);
      try {
        for (let i = 0; i < fds.length; i += MAX_FDS_PER_MESSAGE) {
          const part = fds.slice(i, i + MAX_FDS_PER_MESSAGE);
          await ch.send(encode({ id: 0, type: "connections", listener: l.config.name }), part);
        }
      } finally {
        // Sent (the message holds its own references) or not: this process's copies go, without a FIN.
        for (const fd of fds) closeFd(fd);
      }
      total += fds.length;
    }
    log.info(`hot restart: handed ${total} idle connection(s) to the new epoch`);
  }

  /** Sends the child this process's final counts (before exiting). */
  async #finalStats(): Promise<void> {
    if (this.#children.size === 0) return;
    const c = await this.#counters().catch(() => undefined);
    if (!c) return;
    await Promise.all(
      [...this.#children].map((ch) =>
        ch.send(encode({ id: 0, type: "stats", ...c, connections: 0, final: true })).catch(() => {})
      ),
    );
  }

  /** Sends the final counts to a connected child and closes the control socket (the process is about to exit). */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#finalStats();
    this.#closed = true;
    clearTimeout(this.#shutdownTimer);
    clearTimeout(this.#gradualTimer);
    this.#fdServer.close();
    for (const ch of this.#children) ch.close();
  }
}

/** Parses the hot-restart flags; undefined when hot restart is off, a message for a bad value. */
export function parseHotRestartFlags(
  values: Record<string, unknown>,
  drainTimeMs: number,
): HotRestartOptions | undefined | string {
  const num = (flag: string, max: number): number | string | undefined => {
    const v = values[flag];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) > max) {
      return `ferry: --${flag} must be a whole number from 0 to ${max}, not "${String(v)}"`;
    }
    return Number(v);
  };
  const epoch = num("restart-epoch", 1_000_000);
  const baseId = num("base-id", 1_000_000);
  if (typeof epoch === "string") return epoch;
  if (typeof baseId === "string") return baseId;
  const socketPath = values["socket-path"];
  if (socketPath !== undefined && (typeof socketPath !== "string" || socketPath === "" || socketPath === "@")) {
    return `ferry: --socket-path must be a path or an @abstract name, not "${String(socketPath)}"`;
  }
  let parentShutdownTimeMs = 900_000;
  const pst = values["parent-shutdown-time-s"];
  if (pst !== undefined) {
    const n = Number(pst);
    if (typeof pst !== "string" || pst === "" || !Number.isFinite(n) || n < 0) {
      return `ferry: --parent-shutdown-time-s must be a number of seconds, not "${String(pst)}"`;
    }
    parentShutdownTimeMs = n * 1000;
  }
  const ds = values["drain-strategy"] ?? "gradual";
  if (ds !== "gradual" && ds !== "immediate") {
    return `ferry: --drain-strategy must be gradual or immediate, not "${String(ds)}"`;
  }
  // Off unless asked for: two Ferrys on one host would otherwise fight over one control socket name.
  if (epoch === undefined && baseId === undefined && socketPath === undefined) return undefined;
  return {
    epoch: epoch ?? 0,
    baseId: baseId ?? 0,
    socketPath: socketPath ?? DEFAULT_SOCKET_PATH,
    drainTimeMs,
    parentShutdownTimeMs,
    drainStrategy: ds,
    ...values["experimental-migrate-idle-connections"] === true ? { migrateIdle: true } : {},
  };
}

/**
 * One process's hot restart, for the command line: {@link HotRestart.prepare} before the server starts (connect to
 * the parent, take its sockets, bind this epoch's control socket), {@link HotRestart.serverOptions} for
 * `Server.start`, {@link HotRestart.started} once it serves (hand-over, then serve the next epoch),
 * {@link HotRestart.close} before exiting, {@link HotRestart.abort} if the start failed.
 */
export class HotRestart {
  readonly options: HotRestartOptions;
  readonly parent: ParentConnection | undefined;
  readonly #fdServer: ControlServer;
  #server: HotRestartServer | undefined;

  private constructor(options: HotRestartOptions, parent: ParentConnection | undefined, fdServer: ControlServer) {
    this.options = options;
    this.parent = parent;
    this.#fdServer = fdServer;
  }

  /** Throws a {@link HotRestartError} (one line) if there is no matching parent or this epoch is taken. */
  static async prepare(options: HotRestartOptions): Promise<HotRestart> {
    const parent = options.epoch > 0 ? await ParentConnection.connect(options) : undefined;
    let fdServer: ControlServer;
    try {
      fdServer = await HotRestartServer.bind(options);
    } catch (e) {
      parent?.closeUnused();
      parent?.close();
      throw e;
    }
    return new HotRestart(options, parent, fdServer);
  }

  /** What `Server.start` takes: the inherited sockets and the parent's admin shut-down. */
  serverOptions(): {
    inheritedSocket?: (config: ListenerConfig) => InheritedSocket | undefined;
    beforeAdmin?: () => Promise<void>;
  } {
    const p = this.parent;
    if (!p) return {};
    return {
      inheritedSocket: (c) => p.socketFor(c),
      beforeAdmin: () => p.shutdownParentAdmin(),
    };
  }

  /** The server runs: hand over from the parent, then answer the next epoch. `exit` ends this process. */
  async started(server: Server, exit: () => void): Promise<void> {
    // As Envoy: the parent drains only once this process is initialized (with xDS, its first listeners are in, and
    // those the parent has took its sockets).
    if (this.parent) await server.initialized;
    server.listenerManager.inheritedSocket = undefined;
    this.parent?.closeUnused();
    this.#server = HotRestartServer.listen(this.#fdServer, server, this.options, { exit });
    await this.parent?.handOver(server);
  }

  /** The start failed: give back nothing (the parent keeps serving; its admin API stays closed if it was). */
  abort(): void {
    this.parent?.closeUnused();
    this.parent?.close();
    this.#fdServer.close();
  }

  /** Before exiting: the final counts to a child, and the control sockets closed. */
  async close(): Promise<void> {
    this.parent?.close();
    if (this.#server) await this.#server.close();
    else this.#fdServer.close();
  }
}

/** One end of a control connection: {@link FdChannel} with FFI, else {@link DenoChannel} (no descriptors). */
interface ControlChannel {
  send(payload: Uint8Array, fds?: readonly number[]): Promise<void>;
  recv(): Promise<FdMessage | undefined>;
  close(): void;
}

/** A listening control socket: {@link FdServer} with FFI, else one on `Deno.listen` (a file system path only). */
interface ControlServer {
  accept(): Promise<ControlChannel | undefined>;
  close(): void;
}

function noFfiPath(name: string): string {
  if (name.startsWith("@")) {
    throw new HotRestartError(
      `without FFI (--allow-ffi) hot restart cannot use the abstract socket ${name}: give --socket-path a file ` +
        "system path (and the listeners are handed over by SO_REUSEPORT overlap)",
    );
  }
  return name;
}

async function listenControl(name: string): Promise<ControlServer> {
  if (fdPassingAvailable()) return FdServer.listen(name);
  const path = noFfiPath(name);
  let l: Deno.UnixListener;
  try {
    l = Deno.listen({ transport: "unix", path });
  } catch (e) {
    if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    // A path left by a process that is gone: replace it only if no one answers on it.
    const alive = await Deno.connect({ transport: "unix", path }).then((c) => (c.close(), true), () => false);
    if (alive) throw e;
    await Deno.remove(path);
    l = Deno.listen({ transport: "unix", path });
  }
  let closed = false;
  return {
    async accept() {
      try {
        return closed ? undefined : new DenoChannel(await l.accept());
      } catch (e) {
        if (closed || e instanceof Deno.errors.BadResource) return undefined;
        throw e;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      l.close();
      try {
        Deno.removeSync(path);
      } catch { /* gone */ }
    },
  };
}

async function connectControl(name: string): Promise<ControlChannel> {
  if (fdPassingAvailable()) return connectFdChannel(name);
  return new DenoChannel(await Deno.connect({ transport: "unix", path: noFfiPath(name) }));
}

/** The control framing of `_fd_passing.ts` (`u32 length | u32 descriptor count | payload`) on a Deno Unix socket. */
class DenoChannel implements ControlChannel {
  readonly #conn: Deno.UnixConn;
  #in = new Uint8Array(0);
  #closed = false;

  constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  async send(payload: Uint8Array): Promise<void> {
    const frame = new Uint8Array(8 + payload.length);
    new DataView(frame.buffer).setUint32(0, payload.length, true);
    frame.set(payload, 8);
    let off = 0;
    while (off < frame.length) off += await this.#conn.write(frame.subarray(off));
  }

  async recv(): Promise<FdMessage | undefined> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      if (this.#in.length >= 8) {
        const v = new DataView(this.#in.buffer, this.#in.byteOffset, this.#in.length);
        const len = v.getUint32(0, true);
        if (this.#in.length >= 8 + len) {
          const payload = this.#in.slice(8, 8 + len);
          this.#in = this.#in.subarray(8 + len);
          // Descriptors the peer attached are dropped by the kernel: this side cannot receive them.
          return { payload, fds: [] };
        }
      }
      if (this.#closed) return undefined;
      const n = await this.#conn.read(buf).catch(() => null);
      if (n === null) return undefined;
      const next = new Uint8Array(this.#in.length + n);
      next.set(this.#in);
      next.set(buf.subarray(0, n), this.#in.length);
      this.#in = next;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
