/**
 * xDS as a service mesh drives it:
 * - An Istio-shaped resource set over ADS reached with mutual TLS: a sidecar outbound listener (RDS by name,
 *   Istio's TypedStruct-wrapped telemetry filters `istio.metadata_exchange` / `istio.stats` and
 *   `envoy.filters.http.grpc_stats` accepted through the bootstrap's ignored-extensions knob, an unknown
 *   `is_optional` filter skipped), an EDS cluster whose TLS transport socket takes the workload certificate and
 *   root CA by SDS (`default`, `ROOTCA`, SPIFFE SAN checked), an inbound listener that requires that client
 *   certificate, and a route configuration that never arrives (`initial_fetch_timeout`: the listener starts with
 *   an empty table, 404). One request crosses outbound → mTLS → inbound → app.
 * - Per-type gRPC sources (`api_config_source` for LDS and CDS, no ADS), delta and state of the world.
 */
import { assert, assertEquals } from "../assert.ts";
import { freePort } from "../fakes/ports.ts";
import { mustOpenssl } from "../helpers/openssl.ts";
import { startControlPlane } from "../xds/control_plane_client.ts";
import { curl, itOpts, sleep, startFerry, startUpstream, stat } from "./_harness.ts";

type Obj = Record<string, unknown>;

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UDPA_TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct";
const ADS = { ads: {}, resource_api_version: "V3" };
const SPIFFE = "spiffe://cluster.local/ns/default/sa/reviews";

const dir = Deno.makeTempDirSync({ prefix: "ferry-istio-" });
const f = (n: string) => `${dir}/${n}`;

/** A mesh CA and leaves usable as client and server: the workload (SPIFFE SAN) and the control plane. */
async function meshPki(): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await mustOpenssl(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-subj", "/O=cluster.local"]);
  for (const [name, san] of [["workload", `URI:${SPIFFE},DNS:localhost`], ["istiod", "DNS:istiod,IP:127.0.0.1"]]) {
    Deno.writeTextFileSync(
      f(`${name}.ext`),
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n` +
        "extendedKeyUsage=serverAuth,clientAuth\n",
    );
    await mustOpenssl(["req", ...ec, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/O=${name}`]);
    await mustOpenssl([
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.crt"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      f(`${name}.ext`),
      "-out",
      f(`${name}.crt`),
    ]);
  }
}

const typedStruct = (typeUrl: string, value: Obj) => ({ "@type": UDPA_TYPED_STRUCT, type_url: typeUrl, value });

/** The TLS context an Istio sidecar uses: workload certificate and root CA by SDS, peer SAN checked. */
function meshTls(): Obj {
  return {
    tls_certificate_sds_secret_configs: [{ name: "default", sds_config: ADS }],
    combined_validation_context: {
      default_validation_context: {
        match_typed_subject_alt_names: [{ san_type: "URI", matcher: { prefix: "spiffe://cluster.local/" } }],
      },
      validation_context_sds_secret_config: { name: "ROOTCA", sds_config: ADS },
    },
    alpn_protocols: ["istio-peer-exchange", "istio", "http/1.1"],
  };
}

function istioSnapshot(version: string, ports: { outbound: number; inbound: number; late: number; app: number }) {
  const pem = (n: string) => Deno.readTextFileSync(f(n));
  const outboundCluster = "outbound|9080||reviews.default.svc.cluster.local";
  return {
    version,
    resources: {
      cds: [
        {
          name: outboundCluster,
          type: "EDS",
          connect_timeout: "1s",
          eds_cluster_config: { eds_config: ADS, service_name: outboundCluster },
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": UPSTREAM_TLS,
              sni: "outbound_.9080_._.reviews.default.svc.cluster.local",
              common_tls_context: meshTls(),
            },
          },
          metadata: { filter_metadata: { istio: { services: [{ host: "reviews.default.svc.cluster.local" }] } } },
        },
        {
          name: "inbound|9080||",
          type: "STATIC",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: "inbound|9080||",
            endpoints: [{
              lb_endpoints: [{
                endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: ports.app } } },
              }],
            }],
          },
        },
      ],
      eds: [{
        cluster_name: outboundCluster,
        endpoints: [{
          locality: { region: "r1", zone: "z1" },
          lb_endpoints: [{
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: ports.inbound } } },
            health_status: "HEALTHY",
            metadata: { filter_metadata: { istio: { workload: "reviews-v1;default;reviews;v1;Kubernetes" } } },
          }],
        }],
      }],
      lds: [
        {
          name: "0.0.0.0_9080",
          address: { socket_address: { address: "127.0.0.1", port_value: ports.outbound } },
          traffic_direction: "OUTBOUND",
          filter_chains: [{
            filters: [{
              name: "envoy.filters.network.http_connection_manager",
              typed_config: {
                "@type": HCM,
                stat_prefix: "outbound_0.0.0.0_9080",
                rds: { route_config_name: "9080", config_source: ADS },
                http_filters: [
                  {
                    name: "istio.metadata_exchange",
                    typed_config: typedStruct("type.googleapis.com/io.istio.http.peer_metadata.Config", {
                      upstream_discovery: [{ istio_headers: {} }],
                    }),
                  },
                  {
                    name: "envoy.filters.http.grpc_stats",
                    typed_config: {
                      "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                      emit_filter_state: true,
                    },
                  },
                  {
                    name: "envoy.filters.http.not_in_ferry",
                    is_optional: true,
                    typed_config: typedStruct("type.googleapis.com/example.NotInFerry", {}),
                  },
                  {
                    name: "istio.stats",
                    typed_config: typedStruct("type.googleapis.com/stats.PluginConfig", {}),
                  },
                  { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } },
                ],
              },
            }],
          }],
        },
        {
          name: "virtualInbound",
          address: { socket_address: { address: "127.0.0.1", port_value: ports.inbound } },
          traffic_direction: "INBOUND",
          filter_chains: [{
            transport_socket: {
              name: "envoy.transport_sockets.tls",
              typed_config: {
                "@type": DOWNSTREAM_TLS,
                require_client_certificate: true,
                common_tls_context: meshTls(),
              },
            },
            filters: [{
              name: "envoy.filters.network.http_connection_manager",
              typed_config: {
                "@type": HCM,
                stat_prefix: "inbound_0.0.0.0_9080",
                route_config: {
                  name: "inbound|9080||",
                  virtual_hosts: [{
                    name: "inbound|http|9080",
                    domains: ["*"],
                    routes: [{ match: { prefix: "/" }, route: { cluster: "inbound|9080||" } }],
                  }],
                },
                http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
              },
            }],
          }],
        },
        {
          name: "late",
          address: { socket_address: { address: "127.0.0.1", port_value: ports.late } },
          filter_chains: [{
            filters: [{
              name: "envoy.filters.network.http_connection_manager",
              typed_config: {
                "@type": HCM,
                stat_prefix: "late",
                rds: { route_config_name: "never", config_source: { ...ADS, initial_fetch_timeout: "1s" } },
                http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
              },
            }],
          }],
        },
      ],
      rds: [{
        name: "9080",
        virtual_hosts: [{
          name: "reviews.default.svc.cluster.local:9080",
          domains: ["reviews.default.svc.cluster.local", "reviews", "*"],
          routes: [{
            name: "default",
            match: { prefix: "/" },
            route: {
              cluster: outboundCluster,
              timeout: "0s",
              retry_policy: { retry_on: "connect-failure", num_retries: 2 },
            },
          }],
        }],
        validate_clusters: false,
      }],
      sds: [
        {
          name: "default",
          tls_certificate: {
            certificate_chain: { inline_string: pem("workload.crt") },
            private_key: { inline_string: pem("workload.key") },
          },
        },
        { name: "ROOTCA", validation_context: { trusted_ca: { inline_string: pem("ca.crt") } } },
      ],
    },
  };
}

Deno.test(
  "xds: an Istio-shaped sidecar config over mTLS ADS routes outbound → mTLS → inbound → app",
  itOpts,
  async () => {
    await meshPki();
    const app = await startUpstream((req) => new Response(`reviews ${req.url.pathname}`));
    const ports = { outbound: freePort(), inbound: freePort(), late: freePort(), app: app.port };
    const cp = await startControlPlane({
      tls: { cert: f("istiod.crt"), key: f("istiod.key"), ca: f("ca.crt") },
      snapshot: istioSnapshot("2024-01-01T00:00:00Z/1", ports),
    });
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      node: {
        id: "sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local",
        cluster: "reviews.default",
        metadata: { ISTIO_VERSION: "1.24.0", CLUSTER_ID: "Kubernetes", NAMESPACE: "default" },
        locality: { region: "r1", zone: "z1" },
      },
      bootstrap_extensions: [{
        name: "ferry.bootstrap.ignored_extensions",
        typed_config: {
          "@type": "type.googleapis.com/ferry.config.bootstrap.v1.IgnoredExtensions",
          names: ["istio.metadata_exchange", "istio.stats", "envoy.filters.http.grpc_stats"],
        },
      }],
      dynamic_resources: {
        ads_config: {
          api_type: "DELTA_GRPC",
          transport_api_version: "V3",
          grpc_services: [{ envoy_grpc: { cluster_name: "xds-grpc" } }],
          set_node_on_first_message_only: true,
        },
        lds_config: ADS,
        cds_config: ADS,
      },
      static_resources: {
        clusters: [{
          name: "xds-grpc",
          type: "STATIC",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: "xds-grpc",
            endpoints: [{
              lb_endpoints: [{
                endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: cp.grpcPort } } },
              }],
            }],
          },
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": UPSTREAM_TLS,
              sni: "istiod",
              common_tls_context: {
                tls_certificates: [{
                  certificate_chain: { filename: f("workload.crt") },
                  private_key: { filename: f("workload.key") },
                }],
                validation_context: { trusted_ca: { filename: f("ca.crt") } },
              },
            },
          },
        }],
      },
    });
    try {
      await ferry.server.initialized;
      const r = await curl(`http://127.0.0.1:${ports.outbound}/reviews/1`, [
        "-H",
        "host: reviews.default.svc.cluster.local:9080",
      ]);
      assertEquals(r.status, 200, r.stderr);
      assertEquals(r.body, "reviews /reviews/1");
      // The request crossed the inbound listener, over mTLS.
      assert((await stat(ferry, "http.inbound_0.0.0.0_9080.downstream_rq_total"))! >= 1);
      // The ignored telemetry filters were built as no-ops, each counted.
      assert((await stat(ferry, "http.outbound_0.0.0.0_9080.ignored_extension.istio.stats"))! >= 1);
      assert((await stat(ferry, "http.outbound_0.0.0.0_9080.ignored_extension.istio.metadata_exchange"))! >= 1);
      // The route configuration that never came: after its 1 s initial_fetch_timeout, the listener serves 404.
      let late = await curl(`http://127.0.0.1:${ports.late}/`);
      for (let i = 0; i < 60 && late.status !== 404; i++) {
        await sleep(100);
        late = await curl(`http://127.0.0.1:${ports.late}/`);
      }
      assertEquals(late.status, 404);
      const st = await cp.state();
      assertEquals(st.nodes[0]?.["id"], "sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local");
      for (const t of ["lds", "rds", "cds", "eds", "sds"]) assertEquals(st.types[t]?.nacks, 0, t);
    } finally {
      await ferry.stop();
      await cp.kill();
      await app.close();
    }
  },
);

for (const mode of ["GRPC", "DELTA_GRPC"] as const) {
  Deno.test(
    `xds ${mode}: listeners and clusters from their own gRPC services (api_config_source, no ADS)`,
    itOpts,
    async () => {
      const app = await startUpstream(() => new Response("api"));
      const port = freePort();
      const cp = await startControlPlane({
        snapshot: {
          version: "a1",
          resources: {
            cds: [{
              name: "app",
              connect_timeout: "1s",
              load_assignment: {
                cluster_name: "app",
                endpoints: [{
                  lb_endpoints: [{
                    endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: app.port } } },
                  }],
                }],
              },
            }],
            lds: [{
              name: "api",
              address: { socket_address: { address: "127.0.0.1", port_value: port } },
              filter_chains: [{
                filters: [{
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": HCM,
                    stat_prefix: "api",
                    route_config: {
                      virtual_hosts: [{
                        name: "a",
                        domains: ["*"],
                        routes: [{ match: { prefix: "/" }, route: { cluster: "app" } }],
                      }],
                    },
                    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
                  },
                }],
              }],
            }],
          },
        },
      });
      const api = {
        api_config_source: {
          api_type: mode,
          transport_api_version: "V3",
          grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
        },
        resource_api_version: "V3",
      };
      const ferry = await startFerry({
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
        dynamic_resources: { lds_config: api, cds_config: api },
        static_resources: {
          clusters: [{
            name: "xds",
            connect_timeout: "1s",
            load_assignment: {
              cluster_name: "xds",
              endpoints: [{
                lb_endpoints: [{
                  endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: cp.grpcPort } } },
                }],
              }],
            },
          }],
        },
      });
      try {
        await ferry.server.initialized;
        const r = await curl(`http://127.0.0.1:${port}/`);
        assertEquals(r.status, 200);
        assertEquals(r.body, "api");
        // Two streams: one per type.
        assertEquals((await cp.state()).connected_streams, 2);
      } finally {
        await ferry.stop();
        await cp.kill();
        await app.close();
      }
    },
  );
}
