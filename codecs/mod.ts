/**
 * The codecs built into Ferry, listed for the codec registry.
 *
 * @module
 */
import type { CodecFactory } from "../lib/api/codec.ts";
import { http1CodecFactory } from "./http1/mod.ts";

/** Every built-in codec factory. */
export const builtinCodecs: readonly CodecFactory[] = [http1CodecFactory];
