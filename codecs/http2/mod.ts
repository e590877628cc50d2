/**
 * The HTTP/2 codec (RFC 9113): {@link http2CodecFactory}, the codec classes it creates, the frame layer and the
 * error type.
 *
 * Flood and attack rules (each closes only the offending connection with GOAWAY and counts `http2.<name>`):
 * - rapid reset (CVE-2023-44487), server: once at least 100 streams were opened on the connection, a client
 *   RST_STREAM that brings the streams it reset before their response completed to half or more of the streams
 *   opened → ENHANCE_YOUR_CALM, `premature_reset`;
 * - streams beyond our SETTINGS_MAX_CONCURRENT_STREAMS → RST_STREAM(REFUSED_STREAM), `stream_refused_errors`;
 *   more refusals on one connection than `maxConcurrentStreams` → ENHANCE_YOUR_CALM;
 * - header blocks: the compressed block is bounded by 2 × maxHeadersKb KiB + 16 KiB and 64 CONTINUATION frames
 *   (beyond: ENHANCE_YOUR_CALM, `header_overflow`); a decoded list beyond maxHeadersKb / maxHeadersCount fails
 *   only its stream (server: a 431 response; client: RST_STREAM), `header_overflow`; an HPACK error is
 *   COMPRESSION_ERROR;
 * - outbound floods: the codec sees only the socket's watermark events, so it counts the frames it writes while
 *   the socket is above its high watermark (DATA is held back meanwhile, so these are HEADERS and control frames)
 *   and starts over when it drains: beyond `maxOutboundFrames` → `outbound_flood`, beyond
 *   `maxOutboundControlFrames` PING/SETTINGS acks and RST_STREAMs → `outbound_control_flood`
 *   (ENHANCE_YOUR_CALM);
 * - more than `maxConsecutiveInboundFramesWithEmptyPayload` consecutive DATA/HEADERS/CONTINUATION frames with an
 *   empty payload and no END_STREAM → `inbound_empty_frames_flood`;
 * - more PRIORITY frames than `maxInboundPriorityFramesPerStream` × (1 + streams opened) →
 *   `inbound_priority_frames_flood`;
 * - more WINDOW_UPDATE frames than 5 + `maxInboundWindowUpdateFramesPerDataFrameSent` × DATA frames sent →
 *   `inbound_window_update_frames_flood`.
 *
 * @module
 */
export { http2CodecFactory } from "./codec.ts";
export { Http2ServerCodec } from "./server.ts";
export { Http2ClientCodec } from "./client.ts";
export { H2_DEFAULTS, H2Stream } from "./_connection.ts";
export { Http2CodecError } from "./error.ts";
export { ErrorCode, errorCodeName, Flag, FrameType, PREFACE, SettingId } from "./frames.ts";
