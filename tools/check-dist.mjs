// After transpiling: every file must sit under dist/kong/plugins/, and every require() of a
// project module must resolve to a file in that tree. Modules that Kong itself provides at run
// time are the only other requires allowed, so the output can be dropped into any Kong.
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";

const DIST = "dist";
const PROVIDED_BY_KONG = new Set([
  "cjson", "cjson.safe", "resty.redis", "ffi", "string.buffer", "table.new", "table.clear",
  "ngx.re", "ngx.base64", "kong.db.schema.typedefs", "kong.tools.redis.schema", "kong.meta",
]);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const problems = [];
const files = existsSync(DIST) ? walk(DIST) : [];
for (const file of files) {
  const rel = relative(DIST, file);
  if (!file.endsWith(".lua")) continue;
  if (!rel.startsWith("kong/plugins/")) problems.push(`${rel}: outside kong/plugins/ (would be a top-level module in Kong)`);
  const code = readFileSync(file, "utf8");
  for (const [, mod] of code.matchAll(/\brequire\(\s*"([^"]+)"\s*\)/g)) {
    if (PROVIDED_BY_KONG.has(mod)) continue;
    const target = join(DIST, mod.replaceAll(".", "/") + ".lua");
    if (!mod.startsWith("kong.plugins.")) problems.push(`${rel}: requires "${mod}", which is neither in kong/plugins/ nor provided by Kong`);
    else if (!existsSync(target)) problems.push(`${rel}: requires "${mod}", but ${target} was not built`);
  }
}
if (files.length === 0) problems.push("dist/ is empty: nothing was transpiled");
if (problems.length) {
  console.error("dist check failed:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log(`dist check: ${files.length} Lua files, all under kong/plugins/, every require resolves`);
