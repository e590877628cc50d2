/**
 * The runtime API on a running server (what xDS will call): a route configuration replaced while a request is in
 * flight (that request finishes on the configuration it began with, new ones use the new one), and a cluster's
 * hosts replaced (new requests go to the new host, the removed host's in-flight request completes). Bad updates
 * are one-line config errors and change nothing. Listener and secret updates have their own tests
 * (listener_update_test.ts, secret_rotation_test.ts).
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { curl, itOpts, sleep, startFerry, startUpstream } from "./_harness.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

function routeConfig(cluster: string, tag: string) {
  return {
    name: "routes",
    response_headers_to_add: [{ header: { key: "x-config", value: tag } }],
    virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster } }] }],
  };
}

function staticCluster(name: string, port: number) {
  return {
    name,
    connect_timeout: "1s",
    type: "STATIC",
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}

function bootstrap(clusters: unknown[]) {
  return {
    static_resources: {
      listeners: [{
        name: "web",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": HCM,
              stat_prefix: "web",
              route_config: routeConfig("a", "v1"),
              http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
            },
          }],
        }],
      }],
      clusters,
    },
  };
}

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.message;
  }
  throw new Error("expected an error");
}

Deno.test(
  "Server.updateRouteConfig: new requests use the new routes, a request in flight finishes on its own",
  itOpts,
  async () => {
    const a = await startUpstream(async (r) => {
      if (r.url.pathname === "/slow") await sleep(600);
      return new Response("from a");
    });
    const b = await startUpstream(() => new Response("from b"));
    const f = await startFerry(bootstrap([staticCluster("a", a.port), staticCluster("b", b.port)]));
    try {
      const first = await curl(f.url("/"));
      assertEquals([first.body, first.headers["x-config"]], ["from a", "v1"]);
      const slow = curl(f.url("/slow"));
      await sleep(200); // the slow request has begun (routed with v1) and waits on upstream a
      assert(a.requests.some((r) => r.url.pathname === "/slow"), "the slow request reached a before the update");
      assertEquals(f.server.updateRouteConfig(routeConfig("b", "v2")), 1);
      const next = await curl(f.url("/"));
      assertEquals([next.body, next.headers["x-config"]], ["from b", "v2"]);
      const s = await slow;
      assertEquals([s.status, s.body, s.headers["x-config"]], [200, "from a", "v1"]);

      // Invalid, or a name nobody serves: one line naming the field, nothing changes.
      const bad = configError(() =>
        f.server.updateRouteConfig({
          name: "routes",
          virtual_hosts: [{
            name: "x",
            domains: ["*"],
            routes: [{ match: { prefix: "/" }, route: { cluster: "a" }, bogus: 1 }],
          }],
        })
      );
      assertMatch(bad, /^config: route_config\.virtual_hosts\[0\]\.routes\[0\]\.bogus: unknown field$/);
      const none = configError(() => f.server.updateRouteConfig({ ...routeConfig("a", "v3"), name: "elsewhere" }));
      assertMatch(none, /route_config\.name: no connection manager serves a route configuration named "elsewhere"/);
      const after = await curl(f.url("/"));
      assertEquals([after.body, after.headers["x-config"]], ["from b", "v2"]);
    } finally {
      await f.stop();
      await a.close();
      await b.close();
    }
  },
);

Deno.test(
  "Server.updateClusterHosts: traffic moves to the new host, the removed host's request completes",
  itOpts,
  async () => {
    const a = await startUpstream(async (r) => {
      if (r.url.pathname === "/slow") await sleep(600);
      return new Response("from a");
    });
    const b = await startUpstream(() => new Response("from b"));
    const f = await startFerry(bootstrap([staticCluster("a", a.port)]));
    try {
      assertEquals((await curl(f.url("/"))).body, "from a");
      const slow = curl(f.url("/slow"));
      await sleep(200);
      f.server.updateClusterHosts("a", staticCluster("a", b.port).load_assignment);
      assertEquals((await curl(f.url("/"))).body, "from b");
      assertEquals((await curl(f.url("/again"))).body, "from b");
      const s = await slow;
      assertEquals([s.status, s.body], [200, "from a"]);
      assertEquals(a.requests.filter((r) => r.url.pathname === "/again").length, 0);

      const unknown = configError(() =>
        f.server.updateClusterHosts("nope", staticCluster("nope", b.port).load_assignment)
      );
      assertMatch(unknown, /cluster "nope": no such cluster/);
      const notIp = configError(() =>
        f.server.updateClusterHosts("a", {
          endpoints: [{
            lb_endpoints: [{ endpoint: { address: { socket_address: { address: "example.com", port_value: 80 } } } }],
          }],
        })
      );
      assertMatch(notIp, /^config: cluster_load_assignment\.endpoints\[0\]\.lb_endpoints\[0\]/);
      assertEquals((await curl(f.url("/"))).body, "from b", "a bad update leaves the hosts as they were");
    } finally {
      await f.stop();
      await a.close();
      await b.close();
    }
  },
);
