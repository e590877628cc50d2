import assert from "node:assert/strict";
import { isSensitiveField, REDACTED, redactSecrets } from "./redact.ts";

Deno.test("redactSecrets hides private keys, passwords and secrets but keeps file paths", () => {
  const input = {
    static_resources: {
      listeners: [{
        filter_chains: [{
          transport_socket: {
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
              common_tls_context: {
                tls_certificates: [
                  {
                    certificate_chain: { filename: "/etc/cert.pem" },
                    private_key: { filename: "/etc/key.pem" },
                  },
                  {
                    certificate_chain: { inline_string: "CERT" },
                    privateKey: { inlineString: "KEY" },
                    password: { environment_variable: "KEY_PASS" },
                  },
                ],
              },
              session_ticket_keys: { keys: [{ inline_bytes: "AAAA" }, { filename: "/etc/ticket" }] },
            },
          },
        }],
      }],
      secrets: [{ name: "g", generic_secret: { secret: { inline_string: "s3cr3t" } } }],
    },
    gm: { sign_private_key: { inline_string: "SM2KEY" }, enc_private_key: "raw" },
    oauth: { token_secret: { name: "t", sds_config: { path: "/x" } }, hmac_secret: { name: "h" } },
    plain: "visible",
  };
  const copy = structuredClone(input);
  const out = redactSecrets(input) as typeof input;
  assert.deepEqual(input, copy, "input not modified");
  const ctx = out.static_resources.listeners[0]!.filter_chains[0]!.transport_socket.typed_config;
  assert.deepEqual(ctx.common_tls_context.tls_certificates[0], {
    certificate_chain: { filename: "/etc/cert.pem" },
    private_key: { filename: "/etc/key.pem" },
  });
  assert.deepEqual(ctx.common_tls_context.tls_certificates[1], {
    certificate_chain: { inline_string: "CERT" },
    privateKey: { inlineString: REDACTED },
    password: { environment_variable: REDACTED },
  });
  assert.deepEqual(ctx.session_ticket_keys, { keys: [{ inline_bytes: REDACTED }, { filename: "/etc/ticket" }] });
  assert.equal(ctx["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext");
  assert.deepEqual(out.static_resources.secrets[0]!.generic_secret, { secret: { inline_string: REDACTED } });
  assert.deepEqual(out.gm, { sign_private_key: { inline_string: REDACTED }, enc_private_key: REDACTED });
  assert.deepEqual(out.oauth.token_secret, { name: REDACTED, sds_config: { path: REDACTED } });
  assert.equal(out.plain, "visible");
  assert.ok(!JSON.stringify(out).match(/KEY"|s3cr3t|SM2KEY|AAAA|"raw"/));
});

Deno.test("isSensitiveField recognises snake_case and camelCase names", () => {
  for (const k of ["private_key", "privateKey", "password", "secret", "hmac_secret", "clientSecret", "pkcs12"]) {
    assert.ok(isSensitiveField(k), k);
  }
  for (const k of ["private_key_provider", "secrets", "sds_secret_config", "certificate_chain", "name"]) {
    assert.ok(!isSensitiveField(k), k);
  }
});
