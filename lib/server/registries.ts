/**
 * The built-in extension registries: the lists of `codecs/mod.ts`, `filters/network/mod.ts` and
 * `filters/http/mod.ts`, registered once. An embedder passes extra factories to add its own.
 *
 * @module
 */
import type { CodecFactory } from "../api/codec.ts";
import type { NetworkFilterFactory } from "../api/network.ts";
import type { HttpFilterFactory } from "../api/stream_filter.ts";
import { Registry } from "../config/registry.ts";
import type { Registries } from "../config/registry.ts";
import { builtinCodecs } from "../../codecs/mod.ts";
import { builtinNetworkFilters } from "../../filters/network/mod.ts";
import { builtinHttpFilters } from "../../filters/http/mod.ts";
import { builtinListenerFilters } from "../../filters/listener/mod.ts";
import type { ListenerFilterFactory } from "./listener_filter.ts";

/** Extra factories an embedder adds to the built-ins. */
export interface Extensions {
  readonly codecs?: readonly CodecFactory[];
  readonly networkFilters?: readonly NetworkFilterFactory[];
  readonly httpFilters?: readonly HttpFilterFactory[];
  readonly listenerFilters?: readonly ListenerFilterFactory[];
}

/** Builds the registries from the built-in lists plus `extra`; duplicate names or types throw. */
export function createRegistries(extra: Extensions = {}): Registries {
  return {
    codecs: new Registry("codec", [...builtinCodecs, ...(extra.codecs ?? [])]),
    network: new Registry("network filter", [...builtinNetworkFilters, ...(extra.networkFilters ?? [])]),
    http: new Registry("HTTP filter", [...builtinHttpFilters, ...(extra.httpFilters ?? [])]),
    listener: new Registry("listener filter", [...builtinListenerFilters, ...(extra.listenerFilters ?? [])]),
  };
}
