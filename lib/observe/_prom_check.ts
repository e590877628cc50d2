/**
 * A strict checker for the Prometheus text exposition format (0.0.4), for tests: metric and label name syntax,
 * label value escapes, one `# TYPE` per family placed before its samples, samples of a family contiguous,
 * histogram series with non-decreasing cumulative buckets ending in `+Inf` equal to `_count`.
 * Private to `lib/observe/` and `lib/admin/` tests.
 *
 * @module
 */

/** One parsed sample. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The result of {@link checkPrometheusText}: families by name with their type and samples. */
export type PromFamilies = Map<string, { type: string; samples: PromSample[] }>;

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseLabels(s: string, line: number): [Record<string, string>, number] {
  // s starts after "{"; returns labels and the index after "}".
  const labels: Record<string, string> = {};
  let i = 0;
  while (true) {
    if (s[i] === "}") return [labels, i + 1];
    const eq = s.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = s.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`line ${line}: duplicate label ${name}`);
    if (s[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let j = eq + 2;
    let v = "";
    while (true) {
      const c = s[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const n = s[j + 1];
        if (n === "n") v += "\n";
        else if (n === "\\" || n === '"') v += n;
        else throw new Error(`line ${line}: bad escape \\${n ?? ""}`);
        j += 2;
        continue;
      }
      if (c === "\n") throw new Error(`line ${line}: raw newline in label value`);
      v += c;
      j++;
    }
    labels[name] = v;
    i = j + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") throw new Error(`line ${line}: expected "," or "}" after label ${name}`);
  }
}

function parseValue(s: string, line: number): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: bad value ${s}`);
  return Number(s);
}

function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === "histogram" || types.get(base) === "summary") return base;
    }
  }
  return name;
}

/** Parses and checks exposition text; throws an Error naming the line on the first violation. */
export function checkPrometheusText(text: string): PromFamilies {
  if (text !== "" && !text.endsWith("\n")) throw new Error("output must end with a newline");
  const families: PromFamilies = new Map();
  const types = new Map<string, string>();
  const closed = new Set<string>();
  let current: string | undefined;
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((l, k) => {
    const line = k + 1;
    if (l.startsWith("#")) {
      const m = /^# (TYPE|HELP) (\S+) (.*)$/.exec(l);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`line ${line}: bad type ${rest}`);
        if (types.has(name)) throw new Error(`line ${line}: second TYPE for ${name}`);
        if (families.has(name)) throw new Error(`line ${line}: TYPE for ${name} after its samples`);
        types.set(name, rest);
      }
      return;
    }
    if (l.trim() === "") throw new Error(`line ${line}: empty line`);
    const brace = l.indexOf("{");
    const space = l.indexOf(" ");
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = l.slice(0, brace);
      const [lb, end] = parseLabels(l.slice(brace + 1), line);
      labels = lb;
      rest = l.slice(brace + 1 + end);
    } else {
      name = l.slice(0, space);
      rest = l.slice(space);
    }
    if (!METRIC.test(name)) throw new Error(`line ${line}: bad metric name ${JSON.stringify(name)}`);
    if (!rest.startsWith(" ")) throw new Error(`line ${line}: expected a space before the value`);
    const parts = rest.slice(1).split(" ");
    if (parts.length > 2) throw new Error(`line ${line}: trailing garbage`);
    const value = parseValue(parts[0]!, line);
    const fam = familyOf(name, types);
    if (fam !== current) {
      if (closed.has(fam)) throw new Error(`line ${line}: samples of ${fam} are not contiguous`);
      if (current !== undefined) closed.add(current);
      current = fam;
    }
    let f = families.get(fam);
    if (f === undefined) {
      f = { type: types.get(fam) ?? "untyped", samples: [] };
      families.set(fam, f);
    }
    f.samples.push({ name, labels, value });
  });
  for (const [fam, f] of families) {
    if (f.type !== "histogram") continue;
    const series = new Map<string, PromSample[]>();
    for (const s of f.samples) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      let a = series.get(key);
      if (a === undefined) series.set(key, a = []);
      a.push(s);
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name === `${fam}_bucket`);
      const count = samples.find((s) => s.name === `${fam}_count`);
      if (!samples.some((s) => s.name === `${fam}_sum`) || count === undefined) {
        throw new Error(`${fam}${key}: histogram without _sum or _count`);
      }
      let prev = -Infinity;
      let prevLe = -Infinity;
      for (const b of buckets) {
        const le = b.labels.le;
        if (le === undefined) throw new Error(`${fam}: bucket without le`);
        const leNum = parseValue(le, 0);
        if (leNum <= prevLe) throw new Error(`${fam}: le not increasing`);
        if (b.value < prev) throw new Error(`${fam}: buckets not cumulative`);
        prev = b.value;
        prevLe = leNum;
      }
      if (buckets.at(-1)?.labels.le !== "+Inf") throw new Error(`${fam}: last bucket is not +Inf`);
      if (buckets.at(-1)!.value !== count.value) throw new Error(`${fam}: +Inf bucket differs from _count`);
    }
  }
  return families;
}
