/**
 * The embedded default configuration: what `ferry` runs with no config. Admin on 127.0.0.1:9901 and a listener
 * on 127.0.0.1:10000 answering a page that says Ferry is up and where the admin is. Loopback only: safe to run
 * anywhere.
 *
 * @module
 */

/** The welcome page served by the default listener. */
export const DEFAULT_PAGE = `Ferry is up.

This is the embedded default configuration: a listener on 127.0.0.1:10000 answering this page.
The admin API is at http://127.0.0.1:9901/ (try /ready, /stats, /config_dump, /clusters).

Run your own configuration with: ferry -c config.yaml   (Envoy v3 bootstrap, YAML or JSON)
`;

/** The default bootstrap as a JSON-compatible object. */
export function defaultBootstrap(): Record<string, unknown> {
  return {
    node: { id: "ferry-default", cluster: "ferry" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
    static_resources: {
      listeners: [{
        name: "default",
        address: { socket_address: { address: "127.0.0.1", port_value: 10000 } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type":
                "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stat_prefix: "default",
              route_config: {
                name: "default",
                virtual_hosts: [{
                  name: "default",
                  domains: ["*"],
                  routes: [{
                    match: { prefix: "/" },
                    direct_response: { status: 200, body: { inline_string: DEFAULT_PAGE } },
                  }],
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
      clusters: [],
    },
  };
}
