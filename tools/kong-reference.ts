// Readers of types/reference/: the facts about Kong 3.9 that the tools and the tests check against
// (PDK functions and their phases, bundled plugin names and priorities, schema typedef names).
// Kept in the repository so that a clone anywhere has them; see types/reference/README.md.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REFERENCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "types", "reference");

/** Rows of a tab-separated file with a header line, as objects keyed by the header's names. */
export function readTsv(file: string, columns: readonly string[]): Record<string, string>[] {
  const lines = readFileSync(path.join(REFERENCE_DIR, file), "utf8").split("\n").filter((l) => l.trim() !== "");
  const header = lines[0].split("\t");
  const index = columns.map((name) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`${file} has no column ${name}`);
    return i;
  });
  return lines.slice(1).map((line) => {
    const cells = line.split("\t");
    return Object.fromEntries(columns.map((name, k) => [name, cells[index[k]] ?? ""]));
  });
}

export interface PdkFunction {
  module: string;
  fn: string;
  /** The Lua parameter list, or "(table field)" for a table. */
  params: string;
  /** The phases Kong's code allows ("ALL EXCEPT x => a,b,..." or "a,b"), or "" / "(no phase check...)". */
  phasesCode: string;
  /** Documented parameters: `name: type ;; [opt] name: type`. */
  docParams: string;
  visibility: string;
  /** kong/pdk/<file>.lua:<line> in Kong's source. */
  source: string;
}

export function pdkFunctions(): PdkFunction[] {
  return readTsv("pdk-functions.tsv", ["module", "function", "params", "phases_code", "doc_params", "visibility", "source"]).map((r) => ({
    module: r.module, fn: r.function, params: r.params, phasesCode: r.phases_code, docParams: r.doc_params, visibility: r.visibility, source: r.source,
  }));
}

export interface BundledPlugin {
  name: string;
  priority: number;
}

/** Kong 3.9's bundled plugins (kong/constants.lua BUNDLED_PLUGINS) with each handler's PRIORITY. */
export function bundledPlugins(): BundledPlugin[] {
  return readTsv("bundled-plugins.tsv", ["name", "priority"]).map((r) => ({ name: r.name, priority: Number(r.priority) }));
}

/** The names kong/db/schema/typedefs.lua exports. */
export function schemaTypedefs(): string[] {
  return readFileSync(path.join(REFERENCE_DIR, "schema-typedefs.txt"), "utf8").split(/\s+/).filter(Boolean);
}
