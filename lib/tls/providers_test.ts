import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import type { NetConnection } from "../api/network.ts";
import { builtinTlsProviders, createTlsProviderRegistry } from "./providers.ts";
import type { SecureConnection, TlsProvider, TlsProviderFactory } from "./provider.ts";
import { parseClientTransportSocket, parseServerTransportSocket } from "./transport_socket.ts";
import { GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY } from "./gm.ts";
import { DOWNSTREAM_TLS_CONTEXT_TYPE, UPSTREAM_TLS_CONTEXT_TYPE } from "./native.ts";

const FAKE = "type.ferry.dev/test.FakeTls";

const fakeProvider: TlsProvider<string, string> = {
  name: "fake",
  accept: (_t: NetConnection) => Promise.reject(new Error("unused")) as Promise<SecureConnection>,
  connect: (_t: NetConnection) => Promise.reject(new Error("unused")) as Promise<SecureConnection>,
};

const fakeFactory: TlsProviderFactory<string, string> = {
  name: "fake",
  configTypes: [FAKE],
  serverConfigTypes: [FAKE],
  clientConfigTypes: [],
  provider: fakeProvider,
  parseServer(tc) {
    const label = tc.str("label", { required: true })!;
    tc.done();
    return `server:${label}`;
  },
  parseClient(tc) {
    throw new Error(`${tc.path}: no client side`);
  },
};

Deno.test("createTlsProviderRegistry lists native then gm, by name and by every @type", () => {
  assertEquals(builtinTlsProviders.map((f) => f.name), ["native", "gm"]);
  const r = createTlsProviderRegistry();
  assertEquals(r.names, ["native", "gm"]);
  assertEquals(r.byType(DOWNSTREAM_TLS_CONTEXT_TYPE)?.name, "native");
  assertEquals(r.byType(UPSTREAM_TLS_CONTEXT_TYPE)?.name, "native");
  assertEquals(r.byType(GM_TLS_CONTEXT_TYPE)?.name, "gm");
  assertEquals(r.byType(GM_TLS_CONTEXT_TYPE_FERRY)?.name, "gm");
  assertEquals(r.byType(FAKE), undefined);
});

Deno.test("createTlsProviderRegistry rejects a duplicate name or @type", () => {
  assertThrows(() => createTlsProviderRegistry({ extra: [{ ...fakeFactory, name: "gm" }] }), Error, "registered twice");
  assertThrows(
    () => createTlsProviderRegistry({ extra: [{ ...fakeFactory, configTypes: [GM_TLS_CONTEXT_TYPE] }] }),
    Error,
    'is claimed by "gm" and "fake"',
  );
});

Deno.test("parseServerTransportSocket picks a registered factory by @type and names it in messages", () => {
  const providers = createTlsProviderRegistry({ extra: [fakeFactory] });
  const ts = parseServerTransportSocket(
    { name: "t", typed_config: { "@type": FAKE, label: "x" } },
    "l.transport_socket",
    { providers },
  );
  const raw = ts as unknown as { kind: string; provider: unknown; context: unknown };
  assertEquals([raw.kind, raw.provider, raw.context], ["fake", fakeProvider, "server:x"]);
  const unknown =
    assertThrows(() => parseServerTransportSocket({ typed_config: { "@type": "type.x/Nope" } }, "p", { providers }))
      .message;
  assert(unknown.startsWith('config: p.typed_config.@type: transport socket type "type.x/Nope" is not supported'));
  assert(
    unknown.endsWith(
      `(known: ${DOWNSTREAM_TLS_CONTEXT_TYPE}, ${GM_TLS_CONTEXT_TYPE}, ${FAKE}, ` +
        "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer)",
    ),
    unknown,
  );
  // Without the extra factory, the built-in list is unchanged.
  const builtin = assertThrows(() => parseServerTransportSocket({ typed_config: { "@type": FAKE } }, "p")).message;
  assert(
    !builtin.includes("FakeTls)") &&
      builtin.includes(`(known: ${DOWNSTREAM_TLS_CONTEXT_TYPE}, ${GM_TLS_CONTEXT_TYPE}, `),
  );
  // The factory's own side check.
  assertThrows(
    () => parseClientTransportSocket({ typed_config: { "@type": FAKE } }, "c", { providers }),
    Error,
    "no client side",
  );
});
