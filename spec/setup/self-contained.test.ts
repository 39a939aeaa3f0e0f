// A clone in any folder builds and tests alone: no file of the checkout points at the development
// folder that once sat beside it (its reference data now lives in types/reference/), nor at the
// development machine's absolute paths. Reads the files git would commit (or, without git, the tree
// minus the ignored build outputs).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { REFERENCE_DIR, bundledPlugins, pdkFunctions, schemaTypedefs } from "../../tools/kong-reference.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const THIS_FILE = path.relative(projectRoot, fileURLToPath(import.meta.url));

/** Ways of naming the folder beside the checkout, or the development machine's own paths. */
const OUTSIDE: RegExp[] = [
  /\.\.[/\\]shared\b/,
  /["']\.\.["']\s*,\s*["']shared["']/,
  /(^|[^\w-])shared\/reference\b/,
  /\/work\/(main|shared)\b/,
];

/**
 * Files that still point outside and are someone else's to change: each entry says where the fact now
 * lives. The test fails on any other file, and says so when an entry is no longer needed.
 */
const PENDING: Record<string, string> = {
  "gateway/README.md": "cites the PDK phase list; it is types/reference/pdk-functions.tsv now",
  "plugins/ai-gateway-shared/usage.ts": "a comment cites a note on LLM stream formats kept outside; the formats are the servers' documented ones",
};

const SKIP_DIRS = new Set([".git", "node_modules", "dist", "build", ".gateway", "coverage", "models"]);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return SKIP_DIRS.has(e.name) ? [] : walk(path.join(dir, e.name));
    return e.isFile() ? [path.relative(projectRoot, path.join(dir, e.name))] : [];
  });
}

function checkoutFiles(): string[] {
  const git = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: projectRoot, encoding: "utf8" });
  const listed = git.status === 0 ? git.stdout.split("\0").filter(Boolean) : walk(projectRoot);
  // A tracked file deleted in the working tree is not part of what a clone would hold.
  return [...new Set(listed)].filter((f) => existsSync(path.join(projectRoot, f)) && statSync(path.join(projectRoot, f)).isFile());
}

function pointsOutside(file: string): string | undefined {
  const full = path.join(projectRoot, file);
  if (statSync(full).size > 2_000_000) return undefined;
  const text = readFileSync(full, "utf8");
  if (text.includes("\0")) return undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (OUTSIDE.some((re) => re.test(lines[i]))) return `${file}:${i + 1}: ${lines[i].trim().slice(0, 160)}`;
  }
  return undefined;
}

describe("the checkout is self-contained", () => {
  const files = checkoutFiles();

  it("reads the files of the checkout", () => {
    // The repository holds some hundreds of files; a handful means the listing went wrong.
    expect(files.length).toBeGreaterThan(200);
    expect(files).toContain("Makefile");
  });

  it("no file points at ../shared or the development machine's paths", () => {
    const found = files.filter((f) => f !== THIS_FILE).map((f) => [f, pointsOutside(f)] as const).filter(([, hit]) => hit !== undefined);
    const unexpected = found.filter(([f]) => !(f in PENDING)).map(([, hit]) => hit);
    expect(unexpected, unexpected.join("\n")).toEqual([]);
    const stale = Object.keys(PENDING).filter((f) => !found.some(([g]) => g === f));
    expect(stale, `no longer points outside: remove from PENDING in ${THIS_FILE}`).toEqual([]);
  });

  it("holds Kong's reference facts in types/reference", () => {
    expect(path.relative(projectRoot, REFERENCE_DIR)).toBe(path.join("types", "reference"));
    // Kong 3.9: 45 bundled plugins, 140+ PDK functions, 53 schema typedefs.
    expect(bundledPlugins()).toHaveLength(45);
    expect(bundledPlugins().find((p) => p.name === "rate-limiting")?.priority).toBe(910);
    expect(pdkFunctions().length).toBeGreaterThan(140);
    expect(pdkFunctions().find((f) => f.module === "kong.response" && f.fn === "exit")?.source).toMatch(/^kong\/pdk\/response\.lua:\d+$/);
    expect(schemaTypedefs()).toHaveLength(53);
    expect(readFileSync(path.join(REFERENCE_DIR, "README.md"), "utf8")).toContain("a643428bc4d5397152164a63bcc0f8bc65fce69d");
  });
});
