/**
 * Dubbo 2 encoding: frame headers and the frames Ferry writes itself (heartbeats, the readonly event of a drain,
 * error responses). Request and response bodies from peers are forwarded as the bytes they came in, never
 * re-serialized; only the header is rewritten (the request id).
 *
 * @module
 */
import { encodeHessian2String } from "./hessian2.ts";
import {
  DubboStatus,
  FLAG_EVENT,
  FLAG_REQUEST,
  FLAG_TWO_WAY,
  HEADER_LENGTH,
  MAGIC_HIGH,
  MAGIC_LOW,
  ResultFlag,
  SERIALIZATION_HESSIAN2,
} from "./types.ts";

/** Writes a frame header into `out[at, at+16)`. */
export function writeFrameHeader(
  out: Uint8Array,
  at: number,
  frame: { flag: number; status: number; idHigh: number; idLow: number; length: number },
): void {
  out[at] = MAGIC_HIGH;
  out[at + 1] = MAGIC_LOW;
  out[at + 2] = frame.flag;
  out[at + 3] = frame.status;
  writeU32(out, at + 4, frame.idHigh);
  writeU32(out, at + 8, frame.idLow);
  writeU32(out, at + 12, frame.length);
}

function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** A whole frame: header and `body`. */
export function encodeFrame(
  flag: number,
  status: number,
  idHigh: number,
  idLow: number,
  body: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  writeFrameHeader(out, 0, { flag, status, idHigh, idLow, length: body.length });
  out.set(body, HEADER_LENGTH);
  return out;
}

const NULL_BODY = new Uint8Array([0x4e]);

/** The answer to a heartbeat request: an OK event response with a null body, same id and serialization. */
export function encodeHeartbeatResponse(idHigh: number, idLow: number, serialization: number): Uint8Array {
  return encodeFrame(serialization | FLAG_EVENT, DubboStatus.OK, idHigh, idLow, NULL_BODY);
}

/** A heartbeat request (two-way event, null body), as Dubbo sends on an idle connection. */
export function encodeHeartbeatRequest(idHigh: number, idLow: number): Uint8Array {
  return encodeFrame(
    FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT | SERIALIZATION_HESSIAN2,
    0,
    idHigh,
    idLow,
    NULL_BODY,
  );
}

/**
 * The readonly event (one-way event, body the string `"R"`) a Dubbo server sends when it shuts down: the client
 * stops placing new requests on the connection.
 */
export function encodeReadonlyEvent(idHigh: number, idLow: number): Uint8Array {
  return encodeFrame(FLAG_REQUEST | FLAG_EVENT | SERIALIZATION_HESSIAN2, 0, idHigh, idLow, encodeHessian2String("R"));
}

/**
 * The body of a response Ferry makes: for a status other than OK, the error message as a hessian2 string (what a
 * Dubbo client shows in its `RemotingException`); for OK, a value result holding the message.
 */
export function localResponseBody(status: number, message: string): Uint8Array {
  const s = encodeHessian2String(message);
  if (status !== DubboStatus.OK) return s;
  const out = new Uint8Array(1 + s.length);
  out[0] = 0x90 + ResultFlag.VALUE; // hessian2 one-octet int
  out.set(s, 1);
  return out;
}

/** An error (or OK) response Ferry makes itself for request id `idHigh:idLow`. */
export function encodeLocalResponse(idHigh: number, idLow: number, status: number, message: string): Uint8Array {
  return encodeFrame(SERIALIZATION_HESSIAN2, status, idHigh, idLow, localResponseBody(status, message));
}
