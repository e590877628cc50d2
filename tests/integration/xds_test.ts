/**
 * xDS end to end: a real ADS server (`tests/xds/control_plane.ts`, grpc-js + Envoy's protos, its own process) drives
 * a running Ferry, state-of-the-world and delta. Per mode, in order on one Ferry:
 * initial config of all five types (listener with RDS, EDS cluster, HTTPS listener and GM listener with SDS
 * certificates) then traffic; SDS rotation reaching new handshakes (native and GM); a route change under `wrk`
 * with zero failed requests; EDS host churn under `wrk` with zero failed requests; a bad resource NACKed with the
 * field-path error while the old config keeps serving; a cluster removed → 503 with the `NC` flag; the control
 * plane killed (Ferry keeps serving) and restarted (Ferry resyncs to a new version).
 */
import { assert, assertEquals } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { parseCertificate } from "../../lib/crypto/x509.ts";
import { freePort } from "../fakes/ports.ts";
import { gmConnect } from "../helpers/gm_client.ts";
import { type ControlPlane, type SnapshotInput, startControlPlane } from "../xds/control_plane_client.ts";
import { curl, itOpts, sleep, startFerry, startUpstream, stat, type TestFerry, waitFor } from "./_harness.ts";

type Obj = Record<string, unknown>;

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const GM_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
const ADS = { ads: {}, resource_api_version: "V3" };

const pkiOne = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
const pkiTwo = generateTestPki({ gm: true, hosts: ["localhost"], ips: ["127.0.0.1"] });
const pair = (pki: Record<string, string>, name: string) => ({
  certificate_chain: { inline_string: pki[`${name}.crt`]! },
  private_key: { inline_string: pki[`${name}.key`]! },
});

function hcm(prefix: string, accessLog?: string): Obj[] {
  return [{
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": HCM,
      stat_prefix: prefix,
      rds: { route_config_name: "routes", config_source: ADS },
      http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
      ...(accessLog
        ? {
          access_log: [{
            name: "envoy.access_loggers.file",
            typed_config: {
              "@type": FILE_LOG,
              path: accessLog,
              log_format: { text_format: "%RESPONSE_CODE% %RESPONSE_FLAGS%\n" },
            },
          }],
        }
        : {}),
    },
  }];
}

interface World {
  ports: { http: number; https: number; gm: number };
  upstreams: number[];
  accessLog: string;
}

/** The snapshot: listeners http/https/gm (RDS "routes", SDS certificates), EDS cluster "web", secrets. */
function snapshot(w: World, version: string, o: {
  header?: string;
  endpoints?: number[];
  pki?: Record<string, string>;
  clusters?: Obj[];
  withoutCluster?: boolean;
} = {}): SnapshotInput {
  const pki = o.pki ?? pkiOne;
  const sds = (name: string) => ({ name, sds_config: ADS });
  const listener = (name: string, port: number, extra: Obj = {}) => ({
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{ filters: hcm(name, name === "http" ? w.accessLog : undefined), ...extra }],
  });
  return {
    version,
    resources: {
      lds: [
        listener("http", w.ports.http),
        listener("https", w.ports.https, {
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": DOWNSTREAM_TLS,
              common_tls_context: { tls_certificate_sds_secret_configs: [sds("ecdsa")] },
            },
          },
        }),
        listener("gm", w.ports.gm, {
          transport_socket: {
            name: "ferry.transport_sockets.gm",
            typed_config: {
              "@type": GM_TYPE,
              versions: ["TLSv1.3", "TLCP"],
              certificate_sds_secret_config: sds("gm_cert"),
              sign_certificate_sds_secret_config: sds("gm_sign"),
              enc_certificate_sds_secret_config: sds("gm_enc"),
              alpn_protocols: ["http/1.1"],
            },
          },
        }),
      ],
      rds: [{
        name: "routes",
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster: "web", timeout: "5s" } }],
          response_headers_to_add: [{ header: { key: "x-route-version", value: o.header ?? version } }],
        }],
      }],
      cds: o.withoutCluster ? [] : o.clusters ?? [{
        name: "web",
        type: "EDS",
        connect_timeout: "1s",
        eds_cluster_config: { eds_config: ADS },
      }],
      eds: o.withoutCluster ? [] : [{
        cluster_name: "web",
        endpoints: [{
          lb_endpoints: (o.endpoints ?? [w.upstreams[0]!]).map((port) => ({
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
          })),
        }],
      }],
      sds: [
        { name: "ecdsa", tls_certificate: pair(pki, "server_ecdsa") },
        { name: "gm_cert", tls_certificate: pair(pki, "server") },
        { name: "gm_sign", tls_certificate: pair(pki, "server_sign") },
        { name: "gm_enc", tls_certificate: pair(pki, "server_enc") },
      ],
    },
  };
}

function bootstrap(mode: "GRPC" | "DELTA_GRPC", cpPort: number): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    node: { id: `ferry-${mode}`, cluster: "test", metadata: { "ISTIO_VERSION": "1.24.0" } },
    dynamic_resources: {
      ads_config: {
        api_type: mode,
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ...ADS, initial_fetch_timeout: "10s" },
      cds_config: { ...ADS, initial_fetch_timeout: "10s" },
    },
    static_resources: {
      clusters: [{
        name: "xds",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
          cluster_name: "xds",
          endpoints: [{
            lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: cpPort } } } }],
          }],
        },
      }],
    },
  };
}

/** Runs wrk for `seconds`; returns [requests, non-2xx, socket errors]. */
async function wrk(url: string, seconds: number): Promise<{ requests: number; bad: number; errors: string }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c8", `-d${seconds}s`, "--timeout", "3s", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const requests = Number(text.match(/(\d+) requests in/)?.[1] ?? "0");
  const bad = Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? "0");
  const errors = text.match(/Socket errors: .*/)?.[0] ?? "";
  return { requests, bad, errors };
}

/** The DER of the certificate `openssl s_client` gets from `port`. */
async function peerDer(port: number): Promise<Uint8Array> {
  const out = await new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const pem = new TextDecoder().decode(out.stdout).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)
    ?.[0];
  if (!pem) throw new Error("s_client got no certificate");
  return parseCertificate(pem).der;
}

async function acked(cp: ControlPlane, type: string, version: string): Promise<void> {
  const r = await cp.waitAcked(type, version, { timeoutMs: 15_000 });
  if (!("acked" in r)) throw new Error(`${type} ${version} was NACKed: ${r.nacked}`);
}

const ALL = ["cds", "eds", "lds", "rds", "sds"];

for (const mode of ["GRPC", "DELTA_GRPC"] as const) {
  Deno.test(
    `xds ${mode}: all five types, rotation, changes under load, NACK, removal, control plane restart`,
    itOpts,
    async (t) => {
      const ups = await Promise.all([0, 1].map((i) => startUpstream(() => new Response(`up${i}`))));
      const dir = Deno.makeTempDirSync({ prefix: "ferry-xds-" });
      const w: World = {
        ports: { http: freePort(), https: freePort(), gm: freePort() },
        upstreams: ups.map((u) => u.port),
        accessLog: `${dir}/access.log`,
      };
      const cp = await startControlPlane({ snapshot: snapshot(w, "v1") });
      let ferry: TestFerry | undefined;
      let cp2: ControlPlane | undefined;
      try {
        ferry = await startFerry(bootstrap(mode, cp.grpcPort));
        const f = ferry;
        await f.server.initialized;
        const http = `http://127.0.0.1:${w.ports.http}/`;

        await t.step("initial config of all five types, then traffic", async () => {
          for (const type of ALL) await acked(cp, type, "v1");
          const r = await curl(http);
          assertEquals(r.status, 200);
          assertEquals(r.body, "up0");
          assertEquals(r.headers["x-route-version"], "v1");
          Deno.writeTextFileSync(`${dir}/ca.crt`, pkiOne["ca_ecdsa.crt"]!);
          const s = await curl(`https://localhost:${w.ports.https}/`, [
            "--cacert",
            `${dir}/ca.crt`,
            "--resolve",
            `localhost:${w.ports.https}:127.0.0.1`,
          ]);
          assertEquals(s.status, 200);
          const gm = await gmConnect(w.ports.gm, "TLSv1.3");
          assertEquals(gm.peer, parseCertificate(pkiOne["server.crt"]!).der);
          assertEquals(await gm.get(), "up0");
          gm.conn.close();
          const st = await cp.state();
          assertEquals(st.nodes[0]?.["id"], `ferry-${mode}`);
          assertEquals(st.nodes[0]?.["user_agent_name"], "ferry");
          assertEquals(await stat(f, "control_plane.connected_state"), 1);
          assertEquals(await stat(f, "listener_manager.lds.update_success"), 1);
          const text = await (await fetch(`${f.adminUrl}/stats?filter=version_text`)).text();
          if (mode === "GRPC") assert(text.includes(`cluster_manager.cds.version_text: "v1"`), text);
          else assert(/listener_manager\.lds\.version_text: ".+"/.test(text), text);
          const dump = await (await fetch(`${f.adminUrl}/config_dump?resource=dynamic_active_clusters`)).json();
          assertEquals(dump.configs[0].cluster.name, "web");
          assertEquals(typeof dump.configs[0].version_info, "string");
          const eds = await (await fetch(`${f.adminUrl}/config_dump?include_eds`)).json();
          assert(JSON.stringify(eds).includes("EndpointsConfigDump"));
        });

        await t.step("SDS rotation reaches new handshakes (native and GM)", async () => {
          assertEquals(await peerDer(w.ports.https), parseCertificate(pkiOne["server_ecdsa.crt"]!).der);
          await cp.setSnapshot(snapshot(w, "v2", { pki: pkiTwo }));
          await acked(cp, "sds", "v2");
          assertEquals(await peerDer(w.ports.https), parseCertificate(pkiTwo["server_ecdsa.crt"]!).der);
          for (const [version, file] of [["TLSv1.3", "server"], ["TLCP", "server_sign"]] as const) {
            const gm = await gmConnect(w.ports.gm, version);
            assertEquals(gm.peer, parseCertificate(pkiTwo[`${file}.crt`]!).der);
            gm.conn.close();
          }
        });

        await t.step("a route change under wrk: zero failed requests", async () => {
          const load = wrk(http, 3);
          await sleep(1000);
          await cp.setSnapshot(snapshot(w, "v3", { pki: pkiTwo }));
          await acked(cp, "rds", "v3");
          const r = await load;
          assert(r.requests > 100, `wrk made ${r.requests} requests`);
          assertEquals(r.bad, 0);
          assertEquals(r.errors, "");
          assertEquals((await curl(http)).headers["x-route-version"], "v3");
        });

        await t.step("EDS host churn under wrk: zero failed requests", async () => {
          const load = wrk(http, 3);
          const sets = [[0, 1], [1], [0, 1], [0], [1], [0]];
          for (const [i, set] of sets.entries()) {
            await sleep(350);
            const v = `v4.${i}`;
            await cp.setSnapshot(
              snapshot(w, v, { pki: pkiTwo, header: "v3", endpoints: set.map((j) => w.upstreams[j]!) }),
            );
            await acked(cp, "eds", v);
          }
          const r = await load;
          assert(r.requests > 100, `wrk made ${r.requests} requests`);
          assertEquals(r.bad, 0);
          assertEquals(r.errors, "");
          assertEquals((await curl(http)).body, "up0");
        });

        await t.step("a bad resource is NACKed with the field path; the old config keeps serving", async () => {
          const bad = snapshot(w, "v5", {
            pki: pkiTwo,
            header: "v5",
            clusters: [{ name: "web", type: "EDS", connect_timeout: "-1s", eds_cluster_config: { eds_config: ADS } }],
          });
          await cp.setSnapshot(bad);
          const r = await cp.waitAcked("cds", "v5", { timeoutMs: 15_000 });
          assert("nacked" in r, "the bad cluster was ACKed");
          assert(r.nacked.includes(`cluster "web".connect_timeout`), r.nacked);
          assertEquals((await curl(http)).status, 200);
          assert((await stat(f, "cluster_manager.cds.update_rejected"))! >= 1);
          const dump = await (await fetch(`${f.adminUrl}/config_dump?resource=dynamic_active_clusters`)).json();
          assertEquals(dump.configs[0].cluster.connect_timeout, "1s");
        });

        await t.step("a cluster removed: 503 with NC", async () => {
          await cp.setSnapshot(snapshot(w, "v6", { pki: pkiTwo, withoutCluster: true }));
          await acked(cp, "cds", "v6");
          await waitFor("503", async () => (await curl(http)).status === 503);
          await waitFor("the NC flag in the access log", () => {
            try {
              return Promise.resolve(Deno.readTextFileSync(w.accessLog).includes("503 NC"));
            } catch {
              return Promise.resolve(false);
            }
          });
          await cp.setSnapshot(snapshot(w, "v7", { pki: pkiTwo }));
          await acked(cp, "cds", "v7");
          await waitFor("the cluster back", async () => (await curl(http)).status === 200);
        });

        await t.step("the control plane killed: Ferry keeps serving; restarted: Ferry resyncs", async () => {
          const port = cp.grpcPort;
          await cp.kill();
          await waitFor("disconnected", async () => (await stat(f, "control_plane.connected_state")) === 0);
          for (let i = 0; i < 5; i++) assertEquals((await curl(http)).status, 200);
          // A new control plane process on the same port (what a restarted management server looks like).
          cp2 = await startControlPlane({ port, snapshot: snapshot(w, "v8", { pki: pkiTwo }) });
          await acked(cp2, "rds", "v8");
          await waitFor("v8 routes", async () => (await curl(http)).headers["x-route-version"] === "v8");
          assertEquals(await stat(f, "control_plane.connected_state"), 1);
        });
      } finally {
        await ferry?.stop();
        await cp.kill();
        await cp2?.kill();
        for (const u of ups) await u.close();
      }
    },
  );
}
