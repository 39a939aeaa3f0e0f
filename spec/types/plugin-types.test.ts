// The declarations in types/ are a contract in two directions: correct plugin code must compile
// to exactly the Lua Kong expects (dot calls into the PDK, colon calls on shared dicts and Redis
// clients, handler methods taking self), and wrong plugin code must not compile at all.
// Both are checked here on sample plugins written into a temporary copy of the project layout.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
let root = "";

const SCHEMA = `
import * as typedefs from "kong.db.schema.typedefs";

const schema = {
  name: "demo",
  fields: [
    { consumer: typedefs.no_consumer },
    { protocols: typedefs.protocols_http },
    {
      config: {
        type: "record",
        fields: [
          { limit: { type: "integer", required: true, default: 10, gt: 0 } },
          { policy: { type: "string", required: true, default: "local", one_of: ["local", "redis"] } },
          { header_names: { type: "array", elements: typedefs.header_name, default: ["x-a"] } },
          { redis_port: typedefs.port({ default: 6379 }) },
          { redis_host: typedefs.redis_host },
          { nested: { type: "record", required: true, fields: [{ on: { type: "boolean", default: false } }] } },
          { weights: { type: "map", keys: { type: "string" }, values: { type: "integer" } } },
          { word: { type: "string", custom_validator: (v: string) => v.length > 2 } },
        ],
      },
    },
  ],
  entity_checks: [{ at_least_one_of: ["config.limit", "config.policy"] }],
} as const satisfies KongPluginSchema;

export = schema;
`;

const HANDLER = `
import * as redis from "resty.redis";
import * as meta from "kong.meta";
type Config = ConfigOf<typeof import("./schema")>;

const handler: KongPluginHandler<Config> = {
  PRIORITY: 1000,
  VERSION: meta.version,
  access(conf) {
    const hdr = kong.request.get_header(conf.header_names[0]);
    const [body, err] = kong.request.get_raw_body();
    if (body === undefined) {
      kong.log.err("no body: ", err);
      return;
    }
    const [red, rerr] = redis.new();
    if (!red) return kong.response.exit(500, { message: rerr });
    const [v] = red.get("k");
    if (v === ngx.null) kong.log.debug("nil reply");
    const dict = ngx.shared["kong_rate_limiting_counters"];
    if (dict) dict.incr("k", 1, 0, 60);
    const [m] = ngx.re.match(hdr ?? "", "^a(b)?", "jo");
    if (m) kong.log(m[0], m[1]);
    kong.service.request.set_header("x-limit", conf.limit);
  },
  body_filter(conf) {
    const chunk = ngx.arg[1];
    if (chunk !== undefined && conf.nested.on) ngx.arg[1] = chunk.toUpperCase();
    if (ngx.arg[2]) ngx.timer.at(0, (premature: boolean) => kong.log.info(premature));
  },
};

export = handler;
`;

/** Type-level facts about ConfigOf<schema>, checked by the compiler. */
const CONFIG_TYPES = `
type Config = ConfigOf<typeof import("./schema")>;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
export type Checks = [
  Expect<Equal<Config["limit"], number>>,
  Expect<Equal<Config["policy"], "local" | "redis">>,
  Expect<Equal<Config["header_names"], readonly string[]>>,
  Expect<Equal<Config["redis_port"], number>>,
  Expect<Equal<Config["redis_host"], string | undefined>>,
  Expect<Equal<Config["nested"], { readonly on: boolean }>>,
  Expect<Equal<Config["weights"], { readonly [key: string]: number | undefined } | undefined>>,
  Expect<Equal<Config["__plugin_id"], string | undefined>>,
];
`;

/** Wrong plugin code, each with the compiler error it must produce. */
const MUST_FAIL: Record<string, [string, RegExp]> = {
  response_with_filters: [
    `const h: KongPluginHandler = { PRIORITY: 1, VERSION: "1.0.0", response() {}, header_filter() {} }; export = h;`,
    /not assignable to type 'KongPluginHandler/,
  ],
  version_not_xyz: [`const h: KongPluginHandler = { PRIORITY: 1, VERSION: "1.0" }; export = h;`, /not assignable to type '`\$\{number\}\.\$\{number\}\.\$\{number\}`'/],
  priority_not_number: [`const h: KongPluginHandler = { PRIORITY: "1", VERSION: "1.0.0" }; export = h;`, /not assignable to type 'number'/],
  unknown_phase: [`const h: KongPluginHandler = { PRIORITY: 1, VERSION: "1.0.0", acess() {} }; export = h;`, /'acess' does not exist/],
  schema_new_top_field: [
    `const s = { name: "x", fields: [{ limits: { type: "record", fields: [] } }] } as const satisfies KongPluginSchema; export = s;`,
    /not assignable to type 'KongPluginSchemaEntry'|does not exist in type/,
  ],
  schema_bad_field_type: [
    `const s = { name: "x", fields: [{ config: { type: "record", fields: [{ a: { type: "strng" } }] } }] } as const satisfies KongPluginSchema; export = s;`,
    /not assignable/,
  ],
  schema_array_without_elements: [
    `const s = { name: "x", fields: [{ config: { type: "record", fields: [{ a: { type: "array" } }] } }] } as const satisfies KongPluginSchema; export = s;`,
    /not assignable/,
  ],
  conf_unknown_field: [
    `type C = ConfigOf<typeof import("./schema")>; export function f(conf: C) { return conf.limitt; }`,
    /Property 'limitt' does not exist/,
  ],
  conf_optional_unchecked: [
    `type C = ConfigOf<typeof import("./schema")>; export function f(conf: C) { return conf.redis_host.length; }`,
    /possibly 'undefined'/,
  ],
  conf_is_readonly: [
    `type C = ConfigOf<typeof import("./schema")>; export function f(conf: C) { conf.limit = 2; }`,
    /read-only/,
  ],
  header_may_be_missing: [`export function f() { return kong.request.get_header("x").length; }`, /possibly 'undefined'/],
  exit_status_type: [`export function f() { return kong.response.exit("403"); }`, /not assignable to parameter of type 'number'/],
  multireturn_needs_destructuring: [`export function f() { const body: string = kong.request.get_raw_body(); return body; }`, /not assignable to type 'string'/],
  unknown_pdk_function: [`export function f() { return kong.request.get_headerz("x"); }`, /Property 'get_headerz' does not exist/],
  shared_dict_may_be_missing: [`export function f() { return ngx.shared["d"].get("k"); }`, /possibly 'undefined'/],
  cjson_safe_result: [`import * as cjson from "cjson.safe"; export function f(s: string) { const [v] = cjson.decode(s); return v.x; }`, /'v' is possibly 'undefined'|of type 'unknown'/],
};

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "plugin-types-"));
  for (const entry of ["tsconfig.json", "types", path.join("tools", "tstl-kong-paths.cjs"), path.join("tools", "check-dist.mjs")]) {
    cpSync(path.join(projectRoot, entry), path.join(root, entry), { recursive: true });
  }
  symlinkSync(path.join(projectRoot, "node_modules"), path.join(root, "node_modules"));
  mkdirSync(path.join(root, "plugins", "demo"), { recursive: true });
  writeFileSync(path.join(root, "plugins/demo/schema.ts"), SCHEMA);
  writeFileSync(path.join(root, "plugins/demo/handler.ts"), HANDLER);
  writeFileSync(path.join(root, "plugins/demo/config-types.ts"), CONFIG_TYPES);
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function diagnosticsByFile(extraFiles: Record<string, string>): Map<string, string[]> {
  for (const [file, text] of Object.entries(extraFiles)) writeFileSync(path.join(root, file), text);
  const configPath = path.join(root, "tsconfig.json");
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root, undefined, configPath);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: { ...parsed.options, noEmit: true } });
  const byFile = new Map<string, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file ? path.relative(root, d.file.fileName) : "(global)";
    byFile.set(file, [...(byFile.get(file) ?? []), ts.flattenDiagnosticMessageText(d.messageText, "\n")]);
  }
  return byFile;
}

describe("plugin types", () => {
  let byFile: Map<string, string[]>;

  beforeAll(() => {
    mkdirSync(path.join(root, "plugins", "demo"), { recursive: true });
    const cases = Object.fromEntries(Object.entries(MUST_FAIL).map(([name, [code]]) => [`plugins/demo/case_${name}.ts`, code]));
    byFile = diagnosticsByFile(cases);
  });

  it("accept a correct handler, schema and derived config", () => {
    const problems = ["plugins/demo/schema.ts", "plugins/demo/handler.ts", "plugins/demo/config-types.ts"].flatMap((f) => (byFile.get(f) ?? []).map((m) => `${f}: ${m}`));
    expect(problems).toEqual([]);
    expect(byFile.get("(global)") ?? []).toEqual([]);
    const typeFiles = [...byFile.keys()].filter((f) => f.startsWith("types/"));
    expect(typeFiles, typeFiles.map((f) => byFile.get(f)).join("\n")).toEqual([]);
  });

  it.each(Object.entries(MUST_FAIL))("reject %s", (name, [, expected]) => {
    const messages = byFile.get(`plugins/demo/case_${name}.ts`) ?? [];
    expect(messages.length, `compiled without error`).toBeGreaterThan(0);
    if (process.env.SHOW_TYPE_ERRORS) console.log(name, "=>", messages.join(" / ").slice(0, 300));
    expect(messages.join("\n")).toMatch(expected);
  });
});

describe("transpiled sample plugin", () => {
  let handler = "";
  let schema = "";

  beforeAll(() => {
    // Only the correct plugin: the failing cases were written for the type check above.
    rmSync(path.join(root, "plugins/demo"), { recursive: true, force: true });
    mkdirSync(path.join(root, "plugins/demo"), { recursive: true });
    writeFileSync(path.join(root, "plugins/demo/schema.ts"), SCHEMA);
    writeFileSync(path.join(root, "plugins/demo/handler.ts"), HANDLER);
    const r = spawnSync(path.join(projectRoot, "node_modules/.bin/tstl"), ["-p", "tsconfig.json"], { cwd: root, encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`tstl failed: ${r.stdout}${r.stderr}`);
    handler = readFileSync(path.join(root, "dist/kong/plugins/demo/handler.lua"), "utf8");
    schema = readFileSync(path.join(root, "dist/kong/plugins/demo/schema.lua"), "utf8");
  });

  it("returns the handler as a plain table with phase methods taking self", () => {
    expect(handler).toMatch(/local handler = \{\s*PRIORITY = 1000,\s*VERSION = meta\.version,/);
    expect(handler).toMatch(/access = function\(self, conf\)/);
    expect(handler).toMatch(/body_filter = function\(self, conf\)/);
    expect(handler).toMatch(/local ____exports = handler\s*return ____exports\s*$/);
  });

  it("calls the PDK and ngx with dots, exactly as Kong's Lua does", () => {
    for (const call of [
      'kong.request.get_header(conf.header_names[1])',
      "kong.request.get_raw_body()",
      "kong.log.err(",
      "kong.response.exit(500, {message = rerr})",
      "redis.new()",
      'kong.log.debug("nil reply")',
      "v == ngx.null",
      "ngx.shared.kong_rate_limiting_counters",
      'ngx.re.match(hdr or "", "^a(b)?", "jo")',
      "kong.log(m[0], m[1])",
      'kong.service.request.set_header("x-limit", conf.limit)',
      "ngx.arg[1] = string.upper(chunk)",
      "if ngx.arg[2] then",
      "ngx.timer.at(",
    ]) {
      expect(handler).toContain(call);
    }
    // No PDK or ngx table is ever called with a colon (that would pass the table as first argument).
    expect(handler).not.toMatch(/\b(kong|ngx)(\.\w+)*:\w+\(/);
  });

  it("calls shared dicts and Redis clients with colons", () => {
    expect(handler).toContain('dict:incr("k", 1, 0, 60)');
    expect(handler).toContain('red:get("k")');
  });

  it("requires only modules Kong provides", () => {
    const requires = [...handler.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]).sort();
    expect(requires).toEqual(["kong.meta", "resty.redis"]);
  });

  it("emits the schema as a plain table built from typedefs", () => {
    expect(schema).toContain('local typedefs = require("kong.db.schema.typedefs")');
    expect(schema).toContain("{consumer = typedefs.no_consumer}");
    expect(schema).toContain("{protocols = typedefs.protocols_http}");
    expect(schema).toContain("{redis_port = typedefs.port({default = 6379})}");
    expect(schema).toMatch(/custom_validator = function\(v\)/);
    expect(schema).toMatch(/local ____exports = schema\s*return ____exports\s*$/);
  });
});
