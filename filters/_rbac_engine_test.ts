import { assertEquals, assertThrows } from "../tests/assert.ts";
import { ConfigError } from "../lib/api/errors.ts";
import { HeaderMap } from "../lib/api/headers.ts";
import { generateTestPki } from "../lib/crypto/certs_command.ts";
import { pemDecodeAll } from "../lib/crypto/pem.ts";
import { certificateIdentities, evaluateRbac, parseRbacRules, type RbacInput } from "./_rbac_engine.ts";

const base: RbacInput = {
  directRemoteIp: "10.1.2.3",
  remoteIp: "192.168.0.9",
  localIp: "127.0.0.1",
  localPort: 8080,
  sni: "api.example.com",
  peerCertificates: undefined,
  headers: HeaderMap.from({ ":method": "GET", ":path": "/admin/x?y=1", "x-user": "alice" }),
};

function decide(rules: unknown, input: Partial<RbacInput> = {}) {
  return evaluateRbac(parseRbacRules(rules, "rules", "http"), { ...base, ...input });
}

const any = { any: true };

Deno.test("evaluateRbac ALLOW allows only what a policy matches; no policies deny all", () => {
  const rules = {
    action: "ALLOW",
    policies: {
      admins: { permissions: [{ header: { name: "x-user", string_match: { exact: "alice" } } }], principals: [any] },
    },
  };
  assertEquals(decide(rules), { allowed: true, matchedPolicy: "admins" });
  assertEquals(decide(rules, { headers: HeaderMap.from({ "x-user": "bob" }) }).allowed, false);
  assertEquals(decide({ action: "ALLOW" }).allowed, false);
  assertEquals(decide({ action: "DENY" }).allowed, true);
});

Deno.test("evaluateRbac DENY denies a match; LOG allows and reports the policy", () => {
  const policies = { p: { permissions: [{ url_path: { path: { prefix: "/admin" } } }], principals: [any] } };
  assertEquals(decide({ action: "DENY", policies }), { allowed: false, matchedPolicy: "p" });
  assertEquals(
    decide({ action: "DENY", policies }, { headers: HeaderMap.from({ ":path": "/public/admin" }) }).allowed,
    true,
  );
  assertEquals(decide({ action: "LOG", policies }), { allowed: true, matchedPolicy: "p" });
});

Deno.test("evaluateRbac url_path ignores the query; exact matches the path only", () => {
  const rules = (path: unknown) => ({ policies: { p: { permissions: [{ url_path: { path } }], principals: [any] } } });
  assertEquals(decide(rules({ exact: "/admin/x" })).allowed, true);
  assertEquals(decide(rules({ exact: "/admin/x?y=1" })).allowed, false);
});

Deno.test("evaluateRbac and/or/not rules, ports, destination ip and SNI", () => {
  const p = (perm: unknown) => ({ policies: { p: { permissions: [perm], principals: [any] } } });
  assertEquals(
    decide(
      p({
        and_rules: {
          rules: [{ destination_port: 8080 }, { destination_ip: { address_prefix: "127.0.0.0", prefix_len: 8 } }],
        },
      }),
    ).allowed,
    true,
  );
  assertEquals(
    decide(p({ and_rules: { rules: [{ destination_port: 8080 }, { destination_port: 9090 }] } })).allowed,
    false,
  );
  assertEquals(
    decide(
      p({ or_rules: { rules: [{ destination_port: 1 }, { destination_port_range: { start: 8000, end: 8081 } }] } }),
    ).allowed,
    true,
  );
  assertEquals(decide(p({ destination_port_range: { start: 8000, end: 8080 } })).allowed, false, "end is exclusive");
  assertEquals(decide(p({ not_rule: { destination_port: 8080 } })).allowed, false);
  assertEquals(decide(p({ requested_server_name: { suffix: ".example.com" } })).allowed, true);
  assertEquals(
    decide(p({ metadata: { filter: "f", path: [{ key: "k" }], value: { string_match: { exact: "v" } } } })).allowed,
    false,
  );
});

Deno.test("evaluateRbac principals: direct_remote_ip, remote_ip (the trusted client), source_ip, not_id, and_ids", () => {
  const p = (principal: unknown) => ({ policies: { p: { permissions: [any], principals: [principal] } } });
  assertEquals(decide(p({ direct_remote_ip: { address_prefix: "10.0.0.0", prefix_len: 8 } })).allowed, true);
  assertEquals(decide(p({ remote_ip: { address_prefix: "10.0.0.0", prefix_len: 8 } })).allowed, false);
  assertEquals(decide(p({ remote_ip: { address_prefix: "192.168.0.9", prefix_len: 32 } })).allowed, true);
  assertEquals(decide(p({ source_ip: { address_prefix: "10.1.2.3", prefix_len: 32 } })).allowed, true);
  assertEquals(
    decide(p({ direct_remote_ip: { address_prefix: "10.0.0.0", prefix_len: 8 } }), {
      directRemoteIp: "::ffff:10.9.9.9",
    }).allowed,
    true,
  );
  assertEquals(
    decide(p({ direct_remote_ip: { address_prefix: "::1", prefix_len: 128 } }), { directRemoteIp: "::1" }).allowed,
    true,
  );
  assertEquals(decide(p({ not_id: { header: { name: "x-user", present_match: true } } })).allowed, false);
  assertEquals(decide(p({ and_ids: { ids: [any, { url_path: { path: { prefix: "/admin" } } }] } })).allowed, true);
});

Deno.test("evaluateRbac authenticated: needs TLS; principal_name tries URI SAN, DNS SAN, then the RFC 2253 subject", () => {
  const files = generateTestPki({ gm: true, hosts: ["svc.example"], ips: [] });
  const server = pemDecodeAll(files["server_sign.crt"]!)[0]!.der;
  const client = pemDecodeAll(files["client_sign.crt"]!)[0]!.der;
  assertEquals(certificateIdentities(client), ["CN=Ferry Test Client,O=Ferry,C=CN"]);
  assertEquals(certificateIdentities(server)[0], "svc.example");
  const p = (principal: unknown) => ({ policies: { p: { permissions: [any], principals: [principal] } } });
  const auth = (name?: unknown) => p({ authenticated: name === undefined ? {} : { principal_name: name } });
  assertEquals(decide(auth()).allowed, false, "plain text is not authenticated");
  assertEquals(decide(auth(), { peerCertificates: [] }).allowed, true, "TLS without a client certificate");
  assertEquals(decide(auth({ exact: "svc.example" }), { peerCertificates: [server] }).allowed, true);
  assertEquals(
    decide(auth({ exact: "CN=Ferry Test Client,O=Ferry,C=CN" }), { peerCertificates: [client] }).allowed,
    true,
  );
  assertEquals(decide(auth({ exact: "svc.example" }), { peerCertificates: [client] }).allowed, false);
  assertEquals(decide(auth({ exact: "x" }), { peerCertificates: [] }).allowed, false);
});

Deno.test("parseRbacRules rejects bad config with the field path", () => {
  const e = (raw: unknown, side: "http" | "network" = "http") =>
    assertThrows(() => parseRbacRules(raw, "rules", side), ConfigError).message;
  assertEquals(
    e({ policies: { p: { permissions: [{ destination_ip: { address_prefix: "nope" } }], principals: [any] } } }),
    'config: rules.policies.p.permissions[0].destination_ip.address_prefix: "nope" is not an IP address',
  );
  assertEquals(
    e({ policies: { p: { permissions: [], principals: [any] } } }).includes("rules.policies.p.permissions"),
    true,
  );
  assertEquals(e({ action: "MAYBE" }).includes("rules.action"), true);
  assertEquals(
    e({ policies: { p: { permissions: [{ bogus: 1 }], principals: [any] } } }).includes("permissions[0]"),
    true,
  );
  assertEquals(
    e(
      { policies: { p: { permissions: [{ header: { name: "a", present_match: true } }], principals: [any] } } },
      "network",
    ),
    "config: rules.policies.p.permissions[0].header: header does not apply to the network RBAC filter",
  );
  assertEquals(
    e({ policies: { p: { permissions: [any], principals: [any], condition: {} } } }).includes("condition"),
    true,
  );
});
