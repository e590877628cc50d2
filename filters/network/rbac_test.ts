import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import type { NetConnection, NetworkFilterCallbacks, NetworkFilterContext } from "../../lib/api/network.ts";
import { StatsStore } from "../../lib/observe/stats.ts";
import { createNetworkRbacFactory, parseNetworkRbacConfig } from "./rbac.ts";

function conn(remoteAddress: string, closes: string[]): NetworkFilterCallbacks {
  const connection = {
    remoteAddress,
    localAddress: "127.0.0.1",
    localPort: 9000,
    secure: false,
    close: (o?: { reason?: string }) => closes.push(o?.reason ?? ""),
  } as unknown as NetConnection;
  return { connection, continueReading: () => {} };
}

const denyTen = {
  action: "DENY",
  policies: {
    ten: {
      permissions: [{ any: true }],
      principals: [{ direct_remote_ip: { address_prefix: "10.0.0.0", prefix_len: 8 } }],
    },
  },
};

Deno.test("network rbac checks on the first bytes (once) and closes a denied connection, naming the policy", () => {
  const stats = new StatsStore();
  const cfg = parseNetworkRbacConfig({ stat_prefix: "tcp.", rules: denyTen, shadow_rules: { action: "ALLOW" } }, "f");
  const create = createNetworkRbacFactory(cfg, { stats } as unknown as NetworkFilterContext);
  const closes: string[] = [];
  const ok = create(conn("192.0.2.1", closes));
  assertEquals([ok.onData(new Uint8Array(1), false), ok.onData(new Uint8Array(1), false)], ["continue", "continue"]);
  const bad = create(conn("10.1.1.1", closes));
  assertEquals(bad.onData(new Uint8Array(1), false), "stop");
  assertEquals(closes, ["rbac_access_denied_matched_policy[ten]"]);
  assertEquals(stats.counter("tcp.rbac.allowed").value, 1);
  assertEquals(stats.counter("tcp.rbac.denied").value, 1);
  assertEquals(stats.counter("tcp.rbac.shadow_denied").value, 2);
});

Deno.test("parseNetworkRbacConfig requires stat_prefix and rejects HTTP-only rules", () => {
  const e = (raw: unknown) => assertThrows(() => parseNetworkRbacConfig(raw, "f"), ConfigError).message;
  assertEquals(e({ rules: denyTen }), "config: f.stat_prefix: is required");
  assertEquals(
    e({
      stat_prefix: "s",
      rules: {
        policies: { p: { permissions: [{ url_path: { path: { exact: "/" } } }], principals: [{ any: true }] } },
      },
    }),
    "config: f.rules.policies.p.permissions[0].url_path: url_path does not apply to the network RBAC filter",
  );
  assertEquals(e({ stat_prefix: "s", enforcement_type: "SOMETIMES" }).startsWith("config: f.enforcement_type:"), true);
});
