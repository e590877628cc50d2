import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type { RouteResult } from "../../lib/api/route.ts";
import type { FilterFactoryContext, StreamFilterCallbacks } from "../../lib/api/stream_filter.ts";
import { StatsStore } from "../../lib/observe/stats.ts";
import { createRbacFactory, parseRbacConfig, parseRbacPerRoute, RBAC_PER_ROUTE_TYPE } from "./rbac.ts";

const getOnly = {
  policies: {
    get: {
      permissions: [{ header: { name: ":method", string_match: { exact: "GET" } } }],
      principals: [{ any: true }],
    },
  },
};

function callbacks(route: unknown, replies: string[]): StreamFilterCallbacks {
  return {
    route: route as RouteResult | null,
    connection: {
      id: 1,
      remoteAddress: "127.0.0.1",
      remotePort: 1,
      localAddress: "127.0.0.1",
      localPort: 80,
      secure: false,
    },
    streamInfo: { downstreamRemoteAddress: "127.0.0.1:1" },
    sendLocalReply: (status: number, body?: string, o?: { details?: string }) =>
      replies.push(`${status} ${body} ${o?.details}`),
  } as unknown as StreamFilterCallbacks;
}

function routeWith(perFilter: Record<string, unknown>, vhost: Record<string, unknown> = {}): unknown {
  return {
    route: { typedPerFilterConfig: perFilter },
    vhost: { typedPerFilterConfig: vhost },
    config: { typedPerFilterConfig: {} },
  };
}

Deno.test("RbacFilter denies with 403 and the details, LOG only counts, per-route overrides win over the vhost", () => {
  const stats = new StatsStore();
  const ctx = { scope: stats.scope("http.x") } as unknown as FilterFactoryContext;
  const create = createRbacFactory(parseRbacConfig({ rules: getOnly }, "f"), ctx);
  const replies: string[] = [];
  const post = () => HeaderMap.from({ ":method": "POST", ":path": "/" });
  assertEquals(create(callbacks(null, replies)).decodeHeaders!(post(), true), "stop");
  assertEquals(replies, ["403 RBAC: access denied rbac_access_denied_matched_policy[none]"]);
  const log = { "@type": RBAC_PER_ROUTE_TYPE, rbac: { rules: { action: "LOG", ...getOnly } } };
  const off = { "@type": RBAC_PER_ROUTE_TYPE };
  const r = routeWith({ "envoy.filters.http.rbac": log }, { "envoy.filters.http.rbac": off });
  assertEquals(create(callbacks(r, replies)).decodeHeaders!(post(), true), "continue");
  assertEquals(
    create(callbacks(routeWith({}, { "envoy.filters.http.rbac": off }), replies)).decodeHeaders!(post(), true),
    "continue",
  );
  // A filter configured under another name: its RBACPerRoute entry is found by @type.
  assertEquals(create(callbacks(routeWith({ rbac: off }), replies)).decodeHeaders!(post(), true), "continue");
  assertEquals(replies.length, 1);
  assertEquals(stats.counter("http.x.rbac.denied").value, 1);
  assertEquals(stats.counter("http.x.rbac.not_logged").value, 1);
  assertEquals(stats.counter("http.x.rbac.allowed").value, 1, "LOG counts as allowed");
});

Deno.test("parseRbacConfig and parseRbacPerRoute name bad fields", () => {
  const e = (f: () => unknown) => assertThrows(f, ConfigError).message;
  assertEquals(
    e(() => parseRbacConfig({ rules: getOnly, matcher: {} }, "f")),
    "config: f.matcher: is not supported (use rules)",
  );
  assertEquals(e(() => parseRbacConfig({ rulez: {} }, "f")), "config: f.rulez: unknown field");
  assertEquals(
    e(() => parseRbacPerRoute({ "@type": "type.googleapis.com/x.Y" }, "p")),
    `config: p.@type: expected ${RBAC_PER_ROUTE_TYPE}, got "type.googleapis.com/x.Y"`,
  );
  assertEquals(parseRbacPerRoute({ "@type": RBAC_PER_ROUTE_TYPE }, "p"), null);
});
