import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { HeaderMap } from "../api/headers.ts";
import { selectCluster } from "./actions.ts";
import { applyRequestMutations, applyResponseMutations, stripInternalOnlyHeaders } from "./mutations.ts";
import { RouteTable } from "./route_table.ts";
import { config, req } from "../../tests/helpers/router.ts";

const add = (key: string, value: string, extra: Record<string, unknown> = {}) => ({ header: { key, value }, ...extra });
const overwrite = (key: string, value: string) => add(key, value, { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" });

function threeLevels(mostSpecificWins: boolean) {
  return new RouteTable(config({
    most_specific_header_mutations_wins: mostSpecificWins,
    request_headers_to_add: [overwrite("x-level", "config"), add("x-all", "config")],
    response_headers_to_add: [overwrite("x-level", "config")],
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      request_headers_to_add: [overwrite("x-level", "vhost"), add("x-all", "vhost")],
      response_headers_to_add: [overwrite("x-level", "vhost")],
      routes: [{
        match: { prefix: "/" },
        route: { cluster: "c" },
        request_headers_to_add: [overwrite("x-level", "route"), add("x-all", "route")],
        response_headers_to_add: [overwrite("x-level", "route")],
      }],
    }],
  }));
}

Deno.test("applyRequestMutations applies route, then virtual host, then route configuration", () => {
  const t = threeLevels(false);
  const h = req("/");
  applyRequestMutations(t.route(h)!, h);
  assertEquals(h.getAll("x-level"), ["config"]);
  assertEquals(h.getAll("x-all"), ["route", "vhost", "config"]);
  const resp = HeaderMap.from({ ":status": "200" });
  applyResponseMutations(t.route(h)!, resp);
  assertEquals(resp.getAll("x-level"), ["config"]);
});

Deno.test("applyRequestMutations with most_specific_header_mutations_wins lets the route win", () => {
  const t = threeLevels(true);
  const h = req("/");
  applyRequestMutations(t.route(h)!, h);
  assertEquals(h.getAll("x-level"), ["route"]);
  assertEquals(h.getAll("x-all"), ["config", "vhost", "route"]);
  const resp = HeaderMap.from({ ":status": "200" });
  applyResponseMutations(t.route(h)!, resp);
  assertEquals(resp.getAll("x-level"), ["route"]);
});

Deno.test("applyRequestMutations applies the weighted cluster's level first", () => {
  const t = new RouteTable(config({
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      routes: [{
        match: { prefix: "/" },
        route: {
          weighted_clusters: {
            clusters: [{
              name: "a",
              weight: 1,
              request_headers_to_add: [add("x-order", "cluster")],
              response_headers_to_add: [add("x-order", "cluster")],
              request_headers_to_remove: ["x-drop"],
            }],
          },
        },
        request_headers_to_add: [add("x-order", "route")],
        response_headers_to_add: [add("x-order", "route")],
      }],
    }],
  }));
  const h = req("/", "a", { "x-drop": "1" });
  const hit = t.route(h)!;
  if (hit.route.action.kind !== "route") throw new Error("route expected");
  const cluster = selectCluster(hit.route.action, h);
  applyRequestMutations(hit, h, { cluster });
  assertEquals(h.getAll("x-order"), ["cluster", "route"]);
  assertEquals(h.has("x-drop"), false);
  const resp = new HeaderMap();
  applyResponseMutations(hit, resp, { cluster });
  assertEquals(resp.getAll("x-order"), ["cluster", "route"]);
});

function oneRoute(routeExtra: Record<string, unknown>) {
  return new RouteTable(config({
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      routes: [{ match: { prefix: "/" }, route: { cluster: "c" }, ...routeExtra }],
    }],
  }));
}

Deno.test("applyRequestMutations honours each append action", () => {
  const t = oneRoute({
    request_headers_to_add: [
      add("x-append", "new"),
      add("x-absent", "new", { append_action: "ADD_IF_ABSENT" }),
      add("x-absent2", "new", { append_action: "ADD_IF_ABSENT" }),
      add("x-ow", "new", { append_action: "OVERWRITE_IF_EXISTS" }),
      add("x-ow-missing", "new", { append_action: "OVERWRITE_IF_EXISTS" }),
      add("x-owa", "new", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }),
      add("x-owa-missing", "new", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }),
      add("x-legacy", "new", { append: false }),
    ],
  });
  const h = req("/", "a", {
    "x-append": "old",
    "x-absent": "old",
    "x-ow": "old",
    "x-owa": "old",
    "x-legacy": "old",
  });
  h.add("x-ow", "old2");
  applyRequestMutations(t.route(h)!, h);
  assertEquals(h.getAll("x-append"), ["old", "new"]);
  assertEquals(h.getAll("x-absent"), ["old"]);
  assertEquals(h.getAll("x-absent2"), ["new"]);
  assertEquals(h.getAll("x-ow"), ["new"]);
  assertEquals(h.getAll("x-ow-missing"), []);
  assertEquals(h.getAll("x-owa"), ["new"]);
  assertEquals(h.getAll("x-owa-missing"), ["new"]);
  assertEquals(h.getAll("x-legacy"), ["new"]);
});

Deno.test("applyRequestMutations removes before adding and skips empty values unless kept", () => {
  const t = oneRoute({
    request_headers_to_remove: ["x-a"],
    request_headers_to_add: [
      add("x-a", "added"),
      add("x-empty", ""),
      add("x-kept", "", { keep_empty_value: true }),
      add("x-missing", "%REQ(x-none)%"),
    ],
  });
  const h = req("/", "a", { "x-a": "orig" });
  applyRequestMutations(t.route(h)!, h);
  assertEquals(h.getAll("x-a"), ["added"]);
  assertEquals(h.has("x-empty"), false);
  assertEquals(h.getAll("x-kept"), [""]);
  assertEquals(h.has("x-missing"), false);
});

Deno.test("applyRequestMutations formats values from the request and the stream info", () => {
  const t = oneRoute({
    request_headers_to_add: [
      add("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
      add("x-full", "%DOWNSTREAM_REMOTE_ADDRESS% via %DOWNSTREAM_LOCAL_ADDRESS% %PROTOCOL% 100%%"),
      add("x-ua", "ua=%REQ(user-agent)%"),
      add("x-start", "%START_TIME(%s)%"),
    ],
    response_headers_to_add: [
      add("x-up", "%UPSTREAM_REMOTE_ADDRESS%"),
      add("x-req", "%REQ(x-request-id)%"),
      add("x-resp", "%RESP(server)%"),
    ],
  });
  const h = req("/", "a", { "user-agent": "curl/8", "x-request-id": "abc" });
  const info = {
    downstreamRemoteAddress: "10.0.0.1:5555",
    downstreamLocalAddress: "10.0.0.2:80",
    protocol: "HTTP/1.1",
    startTime: 1_700_000_000_123,
    upstreamHost: "10.1.0.1:8080",
    requestHeaders: h,
  };
  const hit = t.route(h)!;
  applyRequestMutations(hit, h, { info });
  assertEquals(h.get("x-client"), "10.0.0.1");
  assertEquals(h.get("x-full"), "10.0.0.1:5555 via 10.0.0.2:80 HTTP/1.1 100%");
  assertEquals(h.get("x-ua"), "ua=curl/8");
  assertEquals(h.get("x-start"), "1700000000");
  const resp = HeaderMap.from({ ":status": "200", server: "nginx" });
  applyResponseMutations(hit, resp, { info });
  assertEquals([resp.get("x-up"), resp.get("x-req"), resp.get("x-resp")], ["10.1.0.1:8080", "abc", "nginx"]);
});

Deno.test("stripInternalOnlyHeaders removes the configured headers", () => {
  const c = config({ virtual_hosts: [], internal_only_headers: ["X-Internal"] });
  const h = req("/", "a", { "x-internal": "1", "x-other": "2" });
  stripInternalOnlyHeaders(c, h);
  assertEquals([h.has("x-internal"), h.has("x-other")], [false, true]);
});

Deno.test("applyHeaderMutation sets overwrites before appends, and the last overwrite of a name wins", () => {
  const t = oneRoute({
    request_headers_to_add: [
      add("x-a", "append"),
      add("x-a", "first", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }),
      add("x-a", "second", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }),
      add("x-b", "new", { append_action: "ADD_IF_ABSENT" }),
      add("x-b", "again", { append_action: "ADD_IF_ABSENT" }),
      add("x-copy", "%REQ(x-b)%"),
    ],
  });
  const h = req("/", "a", { "x-a": "orig" });
  applyRequestMutations(t.route(h)!, h);
  assertEquals(h.getAll("x-a"), ["second", "append"]);
  // Both ADD_IF_ABSENT entries are decided on the headers before this level's additions, as in Envoy.
  assertEquals(h.getAll("x-b"), ["new", "again"]);
  assertEquals(h.has("x-copy"), false, "formats see the headers before this level's additions");
});
