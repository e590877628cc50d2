/**
 * The codecs built into Ferry, listed for the codec registry.
 *
 * @module
 */
import type { CodecFactory } from "../lib/api/codec.ts";
import { boltCodecFactory } from "./bolt/mod.ts";
import { createDetectCodecFactory } from "./detect.ts";
import { dubboCodecFactory } from "./dubbo/mod.ts";
import { http1CodecFactory } from "./http1/mod.ts";
import { http2CodecFactory } from "./http2/mod.ts";

/**
 * Every built-in codec factory: HTTP/1.1, HTTP/2, and `auto` (either, by ALPN or the HTTP/2 preface; the HCM's
 * default `codec_type: AUTO`), Bolt (SOFARPC) and Dubbo 2 (both `multiplex-request-id`).
 */
export const builtinCodecs: readonly CodecFactory[] = [
  http1CodecFactory,
  http2CodecFactory,
  createDetectCodecFactory(http1CodecFactory, http2CodecFactory),
  boltCodecFactory,
  dubboCodecFactory,
];
