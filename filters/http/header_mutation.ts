/**
 * `envoy.filters.http.header_mutation`: request and response header mutations (Envoy's `mutation_rules`
 * `HeaderMutation` list: `remove`, `append` with a `HeaderValueOption`, `remove_on_match`), applied in order.
 * `HeaderMutationPerRoute` entries in `typed_per_filter_config` add their mutations: by default the most specific
 * level (route, then virtual host, then route configuration) is applied first and the filter's own last, so the
 * less specific wins; `most_specific_header_mutations_wins: true` reverses the order, as in Envoy.
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { FormatContext, HeaderMutation, RouteResult, ValueMatcher } from "../../lib/api/route.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { applyHeaderMutation, type FormatSide, parseStringMatcher } from "../../lib/router/mod.ts";
import { mutableHeaderName, parseHeaderValueOption } from "./_header_options.ts";
import { DISABLED, PerRouteConfigs } from "./_per_route.ts";

/** The header mutation filter's `@type`. */
export const HEADER_MUTATION_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
/** The per-route entry's `@type`. */
export const HEADER_MUTATION_PER_ROUTE_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";

const NAME = "envoy.filters.http.header_mutation";

/** One mutation: a single-level {@link HeaderMutation}, or removal of every header whose name matches. */
export type HeaderOp = { readonly kind: "mutation"; readonly m: HeaderMutation } | {
  readonly kind: "remove_on_match";
  readonly matcher: ValueMatcher;
};

/** Parsed `Mutations`. */
export interface Mutations {
  readonly request: readonly HeaderOp[];
  readonly response: readonly HeaderOp[];
}

/** Parsed `HeaderMutation` filter config. */
export interface HeaderMutationConfig {
  readonly mutations: Mutations;
  readonly mostSpecificWins: boolean;
}

const NONE: Mutations = { request: [], response: [] };

function parseOps(o: ObjReader, key: string, side: FormatSide): HeaderOp[] {
  return o.objs(key, (m) => {
    const which = m.oneOf(["remove", "append", "remove_on_match"] as const, { required: true });
    let op: HeaderOp;
    if (which === "remove") {
      const name = mutableHeaderName(m.str("remove", { required: true }), m.at("remove"));
      if (name === "host" || name.startsWith(":")) throw new ConfigError(m.at("remove"), "cannot remove this header");
      op = { kind: "mutation", m: { add: [], remove: [name], empty: false } };
    } else if (which === "append") {
      op = { kind: "mutation", m: { add: [parseHeaderValueOption(m.obj("append")!, side)], remove: [], empty: false } };
    } else {
      const r = m.obj("remove_on_match")!;
      const matcher = parseStringMatcher(r.value("key_matcher", { required: true }), r.at("key_matcher"));
      r.done();
      op = { kind: "remove_on_match", matcher };
    }
    m.done();
    return op;
  });
}

function parseMutations(o: ObjReader | undefined): Mutations {
  if (!o) return NONE;
  const request = parseOps(o, "request_mutations", "request");
  const response = parseOps(o, "response_mutations", "response");
  o.done();
  return { request, response };
}

function parseHeaderMutationConfig(raw: Record<string, unknown>, path: string): HeaderMutationConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  const mutations = parseMutations(o.obj("mutations"));
  const mostSpecificWins = o.bool("most_specific_header_mutations_wins") ?? false;
  o.done();
  return { mutations, mostSpecificWins };
}

function apply(ops: readonly HeaderOp[], headers: HeaderMap, info: FormatContext): void {
  for (const op of ops) {
    if (op.kind === "mutation") applyHeaderMutation(op.m, headers, info);
    else headers.removeIf((n) => !n.startsWith(":") && op.matcher.test(n));
  }
}

/** The per-stream header mutation filter. */
export class HeaderMutationFilter implements StreamFilter {
  readonly #cfg: HeaderMutationConfig;
  readonly #levels: (r: RouteResult | null) => readonly Mutations[];
  readonly #cb: StreamFilterCallbacks;
  #chain: readonly Mutations[] | undefined;
  readonly #own: readonly Mutations[];
  readonly #off: readonly Mutations[];

  /**
   * @param shared what every stream of one config shares: `levels` gives the per-route entries of a route (most
   * specific first; `off` when a FilterConfig disables the filter there), `own` is `[cfg.mutations]`
   */
  constructor(
    cfg: HeaderMutationConfig,
    cb: StreamFilterCallbacks,
    shared: {
      readonly levels: (r: RouteResult | null) => readonly Mutations[];
      readonly own: readonly Mutations[];
      readonly off: readonly Mutations[];
    },
  ) {
    this.#cfg = cfg;
    this.#levels = shared.levels;
    this.#cb = cb;
    this.#own = shared.own;
    this.#off = shared.off;
  }

  /** Every level's mutations in application order. */
  #order(): readonly Mutations[] {
    if (this.#chain) return this.#chain;
    const levels = this.#levels(this.#cb.route);
    let chain: readonly Mutations[];
    if (levels === this.#off) chain = [];
    else if (levels.length === 0) chain = this.#own;
    else if (this.#cfg.mostSpecificWins) chain = [this.#cfg.mutations, ...[...levels].reverse()];
    else chain = [...levels, this.#cfg.mutations];
    this.#chain = chain;
    return chain;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const info = this.#cb.streamInfo as FormatContext;
    for (const m of this.#order()) apply(m.request, headers, info);
    return "continue";
  }

  encodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    // StreamInfo is a FormatContext (with the request headers, for `%REQ(x)%`), as the router passes it.
    const info = this.#cb.streamInfo as FormatContext;
    for (const m of this.#order()) apply(m.response, headers, info);
    return "continue";
  }
}

/** The config-time step: a cache of the parsed per-route entries. */
export function createHeaderMutationFactory(
  config: HeaderMutationConfig,
  _context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const entries = new PerRouteConfigs(NAME, [HEADER_MUTATION_PER_ROUTE_TYPE], (o) => {
    const m = parseMutations(o.obj("mutations"));
    o.done();
    return m;
  });
  /** Most specific first: route, virtual host, route configuration. */
  const none: Mutations[] = [];
  const OFF: Mutations[] = [];
  const levels = (r: RouteResult | null): Mutations[] => {
    if (!r) return none;
    const a = r.route.typedPerFilterConfig[NAME];
    const b = r.vhost.typedPerFilterConfig[NAME];
    const c = r.config.typedPerFilterConfig[NAME];
    if (a === undefined && b === undefined && c === undefined) return none;
    const out: Mutations[] = [];
    for (const x of [a, b, c]) {
      const m = entries.entry(x);
      // A FilterConfig with `disabled: true` turns the filter off on that route: no mutation at all.
      if (m === DISABLED) return OFF;
      if (m) out.push(m);
    }
    return out;
  };
  const own = [config.mutations];
  const shared = { levels, own, off: OFF };
  return (callbacks) => new HeaderMutationFilter(config, callbacks, shared);
}

/** The header mutation filter factory. */
export const headerMutationFilterFactory: HttpFilterFactory<HeaderMutationConfig> = {
  name: NAME,
  configTypes: [HEADER_MUTATION_TYPE],
  parseConfig: parseHeaderMutationConfig,
  createFactory: createHeaderMutationFactory,
  create(config, callbacks, context) {
    return createHeaderMutationFactory(config, context)(callbacks);
  },
};
