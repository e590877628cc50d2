import { assert, assertEquals, assertStrictEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import { parseRouteConfiguration } from "./route_config.ts";
import { RouteConfigProviders } from "./route_config_provider.ts";

/** A route configuration `name` sending every request to `cluster`. */
function config(name: string, cluster: string) {
  return parseRouteConfiguration({
    name,
    virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster } }] }],
  }, "route_config");
}

const req = () => new HeaderMap([":method", "GET", ":path", "/", ":authority", "x"]);

function clusterOf(table: { route(h: HeaderMap): unknown }): string | undefined {
  const r = table.route(req()) as { route: { action: { kind: string; cluster?: { name: string } } } } | null;
  return r?.route.action.kind === "route" ? r.route.action.cluster?.name : undefined;
}

Deno.test("RouteConfigProviders update swaps the snapshot for new lookups; a snapshot taken before stays as it was", () => {
  const providers = new RouteConfigProviders();
  const p = providers.provide(config("routes", "a"));
  assertEquals(p.version, 1);
  assertEquals(p.name, "routes");
  const before = p.current; // what a stream in flight holds
  assertEquals(providers.update(config("routes", "b")), 1);
  assertEquals(p.version, 2);
  assertEquals(clusterOf(p.current), "b", "new streams route with the new configuration");
  assertEquals(clusterOf(before), "a", "a stream that began earlier keeps routing with its snapshot");
  assert(before !== p.current);
});

Deno.test("RouteConfigProviders updates every provider of that name and no other", () => {
  const providers = new RouteConfigProviders();
  const a1 = providers.provide(config("shared", "a"));
  const a2 = providers.provide(config("shared", "a"));
  const other = providers.provide(config("other", "a"));
  const otherTable = other.current;
  assertEquals(providers.update(config("shared", "b")), 2);
  assertEquals(clusterOf(a1.current), "b");
  assertEquals(clusterOf(a2.current), "b");
  assertStrictEquals(other.current, otherTable);
  assertEquals(other.version, 1);
});

Deno.test("RouteConfigProviders update of a name nobody serves changes nothing and says 0", () => {
  const providers = new RouteConfigProviders();
  const p = providers.provide(config("routes", "a"));
  assertEquals(providers.update(config("nobody", "b")), 0);
  assertEquals(p.version, 1);
  assertEquals(clusterOf(p.current), "a");
});
