/**
 * Probe for gc_retention_test.ts, run as its own process with `--expose-gc --trace-gc-nvp`: starts Ferry in-process
 * with a plain HTTP listener and a TLS 1.3-SM path (a tcp_proxy listener whose cluster speaks TLS 1.3-SM to a GM
 * listener of the same Ferry), makes `count` curl connections through the path named by `mode` (`overlap`: `count`
 * TCP connections to the plain listener, 20 open at a time, opened and closed in turn), then forces two scavenges. V8 prints each collection on stdout; the test reads what the last scavenge promoted: what the
 * connections left reachable for two scavenges although every one of them was closed.
 *
 * Usage: gc_probe.ts <plain|gm|overlap> <count> <pki dir>
 * @module
 */
import { directResponseHcm, startFerry } from "./_harness.ts";
import { freePort } from "../fakes/ports.ts";

const [mode, countArg, pki] = Deno.args;
const count = Number(countArg);
const gc = (globalThis as { gc?: (o?: { type: string }) => void }).gc;
if (!gc || !["plain", "gm", "overlap"].includes(mode!) || !(count > 0) || !pki) {
  console.error("usage: --v8-flags=--expose-gc gc_probe.ts <plain|gm|overlap> <count> <pki dir>");
  Deno.exit(2);
}
const pair = (n: string) => ({
  certificate_chain: { filename: `${pki}/${n}.crt` },
  private_key: { filename: `${pki}/${n}.key` },
});
const GM = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
const hcm = directResponseHcm("p");
const addr = (port: number) => ({ socket_address: { address: "127.0.0.1", port_value: port } });
const gmPort = freePort();
const ferry = await startFerry({
  static_resources: {
    listeners: [
      { name: "plain", address: addr(0), filter_chains: [{ filters: [hcm] }] },
      {
        name: "gm",
        address: addr(gmPort),
        filter_chains: [{
          transport_socket: {
            name: "ferry.transport_sockets.gm",
            typed_config: { "@type": GM, versions: ["TLSv1.3"], certificate: pair("server") },
          },
          filters: [hcm],
        }],
      },
      {
        name: "front",
        address: addr(0),
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.tcp_proxy",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
              stat_prefix: "front",
              cluster: "gm",
            },
          }],
        }],
      },
    ],
    clusters: [{
      name: "gm",
      type: "STATIC",
      connect_timeout: "2s",
      transport_socket: {
        name: "ferry.transport_sockets.gm",
        typed_config: {
          "@type": GM,
          versions: ["TLSv1.3"],
          trusted_ca: { filename: `${pki}/ca.crt` },
          sni: "localhost",
        },
      },
      load_assignment: { cluster_name: "gm", endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(gmPort) } }] }] },
    }],
  },
});

/** `n` connections to the plain listener, `open` at a time: each new one closes the oldest. */
async function overlapping(n: number, open = 20): Promise<void> {
  const ring: Deno.TcpConn[] = [];
  const port = ferry.port("plain");
  for (let i = 0; i < n; i++) {
    ring.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    if (ring.length > open) ring.shift()!.close();
    // Let Ferry accept and see closes as they come (without this it would take them in one batch at the end).
    await new Promise((r) => setTimeout(r, 0));
  }
  for (const c of ring) c.close();
}

/** `n` requests, each on its own connection (`Connection: close`), from one curl. */
async function requests(n: number): Promise<void> {
  if (mode === "overlap") return await overlapping(n);
  const url = ferry.url("/", mode === "plain" ? "plain" : "front");
  const out = await new Deno.Command("curl", {
    args: ["-s", "-w", "%{http_code}\\n", "-H", "Connection: close", ...Array(n).fill(["-o", "/dev/null", url]).flat()],
    stdout: "piped",
    stderr: "null",
  }).output();
  const codes = new TextDecoder().decode(out.stdout).trim().split("\n");
  const ok = codes.filter((c) => c === "200").length;
  if (ok !== n) throw new Error(`${n - ok} of ${n} requests failed: ${codes.join(" ")}`);
}

try {
  await requests(Math.min(count, 50)); // compiled and warm: first-call allocations are not what is measured
  gc(); // a full collection: nothing dead is left in the old generation
  gc({ type: "minor" });
  await requests(count);
  await new Promise((r) => setTimeout(r, 200)); // closes reach Ferry
  gc({ type: "minor" });
  gc({ type: "minor" });
} finally {
  await ferry.stop();
}
