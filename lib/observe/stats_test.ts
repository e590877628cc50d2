import { assert, assertAlmostEquals, assertEquals, assertStrictEquals, assertThrows } from "../../tests/assert.ts";
// deno-lint-ignore no-import-prefix -- test-only oracle; not in the import map
import parsePrometheus from "npm:parse-prometheus-text-format@1.1.1";
import {
  DEFAULT_BUCKETS,
  escapeLabelValue,
  extractTags,
  histogramQuantile,
  mergeSnapshots,
  renderPrometheus,
  renderStatsJson,
  renderStatsText,
  StatsStore,
} from "./stats.ts";
import { checkPrometheusText } from "./_prom_check.ts";

function sample(): StatsStore {
  const s = new StatsStore();
  const c = s.scope("cluster.payments");
  c.counter("upstream_rq_total").inc(5);
  c.counter("upstream_rq_200").inc(4);
  c.counter("upstream_rq_2xx").inc(4);
  c.counter("upstream_rq_503").inc();
  c.counter("upstream_cx_connect_fail"); // unused
  c.gauge("upstream_cx_active").set(2);
  c.histogram("upstream_rq_time").record(3);
  c.histogram("upstream_rq_time").record(30);
  s.scope("http.ingress").counter("downstream_rq_total").inc(7);
  s.scope("http.ingress").counter("downstream_rq_5xx").inc(1);
  s.counter("listener.0.0.0.0_8080.downstream_cx_total").inc(3);
  s.counter("listener.0.0.0.0_8080.http.ingress.downstream_rq_2xx").inc(6);
  s.counter("tcp.db.downstream_cx_total").inc(1);
  s.gauge("server.live").set(1);
  s.gauge("server.hot_restart_epoch"); // unused
  s.histogram("http.ingress.downstream_rq_time"); // unused
  return s;
}

Deno.test("StatsStore returns the same object for the same name", () => {
  const s = new StatsStore();
  assertStrictEquals(s.counter("a.b"), s.scope("a").counter("b"));
  assertStrictEquals(s.scope("a").scope("b").gauge("c"), s.gauge("a.b.c"));
  assertStrictEquals(s.histogram("h"), s.histogram("h"));
  assertEquals(s.scope("a").scope("b").prefix, "a.b");
  const c = s.counter("x");
  c.inc();
  c.inc(2);
  assertEquals(c.value, 3);
  const g = s.gauge("g");
  g.inc(5);
  g.dec(2);
  assertEquals(g.value, 3);
  g.set(10);
  assertEquals(g.value, 10);
});

Deno.test("renderStatsText prints sorted name: value lines and histogram quantiles", () => {
  const text = renderStatsText(sample().snapshot());
  const lines = text.trimEnd().split("\n");
  const scalars = lines.filter((l) => !l.includes(" P0(") && !l.includes("No recorded"));
  assertEquals(scalars, [...scalars].sort());
  assert(lines.includes("cluster.payments.upstream_rq_total: 5"));
  assert(lines.includes("cluster.payments.upstream_cx_active: 2"));
  assert(lines.includes("cluster.payments.upstream_cx_connect_fail: 0"));
  assert(lines.includes("http.ingress.downstream_rq_time: No recorded values"));
  const h = lines.find((l) => l.startsWith("cluster.payments.upstream_rq_time: "))!;
  assert(/^cluster\.payments\.upstream_rq_time: P0\(nan,3\) P25\(nan,[\d.]+\) .* P100\(nan,30\)$/.test(h), h);
});

Deno.test("renderStatsText honours filter, usedonly and type", () => {
  const snap = sample().snapshot();
  const f = renderStatsText(snap, { filter: /^cluster\.payments\.upstream_rq_2/ });
  assertEquals(f, "cluster.payments.upstream_rq_200: 4\ncluster.payments.upstream_rq_2xx: 4\n");
  const used = renderStatsText(snap, { usedOnly: true });
  assert(!used.includes("upstream_cx_connect_fail"));
  assert(!used.includes("hot_restart_epoch"));
  assert(!used.includes("No recorded values"));
  assert(used.includes("server.live: 1"));
  assertEquals(
    renderStatsText(snap, { type: "Gauges", usedOnly: true }),
    "cluster.payments.upstream_cx_active: 2\n" +
      "server.live: 1\n",
  );
});

Deno.test("renderStatsJson has Envoy's shape", () => {
  const j = JSON.parse(renderStatsJson(sample().snapshot(), { filter: /payments/ }));
  const stats = j.stats as Record<string, unknown>[];
  assertEquals(stats[0], { name: "cluster.payments.upstream_cx_active", value: 2 });
  const hist = stats.at(-1)!.histograms as {
    supported_quantiles: number[];
    computed_quantiles: { name: string; values: { interval: null; cumulative: number }[] }[];
  };
  assertEquals(hist.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
  assertEquals(hist.computed_quantiles[0]!.name, "cluster.payments.upstream_rq_time");
  assertEquals(hist.computed_quantiles[0]!.values[0], { interval: null, cumulative: 3 });
  assertEquals(hist.computed_quantiles[0]!.values.at(-1), { interval: null, cumulative: 30 });
});

Deno.test("histogramQuantile estimates from buckets", () => {
  const s = new StatsStore();
  const h = s.histogram("lat");
  for (let i = 1; i <= 1000; i++) h.record(i); // uniform 1..1000 ms
  const snap = s.snapshot().histograms.lat!;
  assertEquals(snap.count, 1000);
  assertEquals(snap.sum, 500500);
  // Buckets are coarse (250..500, 500..1000): the estimates interpolate inside them.
  assertAlmostEquals(histogramQuantile(snap, 0.5), 500, 5);
  assertAlmostEquals(histogramQuantile(snap, 0.9), 900, 10);
  assertAlmostEquals(histogramQuantile(snap, 0.99), 990, 10);
  assertEquals(histogramQuantile(snap, 0), 1);
  assertEquals(histogramQuantile(snap, 1), 1000);
  assert(Number.isNaN(histogramQuantile({ buckets: [], count: 0, sum: 0, min: null, max: null }, 0.5)));
  // Every value in one bucket: estimates stay between min and max.
  const one = new StatsStore();
  for (let i = 0; i < 10; i++) one.histogram("x").record(7);
  assertEquals(histogramQuantile(one.snapshot().histograms.x!, 0.5), 7);
  // Overflow bucket.
  const big = new StatsStore();
  big.histogram("x").record(5_000_000);
  assertEquals(big.snapshot().histograms.x!.buckets.at(-1), 1);
  assertEquals(histogramQuantile(big.snapshot().histograms.x!, 0.99), 5_000_000);
  assertEquals(DEFAULT_BUCKETS.length, 19);
});

Deno.test("StatsStore.merge adds counters, gauges and histograms", () => {
  const a = sample();
  const b = sample();
  b.counter("only.b").inc(9);
  const agg = new StatsStore();
  agg.merge(a.snapshot());
  agg.merge(b.snapshot());
  const m = agg.snapshot();
  assertEquals(m.counters["cluster.payments.upstream_rq_total"], 10);
  assertEquals(m.counters["only.b"], 9);
  assertEquals(m.gauges["cluster.payments.upstream_cx_active"], { value: 4, used: true });
  assertEquals(m.gauges["server.hot_restart_epoch"], { value: 0, used: false });
  const h = m.histograms["cluster.payments.upstream_rq_time"]!;
  assertEquals(h.count, 4);
  assertEquals(h.sum, 66);
  assertEquals(h.min, 3);
  assertEquals(h.max, 30);
  assertEquals(mergeSnapshots([a.snapshot(), b.snapshot()]), m);
  // Snapshots survive structured cloning (postMessage between workers).
  assertEquals(structuredClone(m), m);
});

Deno.test("extractTags applies Envoy's default tag extraction", () => {
  assertEquals(extractTags("cluster.payments.upstream_rq_total"), {
    name: "envoy_cluster_upstream_rq_total",
    labels: [["envoy_cluster_name", "payments"]],
  });
  assertEquals(extractTags("cluster.payments.upstream_rq_200"), {
    name: "envoy_cluster_upstream_rq",
    labels: [["envoy_response_code", "200"], ["envoy_cluster_name", "payments"]],
  });
  assertEquals(extractTags("http.ingress.downstream_rq_5xx"), {
    name: "envoy_http_downstream_rq_xx",
    labels: [["envoy_response_code_class", "5"], ["envoy_http_conn_manager_prefix", "ingress"]],
  });
  assertEquals(extractTags("listener.0.0.0.0_8080.downstream_cx_total"), {
    name: "envoy_listener_downstream_cx_total",
    labels: [["envoy_listener_address", "0.0.0.0_8080"]],
  });
  assertEquals(extractTags("listener.0.0.0.0_8080.http.ingress.downstream_rq_2xx"), {
    name: "envoy_listener_http_downstream_rq_xx",
    labels: [
      ["envoy_response_code_class", "2"],
      ["envoy_http_conn_manager_prefix", "ingress"],
      ["envoy_listener_address", "0.0.0.0_8080"],
    ],
  });
  assertEquals(extractTags("listener.[__1]_80.downstream_cx_total").labels, [["envoy_listener_address", "[__1]_80"]]);
  assertEquals(extractTags("tcp.db.downstream_cx_total"), {
    name: "envoy_tcp_downstream_cx_total",
    labels: [["envoy_tcp_prefix", "db"]],
  });
  assertEquals(extractTags("server.live"), { name: "envoy_server_live", labels: [] });
  assertEquals(extractTags("listener.admin.downstream_cx_total").name, "envoy_listener_admin_downstream_cx_total");
  assertEquals(extractTags("weird-name.x:y").name, "envoy_weird_name_x_y");
  assertEquals(extractTags("tcp.db.main.downstream_cx_total").labels, [["envoy_tcp_prefix", "db.main"]]);
  assertEquals(extractTags("vhost.api.vcluster.slow.upstream_rq_time"), {
    name: "envoy_vhost_vcluster_upstream_rq_time",
    labels: [["envoy_virtual_cluster", "slow"], ["envoy_virtual_host", "api"]],
  });
  assertEquals(extractTags("http.ingress.rds.local_route.config_reload"), {
    name: "envoy_http_rds_config_reload",
    labels: [["envoy_http_conn_manager_prefix", "ingress"], ["envoy_rds_route_config", "local_route"]],
  });
  assertEquals(extractTags("listener_manager.worker_3.dispatcher.loop_duration_us"), {
    name: "envoy_listener_manager_dispatcher_loop_duration_us",
    labels: [["envoy_worker_id", "worker_3"]],
  });
});

Deno.test("renderPrometheus output passes a strict exposition-format check", () => {
  const s = sample();
  s.scope('cluster.we"ird\\name').counter("upstream_rq_total").inc(); // needs label escaping
  s.scope("cluster.other").histogram("upstream_rq_time").record(700);
  const text = renderPrometheus(s.snapshot());
  const fams = checkPrometheusText(text);
  assertEquals(fams.get("envoy_cluster_upstream_rq_total")!.type, "counter");
  assertEquals(
    fams.get("envoy_cluster_upstream_rq_total")!.samples.map((x) => x.labels.envoy_cluster_name).sort(),
    ["payments", 'we"ird\\name'],
  );
  assert(text.includes('envoy_cluster_name="we\\"ird\\\\name"'));
  assertEquals(fams.get("envoy_cluster_upstream_cx_active")!.type, "gauge");
  const hist = fams.get("envoy_cluster_upstream_rq_time")!;
  assertEquals(hist.type, "histogram");
  assertEquals(hist.samples.length, 2 * (DEFAULT_BUCKETS.length + 3));
  assert(text.includes('envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="payments",le="5"} 1\n'));
  assert(text.includes('envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="payments",le="+Inf"} 2\n'));
  assert(text.includes('envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="payments"} 33\n'));
  assert(text.includes('envoy_cluster_upstream_rq_time_count{envoy_cluster_name="payments"} 2\n'));
  assert(text.includes('envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="payments"} 4\n'));
  assert(text.includes('envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_8080"} 3\n'));
  assert(text.includes('envoy_tcp_downstream_cx_total{envoy_tcp_prefix="db"} 1\n'));
  // An independent parser agrees on families and values.
  const parsed = parsePrometheus(text) as { name: string; type: string; metrics: { value?: string }[] }[];
  const total = parsed.find((f) => f.name === "envoy_http_downstream_rq_total")!;
  assertEquals(total.type, "COUNTER");
  assertEquals(total.metrics[0]!.value, "7");
  assertEquals(parsed.find((f) => f.name === "envoy_cluster_upstream_rq_time")!.type, "HISTOGRAM");
});

Deno.test("renderPrometheus keeps the first kind when names collide", () => {
  const s = new StatsStore();
  s.counter("a.b").inc();
  s.gauge("a_b").set(1);
  s.histogram("a-b").record(1);
  s.counter("a-b").inc(5); // same series as a.b
  const text = renderPrometheus(s.snapshot());
  checkPrometheusText(text);
  assertEquals(text, "# TYPE envoy_a_b counter\nenvoy_a_b 1\n");
});

Deno.test("checkPrometheusText rejects malformed exposition", () => {
  assertThrows(() => checkPrometheusText("a 1\n# TYPE a counter\n"), Error, "after its samples");
  assertThrows(() => checkPrometheusText('a{x="1} 1\n'), Error, "unterminated");
  assertThrows(() => checkPrometheusText("a 1\nb 1\na 2\n"), Error, "contiguous");
  assertThrows(() => checkPrometheusText("a-b 1\n"), Error, "bad metric name");
  assertThrows(() => checkPrometheusText('a{x="\\q"} 1\n'), Error, "bad escape");
  assertEquals(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

Deno.test("StatsStore group: block stats are found by name, listed once, reset, and kept for the same prefix", () => {
  const store = new StatsStore();
  const names = ["a_total", "b_total"] as const;
  const gauges = ["g_active"] as const;
  const g = store.scope("cluster.x").group!(names, gauges);
  g.counters[0]!.inc(3);
  g.gauges[0]!.set(7);
  assertEquals(store.counter("cluster.x.a_total").value, 3);
  assertEquals(store.counter("cluster.x.a_total"), g.counters[0]);
  assertEquals(store.gauge("cluster.x.g_active").value, 7);
  store.counter("cluster.x.other").inc();
  const snap = store.snapshot();
  assertEquals(snap.counters["cluster.x.a_total"], 3);
  assertEquals(snap.counters["cluster.x.b_total"], 0);
  assertEquals(snap.counters["cluster.x.other"], 1);
  assertEquals(snap.gauges["cluster.x.g_active"], { value: 7, used: true });
  assertEquals([...store.counters()].filter((c) => c.name === "cluster.x.a_total").length, 1);
  // A rebuilt object under the same prefix keeps its stats.
  assertEquals(store.scope("cluster.x").group!(names, gauges).counters[0]!.value, 3);
  store.resetCounters();
  assertEquals(store.counter("cluster.x.a_total").value, 0);
});
