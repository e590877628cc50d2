/**
 * The resumption fields of TLS contexts: `session_ticket_keys` (inline, file, secret), the disable switches,
 * `session_timeout` and `max_session_keys`, in the gm and native parsers and the secret provider; bad input is one
 * ConfigError naming the field.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { ConfigError } from "../api/errors.ts";
import { ObjReader } from "../config/reader.ts";
import { parseMaxSessionKeys, parseServerResumption, readSessionTicketKeys } from "./_session_resumption.ts";
import { parseGmTlsContext } from "./gm.ts";
import { parseDownstreamTlsContext, parseUpstreamTlsContext } from "./native.ts";
import { parseSecret, SecretManager } from "./secret_manager.ts";
import { generateTestPki } from "../crypto/mod.ts";

const b64 = (n: number, fill = 1) => btoa(String.fromCharCode(...new Uint8Array(n).fill(fill)));

function configError(f: () => unknown, path: string, detail: RegExp): void {
  assertThrows(f, (e: unknown) => {
    assert(e instanceof ConfigError, String(e));
    assertEquals(e.path, path);
    assert(detail.test(e.detail), e.detail);
    return true;
  });
}

Deno.test("readSessionTicketKeys reads 80-byte keys inline and from files; other lengths name keys[i]", () => {
  const file = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(file, new Uint8Array(80).fill(9));
    const keys = readSessionTicketKeys(new ObjReader({ keys: [{ inline_bytes: b64(80) }, { filename: file }] }, "k"));
    assertEquals(keys.size, 2);
    Deno.writeFileSync(file, new Uint8Array(48));
    configError(
      () => readSessionTicketKeys(new ObjReader({ keys: [{ inline_bytes: b64(80) }, { filename: file }] }, "k")),
      "k.keys[1]",
      /is 48 bytes; a session ticket key is 80/,
    );
    configError(
      () => readSessionTicketKeys(new ObjReader({ keys: [{ inline_bytes: b64(81) }] }, "k")),
      "k.keys[0]",
      /81 bytes/,
    );
    configError(() => readSessionTicketKeys(new ObjReader({ keys: [] }, "k")), "k.keys", /at least one/);
    configError(
      () => readSessionTicketKeys(new ObjReader({ keys: [{ filename: `${file}.missing` }] }, "k")),
      "k.keys[0].filename",
      /cannot read/,
    );
  } finally {
    Deno.removeSync(file);
  }
});

Deno.test("parseServerResumption: defaults, random key, timeout, and conflicting switches", () => {
  const d = parseServerResumption(new ObjReader({}, "t"));
  assert(d.ticketKeys !== undefined);
  assertEquals([d.keysConfigured, d.stateful, d.sessionTimeout], [false, true, 7200]);
  const off = parseServerResumption(
    new ObjReader({
      disable_stateless_session_resumption: true,
      disable_stateful_session_resumption: true,
      session_timeout: "300s",
    }, "t"),
  );
  assertEquals([off.ticketKeys, off.stateful, off.sessionTimeout], [undefined, false, 300]);
  configError(
    () =>
      parseServerResumption(
        new ObjReader({
          disable_stateless_session_resumption: true,
          session_ticket_keys: { keys: [{ inline_bytes: b64(80) }] },
        }, "t"),
      ),
    "t.disable_stateless_session_resumption",
    /cannot be true with session_ticket_keys/,
  );
  configError(
    () => parseServerResumption(new ObjReader({ session_timeout: "1.5s" }, "t")),
    "t.session_timeout",
    /whole seconds/,
  );
  configError(
    () => parseServerResumption(new ObjReader({ session_timeout: "700000s" }, "t")),
    "t.session_timeout",
    /604800/,
  );
  assertEquals(parseMaxSessionKeys(new ObjReader({}, "u")), 1);
  assertEquals(parseMaxSessionKeys(new ObjReader({ max_session_keys: 0 }, "u")), 0);
});

function gmDir(): { path: (n: string) => string } {
  const dir = Deno.makeTempDirSync();
  for (const [n, pem] of Object.entries(generateTestPki({ gm: true, hosts: ["localhost"], ips: [] }))) {
    Deno.writeTextFileSync(`${dir}/${n}`, pem);
  }
  return { path: (n) => `${dir}/${n}` };
}

Deno.test("GmTlsContext: session_ticket_keys on servers, max_session_keys on clients, errors name the field", () => {
  const p = gmDir();
  const cert = {
    certificate_chain: { filename: p.path("server.crt") },
    private_key: { filename: p.path("server.key") },
  };
  const server = (extra: Record<string, unknown>) =>
    parseGmTlsContext(new ObjReader({ versions: ["TLSv1.3"], certificate: cert, ...extra }, "tc"), "server");
  const ctx = server({ session_ticket_keys: { keys: [{ inline_bytes: b64(80) }] }, session_timeout: "60s" });
  assertEquals([ctx.ticketKeys?.size, ctx.sessionTimeout, ctx.statefulResumption], [1, 60, true]);
  assert(server({}).ticketKeys !== undefined, "a random key without configured keys");
  assertEquals(server({ disable_stateless_session_resumption: true }).ticketKeys, undefined);
  configError(
    () => server({ session_ticket_keys: { keys: [{ inline_bytes: b64(80) }, { inline_bytes: b64(32) }] } }),
    "tc.session_ticket_keys.keys[1]",
    /32 bytes/,
  );
  configError(() => server({ max_session_keys: 2 }), "tc.max_session_keys", /applies to clients only/);
  const client = (extra: Record<string, unknown>) =>
    parseGmTlsContext(new ObjReader({ versions: ["TLSv1.3"], ...extra }, "uc"), "client");
  assertEquals(client({ max_session_keys: 3 }).maxSessionKeys, 3);
  configError(() => client({ session_timeout: "1s" }), "uc.session_timeout", /applies to servers only/);
});

Deno.test("DownstreamTlsContext: resumption fields are checked, then ignored by rustls with a warning", () => {
  const p = gmDir();
  const common = {
    tls_certificates: [{
      certificate_chain: { filename: p.path("server_ecdsa.crt") },
      private_key: { filename: p.path("server_ecdsa.key") },
    }],
  };
  const ctx = parseDownstreamTlsContext(
    new ObjReader({
      common_tls_context: common,
      session_ticket_keys: { keys: [{ inline_bytes: b64(80) }] },
      session_timeout: "600s",
    }, "l"),
  );
  assertEquals(ctx.side, "server");
  parseDownstreamTlsContext(
    new ObjReader({ common_tls_context: common, session_ticket_keys_sds_secret_config: { name: "k" } }, "l"),
  );
  configError(
    () =>
      parseDownstreamTlsContext(
        new ObjReader({ common_tls_context: common, session_ticket_keys: { keys: [{ inline_bytes: b64(79) }] } }, "l"),
      ),
    "l.session_ticket_keys.keys[0]",
    /79 bytes/,
  );
  configError(
    () => parseUpstreamTlsContext(new ObjReader({ max_session_keys: -1 }, "c")),
    "c.max_session_keys",
    /./,
  );
});

Deno.test("SecretManager accepts session_ticket_keys secrets and names a bad key at the secret", () => {
  const m = new SecretManager();
  const parsed = parseSecret(
    new ObjReader({ name: "tk", session_ticket_keys: { keys: [{ inline_bytes: b64(80) }] } }, "s[0]"),
  );
  assertEquals(m.add({ ...parsed, path: "s[0]" }).kind, "session_ticket_keys");
  const bad = parseSecret(
    new ObjReader({ name: "bad", session_ticket_keys: { keys: [{ inline_bytes: b64(16) }] } }, "s[1]"),
  );
  configError(() => m.add({ ...bad, path: "s[1]" }), "s[1].session_ticket_keys.keys[0]", /16 bytes/);
  configError(
    () =>
      m.update("tk", { session_ticket_keys: { keys: [{ inline_bytes: b64(80) }, { inline_bytes: b64(100) }] } }, "upd"),
    "upd.session_ticket_keys.keys[1]",
    /100 bytes/,
  );
  assertEquals(m.update("tk", { session_ticket_keys: { keys: [{ inline_bytes: b64(80, 2) }] } }, "upd").version, 2);
});

Deno.test("parseServerResumption without keys: one key per context path and process, shared by reparses", () => {
  const a1 = parseServerResumption(new ObjReader({}, "listeners[0].tc")).ticketKeys!;
  const a2 = parseServerResumption(new ObjReader({}, "listeners[0].tc")).ticketKeys!;
  const b = parseServerResumption(new ObjReader({}, "listeners[1].tc")).ticketKeys!;
  const ticket = a1.seal(new TextEncoder().encode("state"));
  assertEquals(new TextDecoder().decode(a2.open(ticket)!), "state");
  assertEquals(b.open(ticket), undefined);
});
