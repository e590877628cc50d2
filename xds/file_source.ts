/**
 * A `path_config_source`: a YAML or JSON file holding a `DiscoveryResponse` (`version_info`, `resources` as
 * `Any`s with `@type`), as Envoy's file-based dynamic configuration. The file is read at start and again whenever
 * it (or `watched_directory`) changes — an atomic rename (`mv new lds.yaml`) as well as an edit in place. Every
 * load delivers the whole set: resources of the file's type missing from it are removed. A file that does not
 * parse, or an update the sink rejects, is logged and counted by the sink; the previous config keeps serving.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { ConfigError } from "../lib/api/errors.ts";
import { parseConfigText } from "../lib/config/bootstrap.ts";
import { getLogger } from "../lib/observe/log.ts";
import { stableText } from "./stable_text.ts";
import type { DecodedResource, ResourceSource, TypeUrl, UpdateSink } from "./types.ts";

const log = getLogger("xds");

/** Options of a {@link FileSource}. */
export interface FileSourceOptions {
  readonly file: string;
  readonly watchedDirectory: string | undefined;
  readonly typeUrl: TypeUrl;
  readonly sink: UpdateSink;
  /** Where it was configured (`dynamic_resources.lds_config`), for messages. */
  readonly path: string;
}

/** Reads a file's resources of one type and re-reads them when it changes. */
export class FileSource implements ResourceSource {
  readonly #o: FileSourceOptions;
  #held = new Set<string>();
  #lastText: string | undefined;
  #watcher: Deno.FsWatcher | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #loading: Promise<void> = Promise.resolve();

  constructor(options: FileSourceOptions) {
    this.#o = options;
  }

  setInterest(_typeUrl: TypeUrl, _names: ReadonlySet<string> | "*"): void {
    // A file delivers all it holds.
  }

  start(): void {
    this.#loading = this.#load();
    const file = resolve(this.#o.file);
    const dir = this.#o.watchedDirectory ?? dirname(file);
    try {
      this.#watcher = Deno.watchFs(dir, { recursive: false });
    } catch (e) {
      log.warn(`${this.#o.path}: cannot watch ${dir}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const watcher = this.#watcher;
    (async () => {
      try {
        for await (const ev of watcher) {
          if (this.#closed) break;
          if (this.#o.watchedDirectory === undefined && !ev.paths.some((p) => resolve(p) === file)) continue;
          // Editors and `mv` produce bursts of events: read once they settle.
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => {
            this.#loading = this.#loading.then(() => this.#load());
          }, 50);
        }
      } catch {
        // closed
      }
    })();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      this.#watcher?.close();
    } catch {
      // already closed
    }
  }

  async #load(): Promise<void> {
    const { file, path } = this.#o;
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      log.warn(`${path}: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}; keeping the last config`);
      return;
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    let update;
    try {
      update = parseDiscoveryFile(text, file, this.#o.typeUrl);
    } catch (e) {
      this.#o.sink.onRejected?.(this.#o.typeUrl, `${path}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const names = new Set(update.resources.map((r) => r.name));
    const removed = [...this.#held].filter((n) => !names.has(n));
    try {
      await this.#o.sink.onUpdate({
        typeUrl: this.#o.typeUrl,
        resources: update.resources,
        removed,
        version: update.version,
      });
      this.#held = names;
    } catch (e) {
      log.warn(
        `${path}: ${file} version ${JSON.stringify(update.version)} rejected: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
    }
  }
}

/** Parses a file-based `DiscoveryResponse` for one type; throws a one-line ConfigError naming the file and field. */
export function parseDiscoveryFile(
  text: string,
  file: string,
  typeUrl: TypeUrl,
): { version: string; resources: DecodedResource[] } {
  const doc = parseConfigText(text, file);
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(file, "must be a DiscoveryResponse (version_info, resources)");
  }
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["version_info", "versionInfo", "resources", "type_url", "typeUrl", "nonce"].includes(k)) {
      throw new ConfigError(`${file}: ${k}`, "unknown field (a DiscoveryResponse has version_info and resources)");
    }
  }
  const version = String(o["version_info"] ?? o["versionInfo"] ?? "");
  const list = o["resources"] ?? [];
  if (!Array.isArray(list)) throw new ConfigError(`${file}: resources`, "must be a list");
  const seen = new Set<string>();
  const resources = list.map((r, i): DecodedResource => {
    const p = `${file}: resources[${i}]`;
    if (r === null || typeof r !== "object" || Array.isArray(r)) throw new ConfigError(p, "must be an object");
    const { "@type": t, ...raw } = r as Record<string, unknown>;
    if (t !== typeUrl) {
      throw new ConfigError(`${p}.@type`, `must be ${typeUrl}, not ${JSON.stringify(t)}`);
    }
    const n = raw["name"] ?? raw["cluster_name"] ?? raw["clusterName"];
    if (typeof n !== "string" || n === "") throw new ConfigError(`${p}.name`, "is required");
    if (seen.has(n)) throw new ConfigError(`${p}.name`, `${JSON.stringify(n)} appears twice`);
    seen.add(n);
    return { name: n, version, raw, text: stableText(raw) };
  });
  return { version, resources };
}
