// `make new-plugin NAME=x`: scaffolds plugins/x (handler.ts, schema.ts, a pure module) and
// spec/x/x_spec.lua from tools/templates/. Refuses names Kong bundles, names that are not a valid
// plugin name, and folders that already exist.
//
// NEW_PLUGIN_ROOT (default: this project's root) is the tree written into, so tests can scaffold
// into a temporary copy of the layout without touching plugins/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundledPlugins } from "./kong-reference.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const templatesDir = path.join(projectRoot, "tools", "templates");

/** Lower-case letters, digits and dashes, starting with a letter: the names Kong's bundled plugins use. */
const VALID_NAME = /^[a-z][a-z0-9-]*[a-z0-9]$/;
/** Folders under plugins/ that are not plugins. */
const RESERVED = new Set(["ai-gateway-shared"]);
const MAX_NAME_LENGTH = 64;

/** The names Kong bundles: a custom plugin must not reuse one. */
export function bundledNames(): Set<string> {
  return new Set(bundledPlugins().map((p) => p.name));
}

/** Why `name` cannot be a new plugin in `root`, or undefined when it can. */
export function refusal(name: string, root: string, bundled: Set<string>): string | undefined {
  if (!VALID_NAME.test(name) || name.length > MAX_NAME_LENGTH || name.includes("--")) {
    return `"${name}" is not a valid plugin name: use lower-case letters, digits and single dashes, starting with a letter (e.g. my-plugin)`;
  }
  if (bundled.has(name)) return `"${name}" is a plugin bundled with Kong: a custom plugin must use another name`;
  if (RESERVED.has(name)) return `"${name}" is reserved for code the plugins share`;
  for (const dir of [path.join(root, "plugins", name), path.join(root, "spec", name)]) {
    if (existsSync(dir)) return `${path.relative(root, dir)} already exists`;
  }
  return undefined;
}

/** A PRIORITY no bundled plugin uses, so the new plugin's order is never a tie broken by name. */
function freePriority(): number {
  const taken = new Set(bundledPlugins().map((p) => p.priority));
  let priority = 1000;
  while (taken.has(priority)) priority++;
  return priority;
}

function render(template: string, values: Record<string, string>): string {
  const text = readFileSync(path.join(templatesDir, template), "utf8");
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template ${template} uses unknown placeholder ${key}`);
    return values[key];
  });
}

export function scaffold(name: string, root: string): string[] {
  const values = { NAME: name, PRIORITY: String(freePriority()) };
  const files: [string, string][] = [
    [path.join("plugins", name, "handler.ts"), "handler.ts.tmpl"],
    [path.join("plugins", name, "schema.ts"), "schema.ts.tmpl"],
    [path.join("plugins", name, "describe.ts"), "describe.ts.tmpl"],
    [path.join("spec", name, `${name}_spec.lua`), "spec.lua.tmpl"],
  ];
  const rendered = files.map(([file, template]) => [file, render(template, values)] as const);
  for (const [file, text] of rendered) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text, { flag: "wx" });
  }
  return rendered.map(([file]) => file);
}

function main(argv: string[]): number {
  const name = argv[0];
  if (!name || argv.length > 1) {
    console.error("usage: make new-plugin NAME=my-plugin");
    return 2;
  }
  const root = path.resolve(process.env.NEW_PLUGIN_ROOT ?? projectRoot);
  let why: string | undefined;
  try {
    why = refusal(name, root, bundledNames());
  } catch (err) {
    why = (err as Error).message;
  }
  if (why) {
    console.error(`new-plugin: ${why}`);
    return 1;
  }
  const files = scaffold(name, root);
  console.log(`new-plugin: created ${files.join(", ")}`);
  console.log(`next: make lua && luajit /usr/bin/busted spec/${name}   (enable it with KONG_PLUGINS=bundled,${name})`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
