/**
 * Hot upgrade with real processes and real sockets: a Ferry (epoch 0) serves, a second one started with
 * `--restart-epoch 1` takes its listening sockets over SCM_RIGHTS, and the first drains and exits — under wrk load
 * (HTTP/1 keep-alive through an HTTP listener to a real upstream), under TCP load (tcp_proxy to an echo server, a
 * client looping connect/send/recv), and with many idle and in-flight keep-alive connections open across the
 * upgrade. Counters carry over; a child without a parent, or at the wrong epoch, fails with one line.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { type FerryProcess, itOpts, runFerry, sleep, spawnFerry, startRawServer, startUpstream } from "./_harness.ts";
import { epollAvailable } from "../../lib/network/epoll.ts";

const ignore = !epollAvailable();
const CERTS = new URL("../../examples/certs", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

function baseId(): string {
  return String(100_000 + Math.floor(Math.random() * 800_000));
}

function hcm(prefix: string, routes: string): string {
  return `
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ${prefix}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
${routes}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }`;
}

function cluster(name: string, port: number): string {
  return `
  - name: ${name}
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: ${name}
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } } }] }]`;
}

/**
 * HTTP listener "http" (prefix ingress) to cluster "web", TCP listener "tcp" to cluster "echo", and "tls" (native TLS,
 * `Deno.listenTls`: no descriptor to hand over, so the SO_REUSEPORT fallback) answering itself; ports 0.
 */
function config(webPort: number, echoPort: number): string {
  return `
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: http
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:${
    hcm(
      "ingress",
      `              - match: { prefix: "/" }
                route: { cluster: web, timeout: 10s }`,
    )
  }
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: echo
  - name: tls
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: { filename: ${CERTS}/server_ecdsa.crt }
              private_key: { filename: ${CERTS}/server_ecdsa.key }
      filters:${
    hcm(
      "secure",
      `              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "tls ok" } }`,
    )
  }
  clusters:${cluster("web", webPort)}${cluster("echo", echoPort)}
`;
}

interface Ports {
  http: number;
  tcp: number;
  tls: number;
  admin: number;
}

async function portsOf(p: Awaited<ReturnType<typeof spawnFerry>>): Promise<Ports> {
  const [, http] = await p.waitForLog(/listener "http" accepting on 127\.0\.0\.1:(\d+)/);
  const [, tcp] = await p.waitForLog(/listener "tcp" accepting on 127\.0\.0\.1:(\d+)/);
  const [, tls] = await p.waitForLog(/listener "tls" accepting on 127\.0\.0\.1:(\d+)/);
  const [, admin] = await p.waitForLog(/admin listening on http:\/\/127\.0\.0\.1:(\d+)\//);
  return { http: Number(http), tcp: Number(tcp), tls: Number(tls), admin: Number(admin) };
}

async function statOf(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=^${name.replaceAll(".", "\\.")}$`))
    .text();
  const m = new RegExp(`^${name.replaceAll(".", "\\.")}: (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * `main.ts` run with `-A --deny-ffi` (no epoll engine, no descriptor passing): what {@link spawnFerry} gives, for the
 * parts these tests use.
 */
function spawnWithoutFfi(args: string[], options: { env?: Record<string, string> } = {}): Promise<FerryProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--deny-ffi", MAIN, ...args],
    ...(options.env ? { env: options.env } : {}),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  let exited = false;
  const pumped = (async () => {
    for await (const chunk of child.stderr) err += dec.decode(chunk, { stream: true });
  })().catch(() => {});
  const status = child.status.then((s) => (exited = true, s));
  return Promise.resolve({
    child,
    get stderr() {
      return err;
    },
    async waitForLog(pattern: RegExp | string | ((log: string) => boolean), timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const m = typeof pattern === "function"
          ? (pattern(err) ? [err] : null)
          : typeof pattern === "string"
          ? (err.includes(pattern) ? [pattern] : null)
          : pattern.exec(err);
        if (m) return [...m];
        if (exited || performance.now() > deadline) throw new Error(`ferry did not log ${pattern}: ${err}`);
        await sleep(20);
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const { code } = await status;
      await pumped;
      return { code, stdout: "", stderr: err };
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await status;
      await pumped;
    },
  });
}

/** Starts epoch 0 and epoch 1 of one base id around `during` (which runs while the upgrade happens). */
async function withUpgrade(
  file: string,
  extraArgs: string[],
  env: Record<string, string>,
  during: (parentPorts: Ports) => { started: Promise<void>; done: Promise<void> },
): Promise<
  {
    parent: Awaited<ReturnType<typeof spawnFerry>>;
    child: Awaited<ReturnType<typeof spawnFerry>>;
    ports: Ports;
    childAdmin: number;
    parentRqAtHandOver: number;
    parentCode: number;
  }
> {
  const id = baseId();
  const common = ["-c", file, "--base-id", id, "--drain-time-s", "5", ...extraArgs];
  const spawn = env["DENY_FFI"] === "1" ? spawnWithoutFfi : spawnFerry;
  const parent = await spawn([...common, "--restart-epoch", "0"], { env });
  const ports = await portsOf(parent);
  const load = during(ports);
  await load.started;
  const parentRqAtHandOver = await statOf(ports.admin, "http.ingress.downstream_rq_total");
  const child = await spawn([...common, "--restart-epoch", "1"], { env });
  try {
    await child.waitForLog("hot restart: serving", 20_000);
    const [, childAdmin] = await child.waitForLog(/admin listening on http:\/\/127\.0\.0\.1:(\d+)\//);
    const childPorts = { http: 0, tcp: 0, tls: 0 };
    childPorts.http = Number((await child.waitForLog(/listener "http" accepting on 127\.0\.0\.1:(\d+)/))[1]);
    childPorts.tcp = Number((await child.waitForLog(/listener "tcp" accepting on 127\.0\.0\.1:(\d+)/))[1]);
    childPorts.tls = Number((await child.waitForLog(/listener "tls" accepting on 127\.0\.0\.1:(\d+)/))[1]);
    assertEquals(childPorts, { http: ports.http, tcp: ports.tcp, tls: ports.tls }, "the child serves the same ports");
    const { code: parentCode } = await parent.child.status;
    await load.done;
    return { parent, child, ports, childAdmin: Number(childAdmin), parentRqAtHandOver, parentCode };
  } catch (e) {
    await child.kill();
    await parent.kill();
    throw e;
  }
}

async function writeConfig(text: string): Promise<string> {
  const f = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(f, text);
  return f;
}

function startEcho(): { port: number; close(): void } {
  return startRawServer(async (c) => {
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      await c.write(buf.subarray(0, n)).catch(() => {});
    }
    c.close();
  });
}

/**
 * wrk and a TCP client loop across an upgrade. `strict`: zero errors asserted (descriptor hand-over); otherwise
 * (the SO_REUSEPORT fallback) the errors are reported, as the fallback can lose what waits in the parent's queue.
 */
async function upgradeUnderLoad(args: string[], env: Record<string, string>, strict: boolean): Promise<void> {
  {
    const upstream = await startUpstream(() => new Response("hello from upstream\n"));
    const echo = startEcho();
    const file = await writeConfig(config(upstream.port, echo.port));
    let wrkOut = "";
    const tcp = { ok: 0, failed: [] as string[] };
    const tls = { ok: 0, failed: [] as string[] };
    const caCerts = [await Deno.readTextFile(`${CERTS}/ca_ecdsa.crt`)];
    try {
      const r = await withUpgrade(file, args, env, (ports) => {
        const wrk = new Deno.Command("wrk", {
          args: ["-t2", "-c32", "-d8s", `http://127.0.0.1:${ports.http}/`],
          stdout: "piped",
          stderr: "piped",
        }).output().then((o) => {
          wrkOut = dec.decode(o.stdout) + dec.decode(o.stderr);
        });
        const deadline = performance.now() + 8000;
        const tcpLoop = async () => {
          const payload = enc.encode("x".repeat(512));
          while (performance.now() < deadline) {
            try {
              const c = await Deno.connect({ hostname: "127.0.0.1", port: ports.tcp });
              try {
                await c.write(payload);
                const got = new Uint8Array(payload.length);
                let off = 0;
                while (off < got.length) {
                  const n = await c.read(got.subarray(off));
                  if (n === null) throw new Error(`EOF after ${off} bytes`);
                  off += n;
                }
                if (dec.decode(got) !== dec.decode(payload)) throw new Error("echo mismatch");
                tcp.ok++;
              } finally {
                c.close();
              }
            } catch (e) {
              tcp.failed.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
            }
          }
        };
        // A new TLS connection per request: the native TLS listener hands over by SO_REUSEPORT overlap.
        const tlsLoop = async () => {
          while (performance.now() < deadline) {
            try {
              const c = await Deno.connectTls({ hostname: "127.0.0.1", port: ports.tls, caCerts });
              try {
                await c.write(enc.encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
                const res = await readResponse(c);
                if (res?.body !== "tls ok") throw new Error(`TLS answer: ${res?.head}`);
                tls.ok++;
              } finally {
                c.close();
              }
            } catch (e) {
              tls.failed.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
            }
            await sleep(20);
          }
        };
        const loops = Promise.all([tcpLoop(), tcpLoop(), tcpLoop(), tcpLoop(), tlsLoop()]);
        return { started: sleep(2000), done: Promise.all([wrk, loops]).then(() => {}) };
      });
      try {
        assertEquals(r.parentCode, 0, "the old process exits cleanly after its drain");
        const requests = Number(/(\d+) requests in/.exec(wrkOut)?.[1] ?? "0");
        assert(requests > 1000, `wrk made requests: ${wrkOut}`);
        const wrkErrors = /Socket errors.*|Non-2xx.*/g.exec(wrkOut)?.[0] ?? "none";
        if (strict) {
          assert(!/Socket errors/.test(wrkOut), `wrk socket errors: ${wrkOut}`);
          assert(!/Non-2xx/.test(wrkOut), `wrk non-2xx responses: ${wrkOut}`);
          assertEquals(tcp.failed.slice(0, 5), [], `${tcp.failed.length} TCP exchanges failed of ${tcp.ok}`);
        }
        assert(tcp.ok > 100, `TCP exchanges: ${tcp.ok}`);
        assert(tls.ok > 10, `TLS requests: ${tls.ok}`);
        // Counters: the child's total holds the parent's (pulled at hand-over and until it exited) and its own.
        const childTotal = await statOf(r.childAdmin, "http.ingress.downstream_rq_total");
        assert(r.parentRqAtHandOver > 0);
        assert(
          childTotal >= requests,
          `child total ${childTotal} >= wrk's ${requests} (parent had ${r.parentRqAtHandOver})`,
        );
        assertEquals(await statOf(r.childAdmin, "server.hot_restart_epoch"), 1);
        // Two listeners, one socket per event loop of the parent: every one handed over (none with FERRY_IO=deno).
        const loops = Number(args[args.indexOf("--concurrency") + 1]);
        const sockets = env["FERRY_IO"] === "deno" || env["DENY_FFI"] === "1" ? 0 : 2 * loops;
        assertMatch(r.child.stderr, new RegExp(`took ${sockets} listening socket\\(s\\) of 3 listener`));
        const info = await (await fetch(`http://127.0.0.1:${r.childAdmin}/server_info`)).json();
        assertEquals(info.hot_restart_version, "ferry.1");
        assertEquals(await (await fetch(`http://127.0.0.1:${r.childAdmin}/hot_restart_version`)).text(), "ferry.1\n");
        console.log(
          `${args.join(" ")} ${JSON.stringify(env)}: wrk ${requests} requests, errors: ${wrkErrors}; tcp ${tcp.ok} ` +
            `exchanges, ${tcp.failed.length} failed ${tcp.failed.slice(0, 2).join("; ")}; TLS (fallback) ${tls.ok} ` +
            `requests, ${tls.failed.length} failed ${tls.failed.slice(0, 2).join("; ")}; child rq_total ${childTotal}`,
        );
      } finally {
        await r.child.stop();
      }
    } finally {
      await upstream.close();
      echo.close();
      await Deno.remove(file);
    }
  }
}

Deno.test({
  name: "hot restart under wrk (HTTP/1 keep-alive) and TCP load: no failed request, no refused connection, " +
    "the old process exits, counters carry over",
  ignore,
  ...itOpts,
  fn: () => upgradeUnderLoad(["--concurrency", "1"], {}, true),
});

Deno.test({
  name: "hot restart from and to two event loops (worker sockets handed over too): no failed request under load",
  ignore,
  ...itOpts,
  fn: () => upgradeUnderLoad(["--concurrency", "2"], {}, true),
});

Deno.test({
  name: "hot restart under load with --experimental-migrate-idle-connections: no failed request",
  ignore,
  ...itOpts,
  fn: () => upgradeUnderLoad(["--concurrency", "1", "--experimental-migrate-idle-connections"], {}, true),
});

Deno.test({
  name: "hot restart without FFI (--deny-ffi): control channel on Deno's Unix sockets, SO_REUSEPORT overlap",
  ignore,
  ...itOpts,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await upgradeUnderLoad(["--concurrency", "1", "--socket-path", `${dir}/ctl`], { DENY_FFI: "1" }, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hot restart without the epoll engine (FERRY_IO=deno) falls back to SO_REUSEPORT overlap and still hands over",
  ignore,
  ...itOpts,
  fn: () => upgradeUnderLoad(["--concurrency", "1"], { FERRY_IO: "deno" }, false),
});

/** Reads one HTTP/1.1 response with a content-length body; undefined on EOF before any byte. */
async function readResponse(c: Deno.Conn): Promise<{ head: string; body: string } | undefined> {
  let data = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const text = dec.decode(data);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? "0");
      if (data.length >= end + 4 + len) return { head: text.slice(0, end), body: text.slice(end + 4, end + 4 + len) };
    }
    const n = await c.read(buf);
    if (n === null) {
      if (data.length === 0) return undefined;
      throw new Error(`EOF inside a response: ${JSON.stringify(dec.decode(data))}`);
    }
    const next = new Uint8Array(data.length + n);
    next.set(data);
    next.set(buf.subarray(0, n), data.length);
    data = next;
  }
}

/**
 * `n` keep-alive connections (1,000 unless `ulimit -n` is too low) across an upgrade: a quarter with a request in
 * flight, the rest idle. Without `migrate` the idle ones must get a FIN from the draining parent; with it
 * (`--experimental-migrate-idle-connections`) they must stay open and be answered by the child afterwards.
 */
async function idleAcrossUpgrade(migrate: boolean): Promise<void> {
  {
    // Each connection costs a descriptor here and one in Ferry: scale down when the limit is low.
    const limit = Number(
      new TextDecoder().decode(
        (await new Deno.Command("sh", {
          args: ["-c", "ulimit -n"],
          stdout: "piped",
        }).output()).stdout,
      ).trim(),
    ) || 1024;
    let n = 1000;
    if (limit < 2 * n + 200) {
      n = Math.max(50, Math.floor((limit - 200) / 2));
      console.log(`ulimit -n is ${limit}: ${n} connections instead of 1000`);
    }
    const slow = Math.floor(n / 4);
    const upstream = await startUpstream(async (req) => {
      if (req.url.pathname === "/slow") await sleep(2500);
      return new Response("done\n");
    });
    const echo = startEcho();
    const file = await writeConfig(config(upstream.port, echo.port));
    const conns: Deno.Conn[] = [];
    const outcome = { idleFin: 0, idleAnswered: 0, slowDone: 0, errors: [] as string[] };
    try {
      const args = migrate ? ["--experimental-migrate-idle-connections"] : [];
      const r = await withUpgrade(file, args, {}, (ports) => {
        const started = (async () => {
          for (let i = 0; i < n; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port: ports.http }));
          // Every connection serves one request first (keep-alive, then idle).
          await Promise.all(conns.map(async (c) => {
            await c.write(enc.encode("GET /warm HTTP/1.1\r\nhost: x\r\n\r\n"));
            const res = await readResponse(c);
            if (!res?.head.startsWith("HTTP/1.1 200")) throw new Error(`warm-up: ${res?.head}`);
          }));
        })();
        let finish!: () => void;
        const done = new Promise<void>((res) => finish = res);
        const watched = started.then(() => {
          const all = conns.map(async (c, i) => {
            try {
              if (i < slow) {
                // In flight across the upgrade: the answer comes complete, then the connection closes.
                await c.write(enc.encode("GET /slow HTTP/1.1\r\nhost: x\r\n\r\n"));
                const res = await readResponse(c);
                if (!res || !res.head.startsWith("HTTP/1.1 200") || res.body !== "done\n") {
                  throw new Error(`slow request: ${res?.head}`);
                }
                if (!/connection: close/i.test(res.head)) throw new Error(`no connection: close: ${res.head}`);
                if ((await readResponse(c)) !== undefined) throw new Error("data after the last response");
                outcome.slowDone++;
              } else if (!migrate) {
                // Idle: closed gracefully by the draining parent (EOF, no reset).
                const res = await readResponse(c);
                if (res === undefined) outcome.idleFin++;
                else outcome.idleAnswered++;
              }
            } catch (e) {
              outcome.errors.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
            }
          });
          return Promise.all(all);
        });
        watched.then(() => finish(), () => finish());
        return { started, done };
      });
      try {
        assertEquals(r.parentCode, 0);
        assertEquals(outcome.errors.slice(0, 5), [], `${outcome.errors.length} connections failed`);
        assertEquals(outcome.slowDone, slow, "every in-flight request completed");
        if (migrate) {
          // The parent is gone: an idle connection that still answers was taken over by the child.
          await Promise.all(
            conns.slice(slow).map(async (c) => {
              try {
                await c.write(enc.encode("GET /again HTTP/1.1\r\nhost: x\r\n\r\n"));
                const res = await readResponse(c);
                if (res?.body === "done\n") outcome.idleAnswered++;
                else throw new Error(`after the upgrade: ${res?.head}`);
              } catch (e) {
                outcome.errors.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
              }
            }),
          );
          assertEquals(outcome.errors.slice(0, 5), [], `${outcome.errors.length} migrated connections failed`);
          assertEquals(outcome.idleAnswered, n - slow, "every idle connection moved to the child");
          const moved = [...r.child.stderr.matchAll(/took over (\d+) idle connection\(s\) of listener "http"/g)]
            .reduce((sum, m) => sum + Number(m[1]), 0);
          assertEquals(moved, n - slow, "the child logged every connection it took over");
        } else assertEquals(outcome.idleFin, n - slow, "every idle connection got a FIN");
        // The child serves new connections on the same port.
        const c = await Deno.connect({ hostname: "127.0.0.1", port: r.ports.http });
        await c.write(enc.encode("GET /after HTTP/1.1\r\nhost: x\r\n\r\n"));
        assertEquals((await readResponse(c))?.body, "done\n");
        c.close();
        console.log(
          `${n} connections: ${slow} in flight completed, ${n - slow} idle ${
            migrate ? "moved to the child and answered there" : "closed with FIN"
          }, 0 resets`,
        );
      } finally {
        await r.child.stop();
      }
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await upstream.close();
      echo.close();
      await Deno.remove(file);
    }
  }
}

Deno.test({
  name: "hot restart with idle and in-flight keep-alive connections open: each finishes its request or is closed " +
    "with a FIN, none is reset",
  ignore,
  ...itOpts,
  fn: () => idleAcrossUpgrade(false),
});

Deno.test({
  name: "hot restart with --experimental-migrate-idle-connections: idle keep-alive connections move to the new " +
    "process and are answered there, in-flight ones complete",
  ignore,
  ...itOpts,
  fn: () => idleAcrossUpgrade(true),
});

Deno.test({
  name: "hot restart refuses with one line: no parent, wrong epoch, epoch taken, bad flag",
  ignore,
  ...itOpts,
  async fn() {
    const upstream = await startUpstream();
    const echo = startEcho();
    const file = await writeConfig(config(upstream.port, echo.port));
    const id = baseId();
    try {
      const none = await runFerry(["-c", file, "--base-id", id, "--restart-epoch", "1"]);
      assertEquals(none.code, 1);
      const line = none.stderr.trim().split("\n").at(-1)!;
      assertMatch(line, /^ferry: --restart-epoch 1: no Ferry of epoch 0 listens on @ferry_domain_socket_\d+_0/);
      const parent = await spawnFerry(["-c", file, "--base-id", id, "--restart-epoch", "0"]);
      try {
        const ports = await portsOf(parent);
        const skip = await runFerry(["-c", file, "--base-id", id, "--restart-epoch", "2"]);
        assertEquals(skip.code, 1);
        assertMatch(skip.stderr, /--restart-epoch 2: no Ferry of epoch 1 listens/);
        const same = await runFerry(["-c", file, "--base-id", id, "--restart-epoch", "0"]);
        assertEquals(same.code, 1);
        assertMatch(same.stderr, /another Ferry with --base-id \d+ runs epoch 0 .* --restart-epoch 1/);
        const bad = await runFerry(["-c", file, "--base-id", id, "--restart-epoch", "one"]);
        assertEquals(bad.code, 2);
        assertMatch(bad.stderr, /--restart-epoch must be a whole number/);
        // The running one was not disturbed.
        const res = await fetch(`http://127.0.0.1:${ports.http}/`);
        assertEquals(res.status, 200);
        await res.body?.cancel();
        assertEquals(await statOf(ports.admin, "server.hot_restart_epoch"), 0);
      } finally {
        await parent.stop();
      }
    } finally {
      await upstream.close();
      echo.close();
      await Deno.remove(file);
    }
  },
});
