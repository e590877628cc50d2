/**
 * A TCP echo upstream for network filter tests, and the object-config pieces that put Ferry's `tcp_proxy` in
 * front of it: serve with `startRawServer(echoConnection)` (tests/integration/_harness.ts), then chain
 * `tcpProxyFilter()` after the filters under test and list `echoCluster(port)`.
 */

type Obj = Record<string, unknown>;

/** Writes back every byte read on `c` until the peer closes or goes away, then closes `c`. */
export async function echoConnection(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      await c.write(buf.subarray(0, n));
    }
  } catch { /* peer gone */ }
  try {
    c.close();
  } catch { /* closed */ }
}

/** `envoy.filters.network.tcp_proxy` (stat prefix `tp`) to `cluster`. */
export function tcpProxyFilter(cluster = "echo"): Obj {
  return {
    name: "envoy.filters.network.tcp_proxy",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
      stat_prefix: "tp",
      cluster,
    },
  };
}

/** A STATIC cluster `name` of one endpoint, 127.0.0.1:`port`. */
export function echoCluster(port: number, name = "echo"): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    },
  };
}
