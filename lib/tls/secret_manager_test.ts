import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "../api/errors.ts";
import { generateTestPki } from "../crypto/certs_command.ts";
import { ObjReader } from "../config/reader.ts";
import { loadStaticSecrets, resolveSecretRefs } from "../config/secrets.ts";
import type { Secret, SecretManager } from "./secret_manager.ts";
import { parseServerTransportSocket } from "./transport_socket.ts";
import type { NativeServerContext } from "./native.ts";

const one = generateTestPki({ gm: false, hosts: ["one.example"], ips: [] });
const two = generateTestPki({ gm: false, hosts: ["two.example"], ips: [] });
const pair = (pki: Record<string, string>, key = pki) => ({
  certificate_chain: { inline_string: pki["server_ecdsa.crt"]! },
  private_key: { inline_string: key["server_ecdsa.key"]! },
});

function manager(): SecretManager {
  return loadStaticSecrets(
    new ObjReader({
      secrets: [
        { name: "cert", tls_certificate: pair(one) },
        { name: "ca", validation_context: { trusted_ca: { inline_string: one["ca_ecdsa.crt"]! } } },
      ],
    }, "static_resources"),
  );
}

function message(f: () => unknown): string {
  const e = assertThrows(f);
  assert(e instanceof ConfigError, String(e));
  assert(!e.message.includes("\n"), `one line: ${e.message}`);
  return e.message;
}

Deno.test("SecretManager loads static secrets at version 1, frozen, and rejects a duplicate name", () => {
  const m = manager();
  assertEquals(m.names, ["cert", "ca"]);
  const s = m.get("cert")!;
  assertEquals([s.kind, s.version, s.path], ["tls_certificate", 1, "static_resources.secrets[0]"]);
  assert(Object.isFrozen(s.value) && Object.isFrozen(s.value["certificate_chain"]));
  assertEquals(
    message(() => m.add({ name: "ca", kind: "validation_context", value: {}, path: "static_resources.secrets[2]" })),
    'config: static_resources.secrets[2].name: secret "ca" is already defined at static_resources.secrets[1]',
  );
});

Deno.test("SecretManager.update bumps the version and tells subscribers before it installs the secret", () => {
  const m = manager();
  const seen: string[] = [];
  const off = m.subscribe("cert", (next) => {
    // Prepare phase: the candidate is not installed yet.
    seen.push(`prepare v${next.version} (current v${m.get("cert")!.version})`);
    return () => seen.push(`commit v${m.get("cert")!.version}`);
  });
  const v2 = m.update("cert", { tls_certificate: pair(two) });
  assertEquals(v2.version, 2);
  assertEquals(m.get("cert"), v2);
  assertEquals(v2.path, "static_resources.secrets[0]");
  assertEquals(seen, ["prepare v2 (current v1)", "commit v2"]);
  assertEquals(m.subscriberCount("cert"), 1);
  off();
  assertEquals(m.subscriberCount("cert"), 0);
  m.update("cert", { name: "cert", tls_certificate: pair(one) });
  assertEquals(seen.length, 2);
  assertEquals(m.get("cert")!.version, 3);
});

Deno.test("SecretManager.update: a bad secret or a rejecting subscriber is one line and changes nothing", () => {
  const m = manager();
  const commits: number[] = [];
  m.subscribe("cert", (next) => () => commits.push(next.version));
  m.subscribe("cert", (next) => {
    if ((next.value["certificate_chain"] as Record<string, string>)["inline_string"] === two["server_ecdsa.crt"]) {
      throw new ConfigError("static_resources.listeners[0].x.tls_certificates[0].private_key", "does not match");
    }
  });
  const v1: Secret = m.get("cert")!;
  const cases: [string, unknown, string][] = [
    ["nope", {}, 'config: secret: unknown secret "nope" (known: cert, ca)'],
    ["cert", { tls_certificate: pair(two) }, "config: secret.tls_certificate: static_resources.listeners[0].x"],
    ["cert", { tls_certificate: { private_key: pair(two).private_key } }, "secret.tls_certificate.certificate_chain"],
    ["cert", { tls_certificate: { ...pair(two), private_key: { inline_string: "x" } } }, "is not a PEM private key"],
    ["cert", { tls_certificate: { ...pair(two), certificate_chain: { filename: "/nonexistent" } } }, "cannot read"],
    ["cert", { validation_context: {} }, 'secret "cert" is a tls_certificate, not a validation_context'],
    ["cert", { generic_secret: {} }, "config: secret.generic_secret: is not supported"],
    ["cert", { tls_certificate: pair(one), bogus: 1 }, "config: secret.bogus"],
    ["ca", { validation_context: { trusted_ca: { inline_string: "junk" } } }, "secret.validation_context.trusted_ca"],
  ];
  for (const [name, raw, want] of cases) {
    const msg = message(() => m.update(name, raw));
    assert(msg.includes(want), `${msg} should include ${want}`);
  }
  assertEquals(m.get("cert"), v1);
  assertEquals(m.get("ca")!.version, 1);
  assertEquals(commits, []);
});

function listenerSocket(m: SecretManager, common: Record<string, unknown>) {
  const raw = {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      common_tls_context: common,
    },
  };
  return parseServerTransportSocket(resolveSecretRefs(raw, "l.transport_socket", m), "l.transport_socket");
}

Deno.test("a transport socket naming a secret follows its updates; inline certificates do not subscribe", () => {
  const m = manager();
  const ts = listenerSocket(m, { tls_certificate_sds_secret_configs: [{ name: "cert" }] });
  assert(ts?.kind === "native");
  const first: NativeServerContext = ts.context;
  assertEquals(first.certificates[0]!.names, ["one.example"]);
  assertEquals(first.listenTlsCapable, false, "a rotating context must not bake into Deno.listenTls");
  assertEquals(m.subscriberCount("cert"), 1);

  m.update("cert", { tls_certificate: pair(two) });
  assertEquals(ts.context.certificates[0]!.names, ["two.example"]);
  assertEquals(first.certificates[0]!.names, ["one.example"], "the old snapshot is unchanged");

  // A key that does not match: the socket's parser rejects it; the context stays.
  const bad = message(() => m.update("cert", { tls_certificate: pair(one, two) }));
  assert(bad.startsWith("config: secret.tls_certificate: l.transport_socket.typed_config.common_tls_context"), bad);
  assertEquals(ts.context.certificates[0]!.names, ["two.example"]);

  const inline = listenerSocket(m, { tls_certificates: [pair(one)] });
  assert(inline?.kind === "native" && inline.context.listenTlsCapable);
  assertEquals(m.subscriberCount("cert"), 1);
});

Deno.test("a validation_context secret update reaches the socket's trust anchors", () => {
  const m = manager();
  const ts = listenerSocket(m, {
    tls_certificates: [pair(one)],
    validation_context_sds_secret_config: { name: "ca" },
  });
  assert(ts?.kind === "native");
  const before = ts.context.validation!.roots[0]!.der;
  m.update("ca", { validation_context: { trusted_ca: { inline_string: two["ca_ecdsa.crt"]! } } });
  assert(ts.context.validation!.roots[0]!.der !== before);
  assertEquals(m.get("ca")!.version, 2);
});
