/**
 * Route lookup micro-benchmark: `RouteTable.route` over a table of 50 virtual hosts × 20 routes.
 *
 *   deno run -A bench/router.ts [--time 500] [--rounds 5]
 *
 * Each scenario looks up a rotating set of 64 requests for `--time` ms per round and prints ns per lookup, median
 * over rounds (best in brackets), in two modes: "warm" reuses the same header strings (V8 caches their hashes), "fresh" gives each
 * lookup new `:authority` and `:path` strings sliced from a freshly decoded head, as the HTTP/1 codec produces
 * them, with the decoding cost measured separately and subtracted. The figure is the lookup alone: virtual host
 * selection by `:authority` plus the linear route scan. Not a test.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { HeaderMap } from "../lib/api/headers.ts";
import { parseRouteConfiguration, RouteTable } from "../lib/router/mod.ts";

const args = parseArgs({ args: Deno.args, options: { time: { type: "string" }, rounds: { type: "string" } } });
const TIME_MS = Number(args.values.time ?? 500);
const ROUNDS = Number(args.values.rounds ?? 5);

const VHOSTS = 50;
const ROUTES = 20;

/** Route i of a virtual host: a realistic mix of prefix, path, separated prefix, regex and header matches. */
function routeFor(i: number): Record<string, unknown> {
  const cluster = { route: { cluster: `c${i}` } };
  switch (i % 5) {
    case 0:
      return { name: `r${i}`, match: { prefix: `/api/v${i}/` }, ...cluster };
    case 1:
      return { name: `r${i}`, match: { path: `/exact/${i}` }, ...cluster };
    case 2:
      return { name: `r${i}`, match: { path_separated_prefix: `/svc${i}` }, ...cluster };
    case 3:
      return {
        name: `r${i}`,
        match: { prefix: `/h${i}/`, headers: [{ name: "x-tenant", string_match: { exact: `t${i}` } }] },
        ...cluster,
      };
    default:
      return { name: `r${i}`, match: { safe_regex: { regex: `/items${i}/[0-9]+` } }, ...cluster };
  }
}

function buildConfig() {
  const virtual_hosts = [];
  for (let v = 0; v < VHOSTS; v++) {
    const routes = [];
    for (let i = 0; i < ROUTES - 1; i++) routes.push(routeFor(i));
    routes.push({ name: "catch-all", match: { prefix: "/" }, route: { cluster: "default" } });
    const domains = v === VHOSTS - 1
      ? ["*"]
      : v % 10 === 9
      ? [`*.wild${v}.example.com`]
      : [`svc${v}.example.com`, `svc${v}.example.com:8080`];
    virtual_hosts.push({ name: `vh${v}`, domains, routes });
  }
  return parseRouteConfiguration({ name: "bench", virtual_hosts }, "bench");
}

function requestFor(path: string, authority: string, extra: Record<string, string> = {}): HeaderMap {
  return HeaderMap.from({
    ":method": "GET",
    ":scheme": "http",
    ":authority": authority,
    ":path": path,
    "user-agent": "bench/1.0",
    accept: "*/*",
    ...extra,
  });
}

interface Scenario {
  name: string;
  requests: HeaderMap[];
}

function scenarios(): Scenario[] {
  const pick = (f: (v: number, i: number) => HeaderMap) => {
    const out: HeaderMap[] = [];
    // v cycles over the exact-domain hosts (those whose index does not end in 9).
    for (let n = 0; n < 64; n++) out.push(f((Math.floor(n / 9) % 5) * 10 + (n % 9), n));
    return out;
  };
  return [
    {
      name: "exact host, first route (prefix)",
      requests: pick((v) => requestFor("/api/v0/users/1", `svc${v}.example.com`)),
    },
    {
      name: "exact host, route 11 (path)",
      requests: pick((v) => requestFor("/exact/11?x=1", `svc${v}.example.com`)),
    },
    {
      name: "exact host, catch-all (20th)",
      requests: pick((v) => requestFor("/static/app.js", `svc${v}.example.com`)),
    },
    {
      name: "host:port not in domains, catch-all",
      requests: pick((v) => requestFor("/static/app.js", `svc${v}.example.com:9090`)),
    },
    {
      name: "mixed-case host, route 3 (header)",
      requests: pick((v) => requestFor("/h3/x", `SVC${v}.Example.com`, { "x-tenant": "t3" })),
    },
    {
      name: "wildcard host, route 4 (regex)",
      requests: pick((_v, n) => requestFor("/items4/123", `a${n}.wild${(n % 4) * 10 + 9}.example.com`)),
    },
    {
      name: "default host (*), route 7 (separated)",
      requests: pick((_v, n) => requestFor("/svc7/x", `unknown${n}.org`)),
    },
  ];
}

/** Lookups over the pre-built maps: header strings are reused, so V8 has their hashes cached. */
function measureWarm(table: RouteTable, requests: HeaderMap[], ms: number): number {
  let n = 0;
  let sink = 0;
  const len = requests.length;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 4096; k++) {
      const r = table.route(requests[n++ % len]!);
      if (r !== null) sink++;
    }
    now = performance.now();
  }
  if (sink === 0) throw new Error("bench: no route matched");
  return ((now - start) * 1e6) / n;
}

/**
 * Lookups with fresh `:authority` and `:path` strings each time, sliced out of a freshly decoded head as the
 * HTTP/1 codec does, so hashing and flattening costs are paid as in production. The decoding itself is measured
 * in a loop without the lookup and subtracted.
 */
function measureFresh(table: RouteTable | null, requests: HeaderMap[], ms: number): number {
  const dec = new TextDecoder();
  const heads = requests.map((h) => new TextEncoder().encode(`${h.get(":authority")}\n${h.get(":path")}`));
  const splits = requests.map((h) => h.get(":authority")!.length);
  // Indices of the two values in each map's flat kv array.
  const auth = requests.map((h) => h.kv.indexOf(":authority") + 1);
  const path = requests.map((h) => h.kv.indexOf(":path") + 1);
  let n = 0;
  let sink = 0;
  const len = requests.length;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 4096; k++) {
      const i = n++ % len;
      const head = dec.decode(heads[i]!);
      const kv = requests[i]!.kv;
      kv[auth[i]!] = head.slice(0, splits[i]!);
      kv[path[i]!] = head.slice(splits[i]! + 1);
      if (table === null) sink += kv[auth[i]!]!.length;
      else if (table.route(requests[i]!) !== null) sink++;
    }
    now = performance.now();
  }
  if (sink === 0) throw new Error("bench: no route matched");
  return ((now - start) * 1e6) / n;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const table = new RouteTable(buildConfig());
const list = scenarios();
for (const s of list) {
  for (const h of s.requests) {
    if (table.route(h) === null) {
      throw new Error(`bench: ${s.name}: no route for ${h.get(":authority")}${h.get(":path")}`);
    }
  }
}
// Warm every path of the lookup before measuring any, so that no scenario pays for another's deoptimisations.
for (let pass = 0; pass < 2; pass++) {
  for (const s of list) {
    measureWarm(table, s.requests, 100);
    measureFresh(table, s.requests, 100);
    measureFresh(null, s.requests, 50);
  }
}
console.log(`RouteTable.route: ${VHOSTS} virtual hosts × ${ROUTES} routes, ${ROUNDS} rounds of ${TIME_MS} ms`);
console.log(
  `  ${"scenario".padEnd(40)} ${"warm".padStart(8)} ${"fresh".padStart(8)}  (ns per lookup, median; best in brackets)`,
);
// Rounds go round-robin over the scenarios so that drift in machine load hits them alike.
const warm: number[][] = list.map(() => []);
const withLookup: number[][] = list.map(() => []);
const decodeOnly: number[][] = list.map(() => []);
for (let r = 0; r < ROUNDS; r++) {
  list.forEach((s, i) => {
    warm[i]!.push(measureWarm(table, s.requests, TIME_MS));
    withLookup[i]!.push(measureFresh(table, s.requests, TIME_MS / 2));
    decodeOnly[i]!.push(measureFresh(null, s.requests, TIME_MS / 2));
  });
}
const warmAll: number[] = [];
const freshAll: number[] = [];
list.forEach((s, i) => {
  const w = median(warm[i]!);
  const f = median(withLookup[i]!) - median(decodeOnly[i]!);
  warmAll.push(w);
  freshAll.push(f);
  const best = `[${Math.min(...warm[i]!).toFixed(0)} / ${
    (Math.min(...withLookup[i]!) - Math.min(...decodeOnly[i]!)).toFixed(0)
  }]`;
  console.log(`  ${s.name.padEnd(40)} ${w.toFixed(0).padStart(8)} ${f.toFixed(0).padStart(8)}  ${best}`);
});
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(
  `  ${"mean of scenarios".padEnd(40)} ${mean(warmAll).toFixed(0).padStart(8)} ${
    mean(freshAll).toFixed(0).padStart(8)
  }`,
);
