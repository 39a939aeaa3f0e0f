// One luarocks rockspec for the plugin set, listing every built module the way Kong's own
// rockspec lists its bundled plugins. `luarocks make` in dist/ installs them.
import { readdirSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const root = "dist";
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
const modules = walk(join(root, "kong")).filter((f) => f.endsWith(".lua")).map((f) => relative(root, f)).sort();
const rockName = "kong-plugin-ts-ai-gateway";
const version = `${pkg.version}-1`;
const lines = modules.map((m) => `    ["${m.slice(0, -4).replaceAll("/", ".")}"] = "${m}",`);
const spec = `package = "${rockName}"
version = "${version}"
source = { url = "file://." }
description = {
  summary = "${pkg.description}",
  license = "${pkg.license}",
}
dependencies = { "lua >= 5.1" }
build = {
  type = "builtin",
  modules = {
${lines.join("\n")}
  },
}
`;
const out = join(root, `${rockName}-${version}.rockspec`);
writeFileSync(out, spec);
console.log(`rockspec: ${out} (${modules.length} modules)`);
