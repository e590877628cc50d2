/**
 * The overload manager without sockets: config errors with field paths, trigger evaluation (threshold and scaled),
 * the actions' view for the data path, the proactive connection limit, and Envoy's stats.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../api/errors.ts";
import { StatsStore } from "../observe/stats.ts";
import {
  evaluateTrigger,
  OVERLOAD_ACTIONS,
  OverloadManager,
  type OverloadManagerConfig,
  parseOverloadManager,
  resetThresholdBytes,
  scaledTimeoutMs,
} from "./overload.ts";

const HEAP = {
  name: "envoy.resource_monitors.fixed_heap",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
    max_heap_size_bytes: "1000",
  },
};
const CONNS = {
  name: "envoy.resource_monitors.global_downstream_max_connections",
  typed_config: {
    "@type":
      "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
    max_active_downstream_connections: 4,
  },
};

function action(name: string, trigger: Record<string, unknown>, monitor = HEAP.name) {
  return { name, triggers: [{ name: monitor, ...trigger }] };
}

function manager(raw: Record<string, unknown>, mem: { used: number }, random = () => 0.5) {
  const config = parseOverloadManager(raw, "overload_manager");
  const stats = new StatsStore();
  const om = new OverloadManager(config, {
    stats,
    memoryUsage: () => ({ heapUsed: mem.used, external: 0 }),
    random,
    gc: undefined,
  });
  return { om, stats, config };
}

function gauge(stats: StatsStore, name: string): number {
  return stats.gauge(name).value;
}

Deno.test("evaluateTrigger threshold is 1 from the value up, else 0", () => {
  const t = { monitor: "m", kind: "threshold", value: 0.8 } as const;
  assertEquals(evaluateTrigger(t, 0.79), 0);
  assertEquals(evaluateTrigger(t, 0.8), 1);
  assertEquals(evaluateTrigger(t, 1.3), 1);
});

Deno.test("evaluateTrigger scaled is linear between scaling and saturation thresholds", () => {
  const t = { monitor: "m", kind: "scaled", scalingThreshold: 0.5, saturationThreshold: 0.9 } as const;
  assertEquals(evaluateTrigger(t, 0.49), 0);
  assertEquals(evaluateTrigger(t, 0.5), 0);
  assertAlmostEquals(evaluateTrigger(t, 0.6), 0.25, 1e-9);
  assertAlmostEquals(evaluateTrigger(t, 0.8), 0.75, 1e-9);
  assertEquals(evaluateTrigger(t, 0.9), 1);
  assertEquals(evaluateTrigger(t, 2), 1);
});

Deno.test("parseOverloadManager reads Envoy's example", () => {
  const c: OverloadManagerConfig = parseOverloadManager({
    refresh_interval: "0.25s",
    resource_monitors: [HEAP, CONNS],
    actions: [
      action(OVERLOAD_ACTIONS.disableHttpKeepalive, { threshold: { value: 0.95 } }),
      action(OVERLOAD_ACTIONS.stopAcceptingRequests, {
        scaled: { scaling_threshold: 0.9, saturation_threshold: 0.99 },
      }),
      {
        ...action(OVERLOAD_ACTIONS.reduceTimeouts, { scaled: { scaling_threshold: 0.8, saturation_threshold: 0.95 } }),
        typed_config: {
          "@type": "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
          timer_scale_factors: [{ timer: "HTTP_DOWNSTREAM_CONNECTION_IDLE", min_timeout: "2s" }],
        },
      },
    ],
    loadshed_points: [action("envoy.load_shed_points.tcp_listener_accept", { threshold: { value: 0.99 } })],
  }, "overload_manager");
  assertEquals(c.refreshIntervalMs, 250);
  assertEquals(c.monitors.map((m) => [m.kind, m.max]), [["fixed_heap", 1000], ["downstream_connections", 4]]);
  assertEquals(c.actions.map((a) => a.effect), ["disableHttpKeepalive", "stopAcceptingRequests", "reduceTimeouts"]);
  assertEquals(c.actions[1]!.triggers[0], {
    monitor: HEAP.name,
    kind: "scaled",
    scalingThreshold: 0.9,
    saturationThreshold: 0.99,
  });
  assertEquals(c.loadShedPoints[0]!.effect, "rejectIncomingConnections");
  assertEquals(c.warnings, []);
});

Deno.test("parseOverloadManager errors name the field path", () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      { resource_monitors: [{ ...HEAP, typed_config: { "@type": HEAP.typed_config["@type"] } }] },
      "overload_manager.resource_monitors[0].typed_config.max_heap_size_bytes: is required",
    ],
    [
      { resource_monitors: [{ name: "envoy.resource_monitors.cpu_utilization" }] },
      'overload_manager.resource_monitors[0].name: "envoy.resource_monitors.cpu_utilization" is not supported',
    ],
    [
      { resource_monitors: [{ name: "my.monitor" }] },
      'overload_manager.resource_monitors[0].name: "my.monitor" is not a known resource monitor',
    ],
    [
      { resource_monitors: [HEAP, HEAP] },
      'overload_manager.resource_monitors[1].name: "envoy.resource_monitors.fixed_heap" is already at resource_monitors[0]',
    ],
    [{
      resource_monitors: [HEAP],
      actions: [action(OVERLOAD_ACTIONS.shrinkHeap, { threshold: { value: 0.9 } }, "nope")],
    }, 'overload_manager.actions[0].triggers[0].name: unknown resource monitor "nope"'],
    [
      { resource_monitors: [HEAP], actions: [action(OVERLOAD_ACTIONS.shrinkHeap, { threshold: { value: 1.5 } })] },
      "overload_manager.actions[0].triggers[0].threshold.value: 1.5 is above the maximum 1",
    ],
    [{
      resource_monitors: [HEAP],
      actions: [action(OVERLOAD_ACTIONS.shrinkHeap, { scaled: { scaling_threshold: 0.9, saturation_threshold: 0.8 } })],
    }, "overload_manager.actions[0].triggers[0].scaled.scaling_threshold: 0.9 must be below saturation_threshold 0.8"],
    [{
      resource_monitors: [HEAP],
      actions: [
        action(OVERLOAD_ACTIONS.shrinkHeap, {
          threshold: { value: 0.9 },
          scaled: { scaling_threshold: 0.1, saturation_threshold: 0.8 },
        }),
      ],
    }, "overload_manager.actions[0].triggers[0]: only one of threshold, scaled may be set"],
    [
      { resource_monitors: [HEAP], actions: [{ name: OVERLOAD_ACTIONS.shrinkHeap, triggers: [] }] },
      "overload_manager.actions[0].triggers: must have at least one entry",
    ],
    [{
      resource_monitors: [HEAP],
      actions: [
        action(OVERLOAD_ACTIONS.shrinkHeap, { threshold: { value: 0.9 } }),
        action(OVERLOAD_ACTIONS.shrinkHeap, { threshold: { value: 0.8 } }),
      ],
    }, 'overload_manager.actions[1].name: "envoy.overload_actions.shrink_heap" is already at actions[0]'],
    [{ refresh_interval: "0s" }, "overload_manager.refresh_interval: must be above zero"],
    [{ refresh_intervall: "1s" }, "overload_manager.refresh_intervall: unknown field"],
  ];
  for (const [raw, want] of cases) {
    const e = assertThrows(() => parseOverloadManager(raw, "overload_manager"), ConfigError);
    assert(e.message.includes(want), `${e.message}\n  wanted: ${want}`);
  }
});

Deno.test("parseOverloadManager accepts unknown actions with a warning, as Envoy", () => {
  const c = parseOverloadManager({
    resource_monitors: [HEAP],
    actions: [action("example.custom_action", { threshold: { value: 0.5 } })],
  }, "overload_manager");
  assertEquals(c.actions[0]!.effect, undefined);
  assertEquals(c.warnings, [
    'overload_manager.actions[0].name: unknown overload action "example.custom_action" is ignored',
  ]);
});

Deno.test("OverloadManager threshold actions follow the heap pressure both ways", () => {
  const mem = { used: 100 };
  const { om, stats } = manager({
    resource_monitors: [HEAP],
    actions: [
      action(OVERLOAD_ACTIONS.stopAcceptingRequests, { threshold: { value: 0.9 } }),
      action(OVERLOAD_ACTIONS.stopAcceptingConnections, { threshold: { value: 0.95 } }),
    ],
  }, mem);
  const accepting: boolean[] = [];
  om.watchAccepting((a) => accepting.push(a));
  om.refresh();
  assertEquals(om.engaged, false);
  assertEquals(gauge(stats, "overload.envoy.resource_monitors.fixed_heap.pressure"), 10);
  mem.used = 920;
  om.refresh();
  assertEquals(om.engaged, true);
  assert(om.shedRequest());
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_requests.active"), 1);
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_requests.scale_percent"), 100);
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_connections.active"), 0);
  mem.used = 960;
  om.refresh();
  mem.used = 200;
  om.refresh();
  assertEquals(om.engaged, false);
  assert(!om.shedRequest());
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_requests.active"), 0);
  assertEquals(accepting, [true, false, true]);
});

Deno.test("OverloadManager scaled actions shed with the probability of their scale", () => {
  const mem = { used: 0 };
  let draw = 0;
  const { om, stats } = manager(
    {
      resource_monitors: [HEAP],
      actions: [
        action(OVERLOAD_ACTIONS.stopAcceptingRequests, {
          scaled: { scaling_threshold: 0.5, saturation_threshold: 0.9 },
        }),
        action(OVERLOAD_ACTIONS.disableHttpKeepalive, {
          scaled: { scaling_threshold: 0.2, saturation_threshold: 0.6 },
        }),
      ],
    },
    mem,
    () => draw,
  );
  mem.used = 600; // shed: 0.25, keep-alive: 1
  om.refresh();
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_requests.scale_percent"), 25);
  assertEquals(gauge(stats, "overload.envoy.overload_actions.stop_accepting_requests.active"), 0);
  assertEquals(gauge(stats, "overload.envoy.overload_actions.disable_http_keepalive.active"), 1);
  draw = 0.2;
  assert(om.shedRequest(), "a draw under the scale sheds");
  draw = 0.3;
  assert(!om.shedRequest(), "a draw over the scale passes");
  assert(om.disableKeepalive(), "a saturated action always applies");
  mem.used = 400; // shed: 0, keep-alive: 0.5
  om.refresh();
  draw = 0;
  assert(!om.shedRequest(), "scale 0 never sheds");
  assertEquals(gauge(stats, "overload.envoy.overload_actions.disable_http_keepalive.scale_percent"), 50);
});

Deno.test("OverloadManager counts connections against max_active_downstream_connections at accept time", () => {
  const { om, stats } = manager({ resource_monitors: [CONNS] }, { used: 0 });
  for (let i = 0; i < 4; i++) assertEquals(om.admitConnection(true), "accept");
  assertEquals(om.admitConnection(true), "overflow");
  assertEquals(om.admitConnection(false), "accept", "ignore_global_conn_limit listeners are not counted");
  om.releaseConnection();
  assertEquals(om.admitConnection(true), "accept");
  assertEquals(om.activeConnections, 4);
  om.refresh();
  assertEquals(gauge(stats, `overload.${CONNS.name}.pressure`), 100);
});

Deno.test("OverloadManager connection pressure drives triggers; reject_incoming_connections rejects", () => {
  const { om } = manager({
    resource_monitors: [CONNS],
    actions: [action(OVERLOAD_ACTIONS.rejectIncomingConnections, { threshold: { value: 0.5 } }, CONNS.name)],
  }, { used: 0 });
  assertEquals(om.admitConnection(true), "accept");
  assertEquals(om.admitConnection(true), "accept");
  om.refresh();
  assertEquals(om.admitConnection(true), "reject");
  om.releaseConnection();
  om.refresh();
  assertEquals(om.admitConnection(true), "accept");
});

Deno.test("OverloadManager counts failed heap reads and keeps the last pressure", () => {
  const stats = new StatsStore();
  let fail = false;
  const om = new OverloadManager(
    parseOverloadManager({
      resource_monitors: [HEAP],
      actions: [action(OVERLOAD_ACTIONS.stopAcceptingRequests, { threshold: { value: 0.5 } })],
    }, "o"),
    {
      stats,
      memoryUsage: () => {
        if (fail) throw new Error("no");
        return { heapUsed: 600, external: 100 };
      },
      gc: undefined,
    },
  );
  om.refresh();
  fail = true;
  om.refresh();
  assertEquals(stats.counter("overload.envoy.resource_monitors.fixed_heap.failed_updates").value, 1);
  assertEquals(om.pressure(HEAP.name), 0.7);
  assert(om.engaged);
});

Deno.test("OverloadManager shrink_heap runs the collector while saturated", () => {
  let collected = 0;
  const mem = { used: 990 };
  const om = new OverloadManager(
    parseOverloadManager({
      resource_monitors: [HEAP],
      actions: [action(OVERLOAD_ACTIONS.shrinkHeap, { threshold: { value: 0.95 } })],
    }, "o"),
    { stats: new StatsStore(), memoryUsage: () => ({ heapUsed: mem.used, external: 0 }), gc: () => collected++ },
  );
  om.refresh();
  om.refresh();
  mem.used = 10;
  om.refresh();
  assertEquals(collected, 2);
  assertEquals(om.engaged, false, "shrink_heap does not touch the data path");
});

Deno.test("resetThresholdBytes ends the largest of 8 size classes first, all of them when saturated", () => {
  assertEquals(resetThresholdBytes(20, 0.01), 2 ** 27, "one class: 128 MiB and up");
  assertEquals(resetThresholdBytes(20, 0.5), 2 ** 23, "five classes");
  assertEquals(resetThresholdBytes(20, 0.99), 2 ** 20, "eight classes");
  assertEquals(resetThresholdBytes(20, 1), 2 ** 20, "saturated: every tracked stream");
});

Deno.test("OverloadManager reset_high_memory_stream ends streams from the scale's size class up, and counts them", () => {
  const mem = { used: 0 };
  const { om, stats, config } = manager({
    resource_monitors: [HEAP],
    buffer_factory_config: { minimum_account_to_track_power_of_two: 16 },
    actions: [
      action(OVERLOAD_ACTIONS.resetHighMemoryStream, { scaled: { scaling_threshold: 0.5, saturation_threshold: 0.9 } }),
    ],
  }, mem);
  assertEquals(config.minimumAccountToTrackPowerOfTwo, 16);
  om.refresh();
  assert(!om.engaged);
  assert(!om.resetHighMemoryStream(1 << 30), "inactive: nothing is ended");
  mem.used = 720; // scale 0.55: five classes, from 2^(16+3) = 512 KiB
  om.refresh();
  assert(om.engaged);
  assert(!om.resetHighMemoryStream((1 << 19) - 1));
  assert(om.resetHighMemoryStream(1 << 19));
  mem.used = 950; // saturated: from 64 KiB
  om.refresh();
  assert(om.resetHighMemoryStream(1 << 16));
  assertEquals(stats.counter("overload.envoy.overload_actions.reset_high_memory_stream.count").value, 2);
});

Deno.test("parseOverloadManager warns that reset_high_memory_stream needs buffer_factory_config", () => {
  const c = parseOverloadManager({
    resource_monitors: [HEAP],
    actions: [action(OVERLOAD_ACTIONS.resetHighMemoryStream, { threshold: { value: 0.9 } })],
  }, "overload_manager");
  assertEquals(c.warnings.length, 1);
  assert(c.warnings[0]!.includes("minimum_account_to_track_power_of_two"));
  const e = assertThrows(() =>
    parseOverloadManager({ buffer_factory_config: { minimum_account_to_track_power_of_two: 4 } }, "overload_manager")
  );
  assert(e.message.includes("overload_manager.buffer_factory_config.minimum_account_to_track_power_of_two"), e.message);
});

Deno.test("scaledTimeoutMs shrinks a timeout linearly towards min_timeout or min_scale", () => {
  assertEquals(scaledTimeoutMs(60_000, { minMs: 2000 }, 0), 60_000);
  assertEquals(scaledTimeoutMs(60_000, { minMs: 2000 }, 0.5), 31_000);
  assertEquals(scaledTimeoutMs(60_000, { minMs: 2000 }, 1), 2000);
  assertEquals(scaledTimeoutMs(1000, { minMs: 2000 }, 1), 1000, "never above the configured timeout");
  assertEquals(scaledTimeoutMs(60_000, { minPercent: 10 }, 1), 6000);
  assertEquals(scaledTimeoutMs(60_000, undefined, 1), 60_000, "timers not listed are not scaled");
});

Deno.test("OverloadManager reduce_timeouts scales the listed timers with the action's scale", () => {
  const mem = { used: 0 };
  const { om, config } = manager({
    resource_monitors: [HEAP],
    actions: [{
      ...action(OVERLOAD_ACTIONS.reduceTimeouts, { scaled: { scaling_threshold: 0.5, saturation_threshold: 0.9 } }),
      typed_config: {
        "@type": "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
        timer_scale_factors: [{ timer: "HTTP_DOWNSTREAM_CONNECTION_IDLE", min_timeout: "1s" }],
      },
    }],
  }, mem);
  assertEquals(config.actions[0]!.timerScales, { HTTP_DOWNSTREAM_CONNECTION_IDLE: { minMs: 1000 } });
  om.refresh();
  assert(!om.engaged);
  mem.used = 950;
  om.refresh();
  assert(om.engaged);
  assertEquals(om.scaleTimeout("HTTP_DOWNSTREAM_CONNECTION_IDLE", 60_000), 1000);
  assertEquals(om.scaleTimeout("HTTP_DOWNSTREAM_STREAM_IDLE", 60_000), 60_000);
  const e = assertThrows(() =>
    parseOverloadManager({
      resource_monitors: [HEAP],
      actions: [{
        ...action(OVERLOAD_ACTIONS.reduceTimeouts, { threshold: { value: 0.5 } }),
        typed_config: {
          "@type": "type.googleapis.com/envoy.config.overload.v3.ScaleTimersOverloadActionConfig",
          timer_scale_factors: [{ timer: "TRANSPORT_SOCKET_CONNECT", min_timeout: "1s" }],
        },
      }],
    }, "overload_manager")
  );
  assert(
    e.message.includes(
      "overload_manager.actions[0].typed_config.timer_scale_factors[0].timer: TRANSPORT_SOCKET_CONNECT",
    ),
    e.message,
  );
});

Deno.test("OverloadManager load shed points act as their actions and publish scale_percent", () => {
  const mem = { used: 0 };
  const { om, stats } = manager({
    resource_monitors: [HEAP],
    loadshed_points: [
      action("envoy.load_shed_points.tcp_listener_accept", { threshold: { value: 0.9 } }),
      action("envoy.load_shed_points.http_connection_manager_decode_headers", { threshold: { value: 0.8 } }),
    ],
  }, mem);
  mem.used = 850;
  om.refresh();
  assert(om.shedRequest());
  assertEquals(om.admitConnection(true), "accept");
  mem.used = 950;
  om.refresh();
  assertEquals(om.admitConnection(true), "reject");
  assertEquals(gauge(stats, "overload.envoy.load_shed_points.tcp_listener_accept.scale_percent"), 100);
});
