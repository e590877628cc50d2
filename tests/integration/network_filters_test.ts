/**
 * Network filters in front of tcp_proxy, with real TCP clients and a real echo upstream:
 * `envoy.filters.network.connection_limit`, `envoy.filters.network.local_ratelimit` and Ferry's network fault
 * injection (`ferry.filters.network.fault`).
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { curl, itOpts, readAll, sleep, startFerry, startRawServer, stat, type TestFerry, waitFor } from "./_harness.ts";
import { echoCluster, echoConnection, tcpProxyFilter } from "../helpers/tcp_echo.ts";

type Obj = Record<string, unknown>;

function startEcho() {
  return startRawServer(echoConnection);
}

function bootstrap(filters: Obj[], echoPort: number): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "l",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [{ filters: [...filters, tcpProxyFilter()] }],
      }],
      clusters: [echoCluster(echoPort)],
    },
  };
}

/** Starts an echo upstream and Ferry with `filter` before tcp_proxy to it, runs `body`, then stops both. */
async function withFilter(filter: Obj, body: (ferry: TestFerry) => Promise<void>): Promise<void> {
  const echo = startEcho();
  try {
    const ferry = await startFerry(bootstrap([filter], echo.port));
    try {
      await body(ferry);
    } finally {
      await ferry.stop();
    }
  } finally {
    echo.close();
  }
}

const enc = new TextEncoder();

/** Connects, sends `text`, returns what came back before the peer closed or went quiet, and the connection. */
async function talk(port: number, text: string, keepOpen = false): Promise<{ got: string; conn: Deno.Conn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode(text));
  } catch { /* closed already */ }
  const got = await readAll(conn, 700);
  if (!keepOpen) conn.close();
  return { got, conn };
}

const LIMIT = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit";
const RATE = "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit";
const FAULT = "type.googleapis.com/ferry.filters.network.fault.v1.Fault";

Deno.test("connection_limit closes connections over max_connections and frees slots on close", itOpts, async () => {
  await withFilter({
    name: "envoy.filters.network.connection_limit",
    typed_config: { "@type": LIMIT, stat_prefix: "cl", max_connections: 1 },
  }, async (ferry) => {
    const a = await talk(ferry.port(), "first", true);
    assertEquals(a.got, "first");
    assertEquals(await stat(ferry, "connection_limit.cl.active_connections"), 1);
    const b = await talk(ferry.port(), "second");
    assertEquals(b.got, "", "the connection over the limit is closed");
    assertEquals(await stat(ferry, "connection_limit.cl.limited_connections"), 1);
    a.conn.close();
    await waitFor(
      "active_connections 0",
      async () => (await stat(ferry, "connection_limit.cl.active_connections")) === 0,
      2500,
    );
    assertEquals((await talk(ferry.port(), "third")).got, "third", "a freed slot is reused");
  });
});

Deno.test("connection_limit with delay closes the extra connection after the delay, unproxied", itOpts, async () => {
  await withFilter({
    name: "envoy.filters.network.connection_limit",
    typed_config: { "@type": LIMIT, stat_prefix: "cld", max_connections: "1", delay: "0.2s" },
  }, async (ferry) => {
    const a = await talk(ferry.port(), "x", true);
    assertEquals(a.got, "x");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: ferry.port() });
    await conn.write(enc.encode("held"));
    // Read to EOF (bounded by readAll's idle limit well above the delay): nothing but the close.
    const got = await readAll(conn, 3000);
    conn.close();
    assertEquals(got, "");
    assertEquals(await stat(ferry, "connection_limit.cld.limited_connections"), 1);
    a.conn.close();
  });
});

Deno.test(
  "network local_ratelimit takes a token per connection and closes when the bucket is empty",
  itOpts,
  async () => {
    await withFilter({
      name: "envoy.filters.network.local_ratelimit",
      typed_config: {
        "@type": RATE,
        stat_prefix: "rl",
        token_bucket: { max_tokens: 2, tokens_per_fill: 1, fill_interval: "3600s" },
      },
    }, async (ferry) => {
      assertEquals((await talk(ferry.port(), "one")).got, "one");
      assertEquals((await talk(ferry.port(), "two")).got, "two");
      assertEquals((await talk(ferry.port(), "three")).got, "");
      assertEquals(await stat(ferry, "local_ratelimit.rl.rate_limited"), 1);
    });
  },
);

Deno.test("network fault delays every chunk in order (delay_percent 100) through tcp_proxy", itOpts, async () => {
  await withFilter({
    name: "ferry.filters.network.fault",
    typed_config: { "@type": FAULT, stat_prefix: "f", delay_percent: 100, delay: "0.15s" },
  }, async (ferry) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: ferry.port() });
    await conn.write(enc.encode("a"));
    await sleep(20);
    await conn.write(enc.encode("b"));
    let got = "";
    for (let i = 0; i < 10 && got.length < 2; i++) got += await readAll(conn, 500);
    conn.close();
    assertEquals(got, "ab");
    const delays = await stat(ferry, "fault_inject.f.delays_injected");
    assert(delays !== undefined && delays >= 1 && delays <= 2, `delays_injected ${delays}`);
  });
});

Deno.test("network fault aborts the connection (abort_percent 100); 0 percent passes everything", itOpts, async () => {
  const echo = startEcho();
  const abort = await startFerry(bootstrap([{
    name: "ferry.filters.network.fault",
    typed_config: { "@type": FAULT, stat_prefix: "a", abort_percent: 100 },
  }], echo.port));
  const none = await startFerry(bootstrap([{
    name: "ferry.filters.network.fault",
    typed_config: { "@type": FAULT, delay_percent: 0, delay: "1s", abort_percent: 0 },
  }], echo.port));
  try {
    assertEquals((await talk(abort.port(), "bye")).got, "");
    assertEquals(await stat(abort, "fault_inject.a.aborts_injected"), 1);
    assertEquals((await talk(none.port(), "pass")).got, "pass");
    assertEquals(await stat(none, "fault_inject.aborts_injected"), 0);
  } finally {
    await abort.stop();
    await none.stop();
    echo.close();
  }
});

Deno.test("network filters reject bad config with the field path", itOpts, async () => {
  const bad = async (filter: Obj): Promise<string> => {
    try {
      const f = await startFerry(bootstrap([filter], 1));
      await f.stop();
      return "";
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };
  assertMatch(
    await bad({ name: "x", typed_config: { "@type": LIMIT, stat_prefix: "c", max_connections: 0 } }),
    /filters\[0\]\.typed_config\.max_connections: 0 is below the minimum 1/,
  );
  assertMatch(
    await bad({
      name: "x",
      typed_config: { "@type": RATE, stat_prefix: "r", token_bucket: { max_tokens: 1, fill_interval: "0.01s" } },
    }),
    /token_bucket\.fill_interval: must be at least 50ms/,
  );
  assertMatch(
    await bad({ name: "x", typed_config: { "@type": FAULT, delay_percent: 101, delay: "1s" } }),
    /delay_percent: 101 is above the maximum 100/,
  );
  assertMatch(
    await bad({ name: "x", typed_config: { "@type": FAULT, delay_percent: 5 } }),
    /typed_config\.delay: is required/,
  );
  assertMatch(
    await bad({ name: "x", typed_config: { "@type": FAULT, bogus: 1 } }),
    /typed_config\.bogus: unknown field/,
  );
});

Deno.test(
  "network filters in front of an AUTO connection manager: HTTP/1.1 and HTTP/2 (curl) pass the chain",
  itOpts,
  async () => {
    const ferry = await startFerry({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
      static_resources: {
        listeners: [{
          name: "l",
          address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
          filter_chains: [{
            filters: [
              { name: "cl", typed_config: { "@type": LIMIT, stat_prefix: "h", max_connections: 10 } },
              {
                name: "rl",
                typed_config: {
                  "@type": RATE,
                  stat_prefix: "h",
                  token_bucket: { max_tokens: 2, fill_interval: "3600s" },
                },
              },
              { name: "f", typed_config: { "@type": FAULT, stat_prefix: "h", delay_percent: 100, delay: "0.05s" } },
              {
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type":
                    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                  stat_prefix: "h",
                  codec_type: "AUTO",
                  route_config: {
                    virtual_hosts: [{
                      name: "v",
                      domains: ["*"],
                      routes: [{
                        match: { prefix: "/" },
                        direct_response: { status: 200, body: { inline_string: "hi" } },
                      }],
                    }],
                  },
                  http_filters: [{
                    name: "envoy.filters.http.router",
                    typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
                  }],
                },
              },
            ],
          }],
        }],
        clusters: [],
      },
    });
    try {
      const url = `http://127.0.0.1:${ferry.port()}/`;
      const h1 = await curl(url);
      assertEquals([h1.status, h1.body], [200, "hi"], h1.stderr);
      const h2 = await curl(url, ["--http2-prior-knowledge"]);
      assertEquals([h2.status, h2.body], [200, "hi"], h2.stderr);
      const third = await curl(url);
      assert(third.status !== 200, "the bucket held two connections' tokens");
      assertEquals(await stat(ferry, "local_ratelimit.h.rate_limited"), 1);
      assert((await stat(ferry, "fault_inject.h.delays_injected") ?? 0) >= 2);
      assertEquals(await stat(ferry, "http.h.downstream_cx_http2_total"), 1);
    } finally {
      await ferry.stop();
    }
  },
);
