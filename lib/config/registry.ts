/**
 * The extension registry: factories listed in each folder's `mod.ts`, registered here by name and by their
 * typed-config `@type` URLs. Registering the same name or URL twice is an error (no silent shadowing).
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { CodecFactory } from "../api/codec.ts";
import type { NetworkFilterFactory } from "../api/network.ts";
import type { HttpFilterFactory } from "../api/stream_filter.ts";
import type { ListenerFilterFactory } from "../server/listener_filter.ts";

/** Anything registrable: a name and the `@type` URLs of its config. */
export interface Named {
  readonly name: string;
  readonly configTypes?: readonly string[];
}

/** Factories of one kind, by name and by `@type` URL. */
export class Registry<F extends Named> {
  readonly kind: string;
  #byName = new Map<string, F>();
  #byType = new Map<string, F>();

  constructor(kind: string, factories: readonly F[] = []) {
    this.kind = kind;
    for (const f of factories) this.register(f);
  }

  /** Adds a factory; throws if its name or a config type is already taken. */
  register(f: F): void {
    if (this.#byName.has(f.name)) throw new Error(`${this.kind} "${f.name}" is registered twice`);
    this.#byName.set(f.name, f);
    for (const t of f.configTypes ?? []) {
      const other = this.#byType.get(t);
      if (other) throw new Error(`${this.kind} config type "${t}" is claimed by "${other.name}" and "${f.name}"`);
      this.#byType.set(t, f);
    }
  }

  byName(name: string): F | undefined {
    return this.#byName.get(name);
  }

  byType(typeUrl: string): F | undefined {
    return this.#byType.get(typeUrl);
  }

  get names(): string[] {
    return [...this.#byName.keys()];
  }

  /**
   * Resolves an Envoy `{name, typed_config}` entry: by `@type` if typed_config is given, else by name.
   * Throws ConfigError naming `path` if neither is known.
   */
  resolve(name: string | undefined, typeUrl: string | undefined, path: string): F {
    if (typeUrl !== undefined) {
      const f = this.#byType.get(typeUrl);
      // A name listed as an ignored extension matches whatever its config's type (Istio sends TypedStructs).
      const ignored = name !== undefined ? this.#byName.get(name) : undefined;
      if (!f && ignored && (ignored as { ignored?: boolean }).ignored) return ignored;
      if (!f) {
        throw new ConfigError(
          `${path}.typed_config.@type`,
          `${this.kind} type ${JSON.stringify(typeUrl)} is not supported (known: ${
            [...this.#byType.keys()].join(", ")
          })`,
        );
      }
      return f;
    }
    if (name !== undefined) {
      const f = this.#byName.get(name);
      if (f) return f;
      throw new ConfigError(
        `${path}.name`,
        `unknown ${this.kind} ${JSON.stringify(name)} (known: ${this.names.join(", ")})`,
      );
    }
    throw new ConfigError(path, "one of name, typed_config is required");
  }
}

/** The registries the config parsers consult. */
export interface Registries {
  readonly network: Registry<NetworkFilterFactory>;
  readonly http: Registry<HttpFilterFactory>;
  readonly codecs: Registry<CodecFactory & Named>;
  /** Listener filters (`filters/listener/mod.ts`); absent in registries built before listener filters existed. */
  readonly listener?: Registry<ListenerFilterFactory>;
}
