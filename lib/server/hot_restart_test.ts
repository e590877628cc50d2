/**
 * Hot restart in one process: the flags, and a hand-over between two servers over a real control socket (the
 * second adopts the first's listening socket, carries its counters, and the first drains and stops).
 */
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { parseBootstrap } from "../config/bootstrap.ts";
import { epollAvailable } from "../network/epoll.ts";
import { fdPassingAvailable } from "../network/_fd_passing.ts";
import { setLogLevel } from "../observe/log.ts";
import {
  controlSocketName,
  DEFAULT_SOCKET_PATH,
  HOT_RESTART_VERSION,
  HotRestart,
  HotRestartError,
  type HotRestartOptions,
  parseHotRestartFlags,
} from "./hot_restart.ts";
import { createRegistries } from "./registries.ts";
import { Server } from "./server.ts";

setLogLevel("warn");

Deno.test("parseHotRestartFlags is off without hot-restart flags and reads Envoy's flags", () => {
  assertEquals(parseHotRestartFlags({}, 600_000), undefined);
  assertEquals(parseHotRestartFlags({ "restart-epoch": "2", "drain-strategy": "immediate" }, 5000), {
    epoch: 2,
    baseId: 0,
    socketPath: DEFAULT_SOCKET_PATH,
    drainTimeMs: 5000,
    parentShutdownTimeMs: 900_000,
    drainStrategy: "immediate",
  });
  assertEquals(
    parseHotRestartFlags({ "base-id": "7", "socket-path": "/run/f", "parent-shutdown-time-s": "1.5" }, 1),
    {
      epoch: 0,
      baseId: 7,
      socketPath: "/run/f",
      drainTimeMs: 1,
      parentShutdownTimeMs: 1500,
      drainStrategy: "gradual",
    },
  );
  assertEquals(controlSocketName("@x", 7, 3), "@x_7_3");
});

Deno.test("parseHotRestartFlags names the flag of a bad value", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ "restart-epoch": "-1" }, /^ferry: --restart-epoch must be a whole number/],
    [{ "restart-epoch": "1x" }, /^ferry: --restart-epoch must be a whole number/],
    [{ "base-id": "abc" }, /^ferry: --base-id must be a whole number/],
    [{ "socket-path": "@" }, /^ferry: --socket-path must be a path or an @abstract name/],
    [{ "parent-shutdown-time-s": "soon" }, /^ferry: --parent-shutdown-time-s must be a number of seconds/],
    [{ "drain-strategy": "slow" }, /^ferry: --drain-strategy must be gradual or immediate/],
  ];
  for (const [values, re] of cases) {
    const r = parseHotRestartFlags(values, 1000);
    assert(typeof r === "string", JSON.stringify(values));
    assertMatch(r, re);
  }
});

const CONFIG = {
  static_resources: {
    listeners: [{
      name: "web",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      filter_chains: [{
        filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "web",
            route_config: {
              virtual_hosts: [{
                name: "all",
                domains: ["*"],
                routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "hi" } } }],
              }],
            },
            http_filters: [{
              name: "envoy.filters.http.router",
              typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
            }],
          },
        }],
      }],
    }],
  },
};

function options(epoch: number, baseId: number): HotRestartOptions {
  return {
    epoch,
    baseId,
    socketPath: `@ferry_hr_unit_${Deno.pid}`,
    drainTimeMs: 2000,
    parentShutdownTimeMs: 10_000,
    drainStrategy: "immediate",
  };
}

async function get(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/`);
  return await r.text();
}

Deno.test({
  name: "HotRestart hands a listening socket and counters to the next epoch; the old server drains and stops",
  ignore: !fdPassingAvailable() || !epollAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const registries = createRegistries();
    const baseId = Math.floor(Math.random() * 1e6);
    const hot0 = await HotRestart.prepare(options(0, baseId));
    const a = await Server.start(parseBootstrap(CONFIG, registries), registries, { drainTimeMs: 2000 });
    let exited0 = false;
    await hot0.started(a, () => exited0 = true);
    const port = a.listener("web")!.port;
    for (let i = 0; i < 5; i++) assertEquals(await get(port), "hi");
    assertEquals(a.stats.gauge("server.hot_restart_epoch").value, 0);

    // The same epoch again is taken; a skipped epoch has no parent.
    await assertRejects(() => HotRestart.prepare(options(0, baseId)), HotRestartError, "runs epoch 0");
    await assertRejects(() => HotRestart.prepare(options(2, baseId)), HotRestartError, "no Ferry of epoch 1");

    const hot1 = await HotRestart.prepare(options(1, baseId));
    assert(hot1.parent !== undefined);
    const b = await Server.start(parseBootstrap(CONFIG, registries), registries, {
      drainTimeMs: 2000,
      ...hot1.serverOptions(),
    });
    assertEquals(b.listener("web")!.port, port, "port 0 in both configs: the child serves the parent's port");
    assertEquals(b.listener("web")!.fds.length, 1);
    await hot1.started(b, () => {});
    await a.exited;
    assertEquals(a.state, "DRAINING");
    assert(!exited0, "the parent stopped by draining, not by the shutdown timer");
    await hot0.close();
    await hot1.parent.parentGone;
    for (let i = 0; i < 3; i++) assertEquals(await get(port), "hi");
    assertEquals(b.stats.counter("http.web.downstream_rq_total").value, 8, "5 counted by the parent, 3 here");
    assertEquals(b.stats.gauge("server.hot_restart_epoch").value, 1);
    assertEquals(b.hotRestartVersion, HOT_RESTART_VERSION);
    await hot1.close();
    await b.stop();
  },
});

Deno.test({
  name: "HotRestart: a new epoch that fails after the old one closed its admin API gives it back",
  ignore: !fdPassingAvailable() || !epollAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const registries = createRegistries();
    const baseId = Math.floor(Math.random() * 1e6);
    const withAdmin = (port: number) => ({
      ...CONFIG,
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
    });
    const hot0 = await HotRestart.prepare(options(0, baseId));
    const a = await Server.start(parseBootstrap(withAdmin(0), registries), registries, { drainTimeMs: 2000 });
    await hot0.started(a, () => {});
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const hot1 = await HotRestart.prepare(options(1, baseId));
    const config = parseBootstrap(withAdmin((taken.addr as Deno.NetAddr).port), registries);
    await assertRejects(
      () => Server.start(config, registries, { drainTimeMs: 2000, ...hot1.serverOptions() }),
      Error,
      "admin: cannot listen",
    );
    assertEquals(a.admin, undefined, "the parent closed its admin API for the child");
    hot1.abort();
    const deadline = Date.now() + 5000;
    while (a.admin === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert(a.admin !== undefined, "the admin API is back");
    const r = await fetch(`http://127.0.0.1:${a.admin.port}/ready`);
    assertEquals(r.status, 200);
    await r.body?.cancel();
    assertEquals(await get(a.listener("web")!.port), "hi", "the parent still serves");
    taken.close();
    await hot0.close();
    await a.stop();
  },
});
