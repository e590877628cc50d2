/**
 * File-based dynamic configuration (`path_config_source`, Envoy's file xDS): listeners and clusters read from
 * watched files at start, and again when a file is replaced by an atomic rename or edited in place; a file that
 * does not parse, or a resource that does not validate, is rejected (counted in `update_rejected`) and the
 * previous config keeps serving; a listener dropped from the file is removed.
 */
import { assert, assertEquals } from "../assert.ts";
import { freePort } from "../fakes/ports.ts";
import { curl, itOpts, startFerry, startUpstream, stat, waitFor } from "./_harness.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

function lds(version: string, port: number, tag: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version_info: version,
    resources: [{
      "@type": LISTENER,
      name: "files",
      address: { socket_address: { address: "127.0.0.1", port_value: port } },
      filter_chains: [{
        filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": HCM,
            stat_prefix: "files",
            route_config: {
              name: "local",
              virtual_hosts: [{
                name: "all",
                domains: ["*"],
                routes: [{ match: { prefix: "/" }, route: { cluster: "up" } }],
                response_headers_to_add: [{ header: { key: "x-tag", value: tag } }],
              }],
            },
            http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
            ...extra,
          },
        }],
      }],
    }],
  });
}

function cds(version: string, upstreamPort: number): string {
  return `version_info: "${version}"
resources:
- "@type": ${CLUSTER}
  name: up
  connect_timeout: 1s
  load_assignment:
    cluster_name: up
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} } } } }] }]
`;
}

Deno.test(
  "path_config_source: files load, reload on rename and edit, bad files are rejected while serving",
  itOpts,
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "ferry-xds-file-" });
    const up = await startUpstream(() => new Response("up"));
    const port = freePort();
    Deno.writeTextFileSync(`${dir}/lds.json`, lds("1", port, "one"));
    Deno.writeTextFileSync(`${dir}/cds.yaml`, cds("1", up.port));
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      dynamic_resources: {
        lds_config: { path_config_source: { path: `${dir}/lds.json` } },
        cds_config: { path_config_source: { path: `${dir}/cds.yaml` } },
      },
    });
    const url = `http://127.0.0.1:${port}/`;
    try {
      await ferry.server.initialized;
      const first = await curl(url);
      assertEquals(first.status, 200);
      assertEquals(first.body, "up");
      assertEquals(first.headers["x-tag"], "one");

      // An atomic replace (write aside, rename over), as config management tools do.
      Deno.writeTextFileSync(`${dir}/lds.json.tmp`, lds("2", port, "two"));
      Deno.renameSync(`${dir}/lds.json.tmp`, `${dir}/lds.json`);
      await waitFor("the renamed file", async () => (await curl(url)).headers["x-tag"] === "two");

      // An edit in place.
      Deno.writeTextFileSync(`${dir}/lds.json`, lds("3", port, "three"));
      await waitFor("the edited file", async () => (await curl(url)).headers["x-tag"] === "three");

      // Not YAML at all, then a listener with an invalid field: both rejected, the last good config serves.
      const rejected = (await stat(ferry, "listener_manager.lds.update_rejected")) ?? 0;
      Deno.writeTextFileSync(`${dir}/lds.json`, "{ not: [json");
      await waitFor(
        "the rejection",
        async () => (await stat(ferry, "listener_manager.lds.update_rejected"))! > rejected,
      );
      Deno.writeTextFileSync(`${dir}/lds.json`, lds("4", port, "four", { codec_type: "HTTP9" }));
      await waitFor(
        "the second rejection",
        async () => (await stat(ferry, "listener_manager.lds.update_rejected"))! > rejected + 1,
      );
      const still = await curl(url);
      assertEquals(still.status, 200);
      assertEquals(still.headers["x-tag"], "three");
      const dump = await (await fetch(`${ferry.adminUrl}/config_dump?resource=dynamic_listeners`)).json();
      assertEquals(dump.configs[0].active_state.version_info, "3");

      // A listener dropped from the file is removed.
      Deno.writeTextFileSync(`${dir}/lds.json`, JSON.stringify({ version_info: "5", resources: [] }));
      await waitFor("the listener gone", async () => (await curl(url)).code !== 0);
      assert(ferry.server.listener("files") === undefined);
    } finally {
      await ferry.stop();
      await up.close();
    }
  },
);
