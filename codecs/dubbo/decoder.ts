/**
 * Dubbo 2 decoding: {@link DubboFrameDecoder} cuts a byte stream into frames (incremental, any split of the input
 * gives the same frames), {@link decodeInvocation} reads the routing fields of a hessian2 request body, and
 * {@link detect} tells whether a connection's first bytes are Dubbo (for protocol detection).
 *
 * @module
 */
import { CodecError } from "../../lib/api/errors.ts";
import { Hessian2Reader } from "./hessian2.ts";
import { DEFAULT_MAX_BODY_BYTES, type DubboInvocation, HEADER_LENGTH, MAGIC_HIGH, MAGIC_LOW } from "./types.ts";

/**
 * Receives one frame. `body` is a view valid only during the call. The request id is split in two unsigned 32-bit
 * halves (`idHigh`, `idLow`).
 */
export type FrameHandler = (flag: number, status: number, idHigh: number, idLow: number, body: Uint8Array) => void;

/**
 * Cuts Dubbo frames out of a byte stream. Frames wholly inside one `feed` are handed out as views of its input;
 * only a partial frame at the end is copied (into a buffer kept across calls).
 */
export class DubboFrameDecoder {
  readonly #maxBody: number;
  #held: Uint8Array | undefined;
  #heldLen = 0;
  /** Bytes of input consumed over the connection's life (for error offsets). */
  #consumed = 0;
  /** Bumped by `reset`, so that a feed in progress stops after the frame whose handler reset it. */
  #generation = 0;

  /** A decoder refusing bodies longer than `maxBodyBytes` (default 8 MiB). */
  constructor(maxBodyBytes = DEFAULT_MAX_BODY_BYTES) {
    this.#maxBody = maxBodyBytes;
  }

  /** Bytes held back: a frame not yet complete. */
  get buffered(): number {
    return this.#heldLen;
  }

  /** Drops what is held (the connection is closing). */
  reset(): void {
    this.#generation++;
    this.#held = undefined;
    this.#heldLen = 0;
  }

  /**
   * Feeds `data`, calling `onFrame` for each complete frame in order. Throws {@link CodecError} on a bad magic or a
   * body length above the limit (the stream cannot be resynchronised after either: close the connection).
   */
  feed(data: Uint8Array, onFrame: FrameHandler): void {
    let buf: Uint8Array;
    let end: number;
    if (this.#heldLen === 0) {
      buf = data;
      end = data.length;
    } else {
      this.#append(data);
      buf = this.#held!;
      end = this.#heldLen;
    }
    let p = 0;
    const generation = this.#generation;
    while (end - p >= HEADER_LENGTH) {
      if (buf[p] !== MAGIC_HIGH || buf[p + 1] !== MAGIC_LOW) {
        throw new CodecError("Protocol", "dubbo: bad magic", { offset: this.#consumed + p });
      }
      const len = ((buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!) >>> 0;
      if (len > this.#maxBody) {
        throw new CodecError("Protocol", `dubbo: body length ${len} above the limit of ${this.#maxBody}`, {
          offset: this.#consumed + p + 12,
          status: 413,
        });
      }
      if (end - p - HEADER_LENGTH < len) break;
      const idHigh = ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
      const idLow = ((buf[p + 8]! << 24) | (buf[p + 9]! << 16) | (buf[p + 10]! << 8) | buf[p + 11]!) >>> 0;
      const flag = buf[p + 2]!;
      const status = buf[p + 3]!;
      const bodyStart = p + HEADER_LENGTH;
      p = bodyStart + len;
      this.#consumed += HEADER_LENGTH + len;
      onFrame(flag, status, idHigh, idLow, buf.subarray(bodyStart, p));
      // A handler may have reset the decoder (connection closing).
      if (this.#generation !== generation) return;
    }
    // A partial magic is refused as early as it can be.
    if (p < end && buf[p] !== MAGIC_HIGH) {
      throw new CodecError("Protocol", "dubbo: bad magic", { offset: this.#consumed + p });
    }
    if (p < end - 1 && buf[p + 1] !== MAGIC_LOW) {
      throw new CodecError("Protocol", "dubbo: bad magic", { offset: this.#consumed + p + 1 });
    }
    this.#keep(buf, p, end);
  }

  #append(data: Uint8Array): void {
    const need = this.#heldLen + data.length;
    let held = this.#held!;
    if (held.length < need) {
      const grown = new Uint8Array(Math.max(need, held.length * 2));
      grown.set(held.subarray(0, this.#heldLen));
      held = grown;
      this.#held = held;
    }
    held.set(data, this.#heldLen);
    this.#heldLen = need;
  }

  /** Keeps `buf[p, end)` for the next call (copied when it is the caller's buffer). */
  #keep(buf: Uint8Array, p: number, end: number): void {
    const rest = end - p;
    if (rest === 0) {
      this.#heldLen = 0;
      // A large buffer is not kept for an idle connection.
      if (this.#held !== undefined && this.#held.length > 64 * 1024) this.#held = undefined;
      return;
    }
    if (buf === this.#held) {
      if (p > 0) buf.copyWithin(0, p, end);
    } else {
      // Room for the whole frame when its length is known, so that the rest is appended without regrowth.
      let want = rest;
      if (rest >= HEADER_LENGTH) {
        want = HEADER_LENGTH +
          (((buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!) >>> 0);
      }
      const held = this.#held !== undefined && this.#held.length >= want
        ? this.#held
        : new Uint8Array(Math.max(want, 256));
      held.set(buf.subarray(p, end));
      this.#held = held;
    }
    this.#heldLen = rest;
  }
}

/**
 * Counts the parameter types in a JVM method descriptor's parameter list (`Ljava/lang/String;I[J` → 3).
 * Throws {@link CodecError} if it is malformed.
 */
export function countParameterTypes(desc: string): number {
  let n = 0;
  let i = 0;
  const len = desc.length;
  while (i < len) {
    let c = desc.charCodeAt(i);
    while (c === 0x5b /* [ */) {
      i++;
      if (i >= len) throw badDesc(desc);
      c = desc.charCodeAt(i);
    }
    if (c === 0x4c /* L */) {
      const semi = desc.indexOf(";", i);
      if (semi < 0) throw badDesc(desc);
      i = semi + 1;
    } else if ("ZBCSIJFDV".includes(desc[i]!)) {
      i++;
    } else throw badDesc(desc);
    n++;
  }
  return n;
}

function badDesc(desc: string): CodecError {
  return new CodecError("Protocol", `dubbo: bad parameter types descriptor ${JSON.stringify(desc.slice(0, 100))}`);
}

/**
 * Reads a hessian2 request body: dubbo version, service path, service version, method name, parameter types, the
 * arguments (stepped over, never decoded) and the attachments map. Throws {@link CodecError} on malformed or
 * truncated input.
 */
export function decodeInvocation(body: Uint8Array): DubboInvocation {
  const r = new Hessian2Reader(body);
  const dubboVersion = r.readStringOrNull() ?? "";
  const path = r.readString();
  const version = r.readStringOrNull() ?? "";
  const method = r.readString();
  const parameterTypes = r.readStringOrNull() ?? "";
  const n = countParameterTypes(parameterTypes);
  for (let i = 0; i < n; i++) r.skipValue();
  const attachments = r.atEnd ? [] : r.readStringMap();
  return { dubboVersion, path, version, method, parameterTypes, attachments };
}

/** True if the body of an event frame is a heartbeat (hessian2 null, or empty as some clients send). */
export function isHeartbeatBody(body: Uint8Array): boolean {
  return body.length === 0 || (body.length === 1 && body[0] === 0x4e);
}

/**
 * Whether `bytes` (a connection's first bytes) start a Dubbo frame: `"yes"` once the magic and a request flag are
 * seen, `"no"` as soon as a byte differs, `"need-more"` before the third byte.
 */
export function detect(bytes: Uint8Array): "yes" | "no" | "need-more" {
  if (bytes.length === 0) return "need-more";
  if (bytes[0] !== MAGIC_HIGH) return "no";
  if (bytes.length === 1) return "need-more";
  if (bytes[1] !== MAGIC_LOW) return "no";
  if (bytes.length === 2) return "need-more";
  // A client opens with a request (or a heartbeat request): the request bit is set.
  return (bytes[2]! & 0x80) !== 0 ? "yes" : "no";
}
