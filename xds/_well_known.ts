/**
 * The proto3-JSON forms of the scalar-like well-known types (Duration, Timestamp, FieldMask), of 64-bit integers and
 * of bytes, shared by the decoder and the encoder in `proto.ts`. Private to `xds/`.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** A 64-bit integer as protobufjs hands it over (a `Long` when the `long` package is present, else a number). */
export interface LongLike {
  readonly low: number;
  readonly high: number;
  readonly unsigned: boolean;
  toString(): string;
}

/** True for a protobufjs `Long`. */
export function isLong(v: unknown): v is LongLike {
  return typeof v === "object" && v !== null && "low" in v && "high" in v && "unsigned" in v;
}

/** A 64-bit integer as JSON: a number when it is exactly representable, else its decimal string. */
export function int64ToJson(v: unknown): number | string {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  const s = String(v);
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
}

/** The integer value of a number, a `Long` or a decimal string, as a bigint. */
export function toBigInt(v: unknown): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return BigInt(Math.trunc(v));
  return BigInt(String(v));
}

/** Bytes as standard base64. */
export function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Standard or URL-safe base64 (padding optional) to bytes; undefined when the text is not base64. */
export function base64ToBytes(s: string): Uint8Array | undefined {
  if (!BASE64.test(s)) return undefined;
  const b = Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Nanoseconds as proto3 JSON's fraction: none, or 3, 6 or 9 digits. */
function fraction(nanos: number): string {
  if (nanos === 0) return "";
  const digits = String(nanos).padStart(9, "0");
  if (nanos % 1_000_000 === 0) return "." + digits.slice(0, 3);
  if (nanos % 1_000 === 0) return "." + digits.slice(0, 6);
  return "." + digits;
}

/** `google.protobuf.Duration` (seconds, nanos) as `"1.500s"`. */
export function durationToJson(seconds: unknown, nanos: number): string {
  const s = toBigInt(seconds ?? 0);
  const negative = s < 0n || nanos < 0;
  const abs = s < 0n ? -s : s;
  return `${negative ? "-" : ""}${abs}${fraction(Math.abs(nanos))}s`;
}

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000n;

/** `"1.5s"` to (seconds, nanos); a message naming the problem when the text is not a duration. */
export function durationFromJson(v: unknown): { seconds: string; nanos: number } | string {
  if (typeof v !== "string") return `expected a duration string like "1.5s", got ${describe(v)}`;
  const m = DURATION.exec(v);
  if (!m) return `invalid duration "${v}": expected a number of seconds with an "s" suffix, like "1.5s"`;
  const secs = BigInt(m[2]!);
  if (secs > MAX_DURATION_SECONDS) return `invalid duration "${v}": out of range`;
  const nanos = m[3] ? Number(m[3].padEnd(9, "0")) : 0;
  const sign = m[1] ? -1 : 1;
  return { seconds: String(m[1] && secs !== 0n ? -secs : secs), nanos: nanos === 0 ? 0 : sign * nanos };
}

/** `google.protobuf.Timestamp` as RFC 3339 in UTC (`2024-01-02T03:04:05.500Z`). */
export function timestampToJson(seconds: unknown, nanos: number): string {
  const ms = Number(toBigInt(seconds ?? 0)) * 1000;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return `${seconds}s`;
  return date.toISOString().slice(0, 19) + fraction(nanos) + "Z";
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/** RFC 3339 to (seconds, nanos); a message naming the problem when the text is not a timestamp. */
export function timestampFromJson(v: unknown): { seconds: string; nanos: number } | string {
  if (typeof v !== "string") return `expected an RFC 3339 timestamp string, got ${describe(v)}`;
  const m = TIMESTAMP.exec(v);
  const ms = m ? Date.parse(m[1]! + (m[3]!.toUpperCase() === "Z" ? "Z" : m[3]!)) : NaN;
  if (!m || Number.isNaN(ms)) return `invalid timestamp "${v}": expected RFC 3339 like "2024-01-02T03:04:05Z"`;
  return { seconds: String(Math.floor(ms / 1000)), nanos: m[2] ? Number(m[2].padEnd(9, "0")) : 0 };
}

/** `google.protobuf.FieldMask` paths as proto3 JSON: lowerCamelCase, comma-separated. */
export function fieldMaskToJson(paths: readonly string[]): string {
  return paths.map((p) => p.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())).join(",");
}

/** A proto3-JSON FieldMask string back to snake_case paths. */
export function fieldMaskFromJson(v: unknown): string[] | string {
  if (typeof v !== "string") return `expected a field mask string, got ${describe(v)}`;
  if (v === "") return [];
  return v.split(",").map((p) => p.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase()));
}

/** A short description of a JSON value for messages: `a string`, `an array`, `the number 3`. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${v}`;
  return typeof v === "object" ? "an object" : typeof v;
}
