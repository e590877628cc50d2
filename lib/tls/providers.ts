/**
 * The TLS providers of this build, as a list of {@link TlsProviderFactory}s (DESIGN §4), and the registry the
 * transport-socket parser looks them up in by `typed_config` `@type`. A separate file from `mod.ts` because
 * `mod.ts` re-exports the transport-socket parser, which consults this list: keeping the list here avoids an import
 * cycle. `mod.ts` exports it.
 *
 * @module
 */
import { Registry } from "../config/registry.ts";
import { createGmTlsProviderFactory, gmTlsProviderFactory } from "./gm.ts";
import type { GmEngines } from "./_gm_types.ts";
import { nativeTlsProviderFactory } from "./native.ts";
import type { TlsProviderFactory } from "./provider.ts";

/** Every built-in TLS provider: `native` (Deno's rustls), then `gm` (our SM engines). */
export const builtinTlsProviders: readonly TlsProviderFactory[] = [nativeTlsProviderFactory, gmTlsProviderFactory];

/** Options of {@link createTlsProviderRegistry}. */
export interface TlsProviderRegistryOptions {
  /** A third party's own providers, registered after the built-in ones. */
  readonly extra?: readonly TlsProviderFactory[];
  /** Replaces the gm provider's engine table (tests). */
  readonly gmEngines?: GmEngines;
}

/**
 * A registry of the built-in TLS providers plus `extra`; throws if a name or `@type` URL is registered twice. The
 * transport-socket parser builds one per parse unless it is given one.
 */
export function createTlsProviderRegistry(options: TlsProviderRegistryOptions = {}): Registry<TlsProviderFactory> {
  const builtin = options.gmEngines
    ? builtinTlsProviders.map((f) => f === gmTlsProviderFactory ? createGmTlsProviderFactory(options.gmEngines) : f)
    : builtinTlsProviders;
  return new Registry("TLS provider", [...builtin, ...(options.extra ?? [])]);
}
