/**
 * The compressor and decompressor filters end to end: curl `--compressed` and raw bodies decompressed here with
 * `node:zlib`, gzip, brotli and zstd, HTTP/1.1 and HTTP/2, Envoy's negotiation and skip rules, streamed bodies, and
 * request/response decompression.
 */
import zlib from "node:zlib";
import { assert, assertEquals } from "../assert.ts";
import { assertStartFails } from "../helpers/start_fails.ts";
import {
  curl,
  hcmBootstrap,
  itOpts,
  readHead,
  startFerry,
  startRawServer,
  startUpstream,
  stat,
  staticCluster,
} from "./_harness.ts";
import type { SeenRequest, TestFerry, TestUpstream } from "./_harness.ts";

const COMPRESSOR = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor";
const DECOMPRESSOR = "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor";
const GZIP = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip";
const BROTLI = "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli";
const ZSTD = "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd";
const GUNZIP = "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip";

const TEXT = Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join("");

/** Runs curl and returns the status, headers and the raw body bytes (no decoding unless `--compressed`). */
async function curlRaw(url: string, args: string[] = []) {
  const hdr = await Deno.makeTempFile();
  try {
    const out = await new Deno.Command("curl", {
      args: ["-sS", "--max-time", "10", "-D", hdr, "-o", "-", ...args, url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const head = (await Deno.readTextFile(hdr)).split("\r\n\r\n").filter((h) => h.startsWith("HTTP/")).pop() ?? "";
    const lines = head.split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    return {
      code: out.code,
      status: Number(lines[0]?.split(" ")[1] ?? 0),
      headers,
      body: out.stdout,
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(hdr);
  }
}

function upstreamHandler(req: SeenRequest): Response {
  const p = req.url.pathname;
  if (p === "/small") return new Response("tiny", { headers: { "content-type": "text/plain" } });
  if (p === "/png") return new Response(TEXT, { headers: { "content-type": "image/png" } });
  if (p === "/notransform") {
    return new Response(TEXT, { headers: { "content-type": "text/plain", "cache-control": "public, no-transform" } });
  }
  if (p === "/encoded") {
    return new Response(new Uint8Array(zlib.gzipSync(TEXT)), {
      headers: { "content-type": "text/plain", "content-encoding": "gzip" },
    });
  }
  if (p === "/etag") return new Response(TEXT, { headers: { "content-type": "text/plain", etag: '"v1"' } });
  if (p === "/json") {
    return new Response(JSON.stringify({ text: TEXT }), {
      headers: { "content-type": "application/json; charset=utf-8", vary: "origin" },
    });
  }
  if (p === "/stream") {
    // A streamed body (no content-length): 64 chunks written as they come.
    let i = 0;
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i === 64) return c.close();
        c.enqueue(enc.encode(`chunk ${i++} ${TEXT.slice(0, 2000)}\n`));
      },
    });
    return new Response(body, { headers: { "content-type": "text/html" } });
  }
  if (p === "/echo") {
    return new Response(
      JSON.stringify({
        body: req.body,
        ce: req.headers.get("content-encoding"),
        ae: req.headers.get("accept-encoding"),
      }),
      { headers: { "content-type": "application/json" } },
    );
  }
  return new Response(TEXT, { headers: { "content-type": "text/plain" } });
}

async function withFerry(
  filters: string,
  body: (f: TestFerry, up: TestUpstream) => Promise<void>,
  hcmExtra?: string,
): Promise<void> {
  const up = await startUpstream(upstreamHandler);
  const f = await startFerry(hcmBootstrap({
    ...(hcmExtra ? { hcmExtra } : {}),
    routes: `- name: all
  domains: ["*"]
  routes:
  - match: { prefix: "/off" }
    route: { cluster: up, prefix_rewrite: "/" }
    typed_per_filter_config:
      envoy.filters.http.compressor:
        "@type": type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute
        disabled: true
  - match: { prefix: "/" }
    route: { cluster: up }`,
    clusters: staticCluster("up", [up.port]),
    httpFilters: filters,
  }));
  try {
    await body(f, up);
  } finally {
    await f.stop();
    await up.close();
  }
}

const gzipFilter = (extra = "") =>
  `- name: envoy.filters.http.compressor
  typed_config:
    "@type": ${COMPRESSOR}
${extra}
    compressor_library:
      name: text
      typed_config: { "@type": ${GZIP}, compression_level: BEST_SPEED }`;

Deno.test("compressor gzip: curl --compressed gets the text back, headers per Envoy", itOpts, async () => {
  await withFerry(gzipFilter(), async (f) => {
    const r = await curl(f.url("/text"), ["--compressed"]);
    assertEquals(r.status, 200);
    assertEquals(r.body, TEXT);
    assertEquals(r.headers["content-encoding"], "gzip");
    assertEquals(r.headers["vary"], "accept-encoding");
    assertEquals(r.headers["content-length"], undefined);
    const raw = await curlRaw(f.url("/text"), ["-H", "accept-encoding: gzip"]);
    assertEquals(raw.headers["content-encoding"], "gzip");
    assert(raw.body.length < TEXT.length / 4, `compressed to ${raw.body.length}`);
    assertEquals(new TextDecoder().decode(zlib.gunzipSync(raw.body)), TEXT);
    // An existing vary gains accept-encoding; media type parameters are ignored.
    const j = await curlRaw(f.url("/json"), ["-H", "accept-encoding: gzip"]);
    assertEquals(j.headers["content-encoding"], "gzip");
    assertEquals(j.headers["vary"], "origin, accept-encoding");
    assertEquals(JSON.parse(new TextDecoder().decode(zlib.gunzipSync(j.body))).text, TEXT);
    // Per-route disabled.
    const off = await curlRaw(f.url("/off/text"), ["-H", "accept-encoding: gzip"]);
    assertEquals(off.headers["content-encoding"], undefined);
    assertEquals(new TextDecoder().decode(off.body), TEXT);
    assertEquals(await stat(f, "http.test.compressor.text.gzip.compressed"), 3);
    assertEquals(await stat(f, "http.test.compressor.text.gzip.header_compressor_used"), 3);
    assertEquals(
      await stat(f, "http.test.compressor.text.gzip.total_uncompressed_bytes"),
      TEXT.length * 2 + JSON.stringify({ text: TEXT }).length,
    );
  });
});

Deno.test("compressor accept-encoding negotiation follows Envoy's q-value rules", itOpts, async () => {
  await withFerry(gzipFilter(), async (f) => {
    const ce = async (ae: string | undefined) => {
      const r = await curlRaw(f.url("/text"), ae === undefined ? [] : ["-H", `accept-encoding: ${ae}`]);
      assertEquals(r.status, 200);
      if (r.headers["content-encoding"] === "gzip") {
        assertEquals(new TextDecoder().decode(zlib.gunzipSync(r.body)), TEXT);
      } else assertEquals(new TextDecoder().decode(r.body), TEXT);
      return r.headers["content-encoding"];
    };
    assertEquals(await ce(undefined), undefined);
    assertEquals(await ce("gzip;q=0, *;q=1"), undefined);
    assertEquals(await ce("*;q=0, gzip;q=1"), "gzip");
    assertEquals(await ce("*"), "gzip");
    assertEquals(await ce("br, deflate"), undefined);
    assertEquals(await ce("identity;q=1, gzip;q=0.5"), undefined);
    assertEquals(await ce("gzip;q=0.8, identity;q=0.5"), "gzip");
    assertEquals(await ce("GZIP"), "gzip");
    assertEquals(await stat(f, "http.test.compressor.text.gzip.no_accept_header"), 1);
    assertEquals(await stat(f, "http.test.compressor.text.gzip.header_wildcard"), 1);
    assertEquals(await stat(f, "http.test.compressor.text.gzip.header_identity"), 1);
    assertEquals(await stat(f, "http.test.compressor.text.gzip.header_not_valid"), 2);
  });
});

Deno.test(
  "compressor skips small, non-text, no-transform and already encoded responses; weakens etags",
  itOpts,
  async () => {
    await withFerry(gzipFilter(), async (f) => {
      for (const p of ["/small", "/png", "/notransform"]) {
        const r = await curlRaw(f.url(p), ["-H", "accept-encoding: gzip"]);
        assertEquals(r.headers["content-encoding"], undefined, p);
      }
      const enc = await curlRaw(f.url("/encoded"), ["-H", "accept-encoding: gzip"]);
      assertEquals(enc.headers["content-encoding"], "gzip");
      assertEquals(new TextDecoder().decode(zlib.gunzipSync(enc.body)), TEXT); // compressed once, not twice
      const head = await curlRaw(f.url("/text"), ["-I", "-H", "accept-encoding: gzip"]);
      assertEquals(head.headers["content-encoding"], undefined);
      const e = await curlRaw(f.url("/etag"), ["-H", "accept-encoding: gzip"]);
      assertEquals(e.headers["content-encoding"], "gzip");
      assertEquals(e.headers["etag"], 'W/"v1"');
      assertEquals(await stat(f, "http.test.compressor.text.gzip.content_length_too_small"), 1);
    });
    await withFerry(
      gzipFilter(`    response_direction_config:
      disable_on_etag_header: true
      remove_accept_encoding_header: true
      common_config: { min_content_length: 10, content_type: [text/plain] }`),
      async (f, up) => {
        const e = await curlRaw(f.url("/etag"), ["-H", "accept-encoding: gzip"]);
        assertEquals(e.headers["content-encoding"], undefined);
        assertEquals(e.headers["etag"], '"v1"');
        const j = await curlRaw(f.url("/json"), ["-H", "accept-encoding: gzip"]);
        assertEquals(j.headers["content-encoding"], undefined); // not in content_type
        const t = await curlRaw(f.url("/text"), ["-H", "accept-encoding: gzip"]);
        assertEquals(t.headers["content-encoding"], "gzip");
        assertEquals(up.requests.at(-1)!.headers.get("accept-encoding"), null);
        assertEquals(await stat(f, "http.test.compressor.text.gzip.not_compressed_etag"), 1);
      },
    );
  },
);

Deno.test("compressor brotli and a streamed body over HTTP/2", itOpts, async () => {
  const filter = `- name: envoy.filters.http.compressor
  typed_config:
    "@type": ${COMPRESSOR}
    compressor_library: { name: b, typed_config: { "@type": ${BROTLI}, quality: 4 } }`;
  await withFerry(filter, async (f) => {
    const r = await curlRaw(f.url("/text"), ["--http2-prior-knowledge", "-H", "accept-encoding: br"]);
    assertEquals(r.status, 200);
    assertEquals(r.headers["content-encoding"], "br");
    assertEquals(new TextDecoder().decode(zlib.brotliDecompressSync(r.body)), TEXT);
    const s = await curlRaw(f.url("/stream"), ["--http2-prior-knowledge", "-H", "accept-encoding: gzip;q=0.5, br"]);
    assertEquals(s.headers["content-encoding"], "br");
    const text = new TextDecoder().decode(zlib.brotliDecompressSync(s.body));
    assertEquals(text.split("\n").filter((l) => l.startsWith("chunk ")).length, 64);
    assert(text.startsWith("chunk 0 line 0"));
    const c = await curl(f.url("/stream"), ["--http2-prior-knowledge", "--compressed"]);
    assertEquals(c.body, text);
    assertEquals(await stat(f, "http.test.compressor.b.brotli.compressed"), 3);
  }, "codec_type: AUTO");
});

Deno.test("compressor zstd and gzip over a streamed HTTP/1.1 body", itOpts, async () => {
  const filter = `- name: envoy.filters.http.compressor
  typed_config:
    "@type": ${COMPRESSOR}
    compressor_library: { name: z, typed_config: { "@type": ${ZSTD}, compression_level: 5 } }`;
  await withFerry(filter, async (f) => {
    const r = await curlRaw(f.url("/stream"), ["-H", "accept-encoding: zstd"]);
    assertEquals(r.headers["content-encoding"], "zstd");
    const text = new TextDecoder().decode(zlib.zstdDecompressSync(r.body));
    assertEquals(text.split("\n").filter((l) => l.startsWith("chunk ")).length, 64);
  });
  await withFerry(gzipFilter(), async (f) => {
    const r = await curlRaw(f.url("/stream"), ["-H", "accept-encoding: gzip"]);
    assertEquals(r.headers["content-encoding"], "gzip");
    const text = new TextDecoder().decode(zlib.gunzipSync(r.body));
    assertEquals(text.split("\n").filter((l) => l.startsWith("chunk ")).length, 64);
  });
});

Deno.test("compressor request direction compresses request bodies when enabled", itOpts, async () => {
  await withFerry(
    gzipFilter(`    request_direction_config: { common_config: { enabled: { default_value: true, runtime_key: x } } }`),
    async (f, up) => {
      const r = await curl(f.url("/echo"), ["-H", "content-type: text/plain", "--data-binary", TEXT]);
      assertEquals(r.status, 200);
      assertEquals(up.requests[0]!.headers.get("content-encoding"), "gzip");
      assertEquals(await stat(f, "http.test.compressor.text.gzip.request.compressed"), 1);
    },
  );
});

Deno.test("decompressor inflates gzip request and response bodies and advertises gzip upstream", itOpts, async () => {
  const filter = `- name: envoy.filters.http.decompressor
  typed_config:
    "@type": ${DECOMPRESSOR}
    decompressor_library: { name: in, typed_config: { "@type": ${GUNZIP} } }`;
  await withFerry(filter, async (f, up) => {
    const gz = await Deno.makeTempFile();
    try {
      await Deno.writeFile(gz, zlib.gzipSync(TEXT));
      for (const h2 of [false, true]) {
        const r = await curl(f.url("/echo"), [
          ...(h2 ? ["--http2-prior-knowledge"] : []),
          "-H",
          "content-encoding: gzip",
          "-H",
          "content-type: text/plain",
          "--data-binary",
          `@${gz}`,
        ]);
        assertEquals(r.status, 200);
        const seen = JSON.parse(r.body);
        assertEquals(seen.body, TEXT);
        assertEquals(seen.ce, null);
        assertEquals(seen.ae, "gzip");
      }
      // The response of /encoded is gzip: the client gets it inflated.
      const e = await curlRaw(f.url("/encoded"));
      assertEquals(e.headers["content-encoding"], undefined);
      assertEquals(new TextDecoder().decode(e.body), TEXT);
      // A corrupt body resets the stream; the next request is served.
      await Deno.writeFile(gz, new TextEncoder().encode("not gzip at all ".repeat(10)));
      const bad = await curl(f.url("/echo"), ["-H", "content-encoding: gzip", "--data-binary", `@${gz}`]);
      assert(bad.status !== 200, `corrupt body got ${bad.status}`);
      assertEquals((await curl(f.url("/text"))).body, TEXT);
      assertEquals(up.requests.filter((r) => r.url.pathname === "/echo").length, 2);
      assertEquals(await stat(f, "http.test.decompressor.in.gzip.request.decompressed"), 3);
      assertEquals(await stat(f, "http.test.decompressor.in.gzip.response.decompressed"), 1);
      assertEquals(await stat(f, "http.test.decompressor.in.gzip.request.decompression_error"), 1);
    } finally {
      await Deno.remove(gz);
    }
  });
});

Deno.test(
  "compressor enabled.runtime_key turns response compression off from the admin runtime layer",
  itOpts,
  async () => {
    const up = await startUpstream(upstreamHandler);
    const f = await startFerry(
      "layered_runtime: { layers: [{ name: admin, admin_layer: {} }] }\n" + hcmBootstrap({
        routes: `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, route: { cluster: up } }]`,
        clusters: staticCluster("up", [up.port]),
        httpFilters: gzipFilter(
          "    response_direction_config: { common_config: { enabled: { default_value: true, runtime_key: test.gzip.on } } }",
        ),
      }),
    );
    try {
      assertEquals(
        (await curlRaw(f.url("/text"), ["-H", "accept-encoding: gzip"])).headers["content-encoding"],
        "gzip",
      );
      await (await fetch(`${f.adminUrl}/runtime_modify?test.gzip.on=false`, { method: "POST" })).text();
      assertEquals(
        (await curlRaw(f.url("/text"), ["-H", "accept-encoding: gzip"])).headers["content-encoding"],
        undefined,
      );
    } finally {
      await (await fetch(`${f.adminUrl}/runtime_modify?test.gzip.on=`, { method: "POST" })).text();
      await f.stop();
      await up.close();
    }
  },
);

Deno.test("compressor holds upstream trailers until the compressed body is out", itOpts, async () => {
  const chunk = TEXT.slice(0, 4000);
  const raw = startRawServer(async (c) => {
    // One response per request head, on a kept-alive connection.
    while ((await readHead(c)) !== "") {
      const hex = new TextEncoder().encode(chunk).length.toString(16);
      await c.write(new TextEncoder().encode(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n" +
          `${hex}\r\n${chunk}\r\n${hex}\r\n${chunk}\r\n0\r\nx-sum: 42\r\n\r\n`,
      ));
    }
  });
  const f = await startFerry(hcmBootstrap({
    hcmExtra: "codec_type: AUTO",
    routes: `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, route: { cluster: raw } }]`,
    clusters: staticCluster("raw", [raw.port]),
    httpFilters: gzipFilter(),
  }));
  try {
    for (const h2 of [[], ["--http2-prior-knowledge"]]) {
      const r = await curlRaw(f.url("/t"), [...h2, "-H", "accept-encoding: gzip"]);
      assertEquals(r.status, 200);
      assertEquals(r.headers["content-encoding"], "gzip");
      assertEquals(new TextDecoder().decode(zlib.gunzipSync(r.body)), chunk + chunk);
    }
  } finally {
    await f.stop();
    raw.close();
  }
});

Deno.test("compressor filters for gzip and brotli in one chain make one choice by q-value", itOpts, async () => {
  const filters = `${gzipFilter()}
- name: envoy.filters.http.compressor
  typed_config:
    "@type": ${COMPRESSOR}
    compressor_library: { name: b, typed_config: { "@type": ${BROTLI} } }`;
  await withFerry(filters, async (f) => {
    const g = await curlRaw(f.url("/text"), ["-H", "accept-encoding: gzip, br"]);
    assertEquals(g.headers["content-encoding"], "gzip");
    assertEquals(new TextDecoder().decode(zlib.gunzipSync(g.body)), TEXT);
    const b = await curlRaw(f.url("/text"), ["--http2-prior-knowledge", "-H", "accept-encoding: gzip;q=0.5, br"]);
    assertEquals(b.headers["content-encoding"], "br");
    assertEquals(new TextDecoder().decode(zlib.brotliDecompressSync(b.body)), TEXT);
    assertEquals(await stat(f, "http.test.compressor.b.brotli.header_compressor_overshadowed"), 1);
    // The gzip filter runs after brotli on the way out: it sees the response already encoded and leaves it.
    assertEquals(await stat(f, "http.test.compressor.text.gzip.compressed"), 1);
  }, "codec_type: AUTO");
});

Deno.test("compressor config errors name the field", itOpts, async () => {
  const bad = (cfg: string, want: RegExp) =>
    assertStartFails(
      () =>
        startFerry(hcmBootstrap({
          routes:
            `- name: all\n  domains: ["*"]\n  routes: [{ match: { prefix: "/" }, direct_response: { status: 200 } }]`,
          httpFilters: `- name: envoy.filters.http.compressor\n  typed_config: { "@type": ${COMPRESSOR}, ${cfg} }`,
        })),
      want,
      cfg,
    );
  await bad(`response_direction_config: {}`, /compressor_library/);
  await bad(
    `compressor_library: { name: x, typed_config: { "@type": ${GZIP}, window_bits: 20 } }`,
    /compressor_library\.typed_config\.window_bits/,
  );
  await bad(
    `compressor_library: { name: x, typed_config: { "@type": ${GZIP} } }, response_direction_config: { nope: 1 }`,
    /response_direction_config\.nope/,
  );
});
