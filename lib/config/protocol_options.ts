/**
 * Parsers for Envoy's protocol option messages shared by the HTTP connection manager (downstream) and clusters
 * (upstream): `envoy.config.core.v3.Http2ProtocolOptions` into the codec's {@link Http2Options}.
 *
 * @module
 */
import type { Http2Options } from "../api/codec.ts";
import { ConfigError } from "../api/errors.ts";
import type { ObjReader } from "./reader.ts";

const MAX_WINDOW = 2 ** 31 - 1;

/**
 * Reads an `Http2ProtocolOptions` object (Envoy's field names and ranges) into {@link Http2Options}; absent
 * fields stay absent so that the codec applies its own defaults. Calls `done()` on the reader.
 */
export function parseHttp2ProtocolOptions(o: ObjReader): Http2Options {
  o.envoyMessage("envoy.config.core.v3.Http2ProtocolOptions");
  const out: { -readonly [K in keyof Http2Options]: Http2Options[K] } = {};
  const hpack = o.int("hpack_table_size", { min: 0, max: 2 ** 32 - 1 });
  if (hpack !== undefined) out.hpackTableSize = hpack;
  const mcs = o.int("max_concurrent_streams", { min: 1, max: MAX_WINDOW });
  if (mcs !== undefined) out.maxConcurrentStreams = mcs;
  const isw = o.int("initial_stream_window_size", { min: 65535, max: MAX_WINDOW });
  if (isw !== undefined) out.initialStreamWindowSize = isw;
  const icw = o.int("initial_connection_window_size", { min: 65535, max: MAX_WINDOW });
  if (icw !== undefined) out.initialConnectionWindowSize = icw;
  const allowConnect = o.bool("allow_connect");
  if (allowConnect !== undefined) out.allowConnect = allowConnect;
  if (o.bool("allow_metadata")) o.unsupported("allow_metadata", "is not supported (METADATA frames)");
  const mof = o.int("max_outbound_frames", { min: 1 });
  if (mof !== undefined) out.maxOutboundFrames = mof;
  const mocf = o.int("max_outbound_control_frames", { min: 1 });
  if (mocf !== undefined) out.maxOutboundControlFrames = mocf;
  const empty = o.int("max_consecutive_inbound_frames_with_empty_payload", { min: 0 });
  if (empty !== undefined) out.maxConsecutiveInboundFramesWithEmptyPayload = empty;
  const prio = o.int("max_inbound_priority_frames_per_stream", { min: 0 });
  if (prio !== undefined) out.maxInboundPriorityFramesPerStream = prio;
  const wu = o.int("max_inbound_window_update_frames_per_data_frame_sent", { min: 1 });
  if (wu !== undefined) out.maxInboundWindowUpdateFramesPerDataFrameSent = wu;
  // Ferry answers malformed messages with a stream error (RST_STREAM) as Envoy's default does; the knob that
  // would instead end the whole connection is accepted only at its default.
  if (o.bool("stream_error_on_invalid_http_messaging") === true) {
    o.unsupported("stream_error_on_invalid_http_messaging", "is not supported (malformed messages reset the stream)");
  }
  if (o.has("override_stream_error_on_invalid_http_message")) {
    o.unsupported("override_stream_error_on_invalid_http_message");
  }
  if (o.has("custom_settings_parameters")) o.unsupported("custom_settings_parameters");
  const ka = o.obj("connection_keepalive");
  if (ka) {
    ka.envoyMessage("envoy.config.core.v3.KeepaliveSettings");
    const intervalMs = ka.durationMs("interval");
    const timeoutMs = ka.durationMs("timeout", { required: true });
    if (timeoutMs !== undefined && timeoutMs < 1) throw new ConfigError(ka.at("timeout"), "must be at least 1ms");
    if (ka.has("interval_jitter")) ka.value("interval_jitter");
    if (ka.has("connection_idle_interval")) ka.unsupported("connection_idle_interval");
    ka.done();
    if (intervalMs !== undefined && intervalMs > 0) {
      if (intervalMs < 1) throw new ConfigError(ka.at("interval"), "must be at least 1ms");
      out.connectionKeepalive = { intervalMs, timeoutMs: timeoutMs! };
    }
  }
  o.skip("use_oghttp2_codec");
  if (o.has("max_metadata_size")) o.unsupported("max_metadata_size");
  o.done();
  return out;
}
