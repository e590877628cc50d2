/**
 * `envoy.filters.listener.tls_inspector`: peeks the ClientHello and records `transport_protocol` (`tls`), the SNI
 * and the offered ALPN protocols for filter-chain matching, plus the parsed ClientHello so a mixed listener can
 * hand TLCP / SM-only clients to the `gm` provider. Non-TLS bytes leave the transport protocol unset
 * (`raw_buffer`), as Envoy does.
 *
 * @module
 */
import { ObjReader } from "../../lib/config/reader.ts";
import type {
  ListenerFilter,
  ListenerFilterFactory,
  ListenerFilterState,
  ListenerFilterStatus,
} from "../../lib/server/listener_filter.ts";
import { MAX_CLIENT_HELLO, parseClientHello } from "../../lib/tls/client_hello.ts";

/** Parsed `TlsInspector` config. */
export interface TlsInspectorConfig {
  /** Largest ClientHello read, in bytes. */
  readonly maxClientHelloSize: number;
}

/** The inspector instance of one connection. */
export class TlsInspector implements ListenerFilter {
  readonly maxReadBytes: number;

  constructor(config: TlsInspectorConfig) {
    this.maxReadBytes = config.maxClientHelloSize + 5 * 8;
  }

  onData(data: Uint8Array, state: ListenerFilterState): ListenerFilterStatus {
    const r = parseClientHello(data, this.maxReadBytes);
    if (r.kind === "need-more") return "need-more";
    if (r.kind === "hello") {
      state.transportProtocol = "tls";
      state.serverName = r.hello.serverName;
      state.applicationProtocols = r.hello.alpn;
      state.clientHello = r.hello;
    }
    return "continue";
  }
}

/** The tls_inspector factory. */
export const tlsInspectorFactory: ListenerFilterFactory<TlsInspectorConfig> = {
  name: "envoy.filters.listener.tls_inspector",
  configTypes: ["type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"],
  parseConfig(raw, path) {
    const o = new ObjReader(raw, path);
    o.skip("@type");
    o.bool("enable_ja3_fingerprinting") && o.unsupported("enable_ja3_fingerprinting", "true is not supported");
    o.bool("enable_ja4_fingerprinting") && o.unsupported("enable_ja4_fingerprinting", "true is not supported");
    const size = o.int("initial_read_buffer_size", { min: 1, max: MAX_CLIENT_HELLO }) ?? MAX_CLIENT_HELLO;
    o.done();
    return { maxClientHelloSize: Math.max(size, MAX_CLIENT_HELLO) };
  },
  create(config) {
    return new TlsInspector(config);
  },
};
