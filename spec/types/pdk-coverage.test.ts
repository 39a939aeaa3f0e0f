// Every PDK function Kong 3.9 lists for the modules plugins use must be declared on the `kong`
// global in types/, with a doc comment whose @phases tag names exactly the phases Kong's code
// allows. Checked through the TypeScript compiler (the program of tsconfig.json), so a typo, a
// missing property or a lost doc comment fails here, whatever the text of the files looks like.
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { pdkFunctions, schemaTypedefs, type PdkFunction } from "../../tools/kong-reference.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The modules plugins use, plus kong.log's callable parts. */
const COVERED_MODULES = new Set([
  "kong.request", "kong.response", "kong.service", "kong.service.request", "kong.service.response",
  "kong.client", "kong.client.tls", "kong.ctx", "kong.log", "kong.log.inspect", "kong.node",
  "kong.router", "kong.ip",
]);

/** The rows to check: the covered modules, and `kong.log` itself (a callable table). */
function coveredRows(rows: PdkFunction[]): PdkFunction[] {
  return rows.filter((r) => COVERED_MODULES.has(r.module) || (r.module === "kong" && r.fn === "log"));
}

/** Data fields the extractor found by assignment (not functions Kong documents): reported, not required. */
function isDataField(row: PdkFunction): boolean {
  return row.visibility.startsWith("undocumented (field)") && !row.params.includes("gen_log_func");
}

/** The phase set Kong's code allows, or "any" when the code has no phase check. */
function expectedPhases(phasesCode: string): Set<string> | "any" {
  const text = phasesCode.trim();
  if (text === "" || text.startsWith("(no phase check")) return "any";
  const list = text.includes("=>") ? text.split("=>")[1] : text;
  return new Set(list.split(",").map((s) => s.trim()).filter(Boolean));
}

function loadProgram(): ts.Program {
  const configPath = path.join(projectRoot, "tsconfig.json");
  const read = ts.readConfigFile(configPath, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, projectRoot, undefined, configPath);
  return ts.createProgram({ rootNames: parsed.fileNames, options: { ...parsed.options, noEmit: true } });
}

function kongGlobalType(program: ts.Program): { checker: ts.TypeChecker; type: ts.Type; where: ts.Node } {
  const checker = program.getTypeChecker();
  const file = program.getSourceFiles().find((f) => f.fileName.endsWith("/types/kong-pdk.d.ts"));
  if (!file) throw new Error("types/kong-pdk.d.ts is not part of the tsconfig.json program");
  const symbol = checker.getSymbolsInScope(file, ts.SymbolFlags.Variable).find((s) => s.name === "kong");
  if (!symbol) throw new Error("no global `kong` is declared");
  return { checker, type: checker.getTypeOfSymbolAtLocation(symbol, file), where: file };
}

interface Resolved {
  symbol: ts.Symbol;
  type: ts.Type;
}

function resolveMember(checker: ts.TypeChecker, root: ts.Type, where: ts.Node, dotted: string[]): Resolved | string {
  let type = root;
  let symbol: ts.Symbol | undefined;
  for (let i = 0; i < dotted.length; i++) {
    symbol = checker.getPropertyOfType(type, dotted[i]);
    if (!symbol) return `kong.${dotted.slice(0, i + 1).join(".")} is not declared`;
    type = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(symbol, where));
  }
  return { symbol: symbol!, type };
}

function phasesTag(checker: ts.TypeChecker, symbol: ts.Symbol): string | undefined {
  const tag = symbol.getJsDocTags(checker).find((t) => t.name === "phases");
  return tag ? ts.displayPartsToString(tag.text).trim() : undefined;
}

/** Documented parameters: `name: type ;; [opt] name: type`. */
function docParams(text: string): { name: string; optional: boolean }[] {
  if (text.trim() === "" || text.trim() === "...") return [];
  return text.split(";;").map((p) => p.trim()).filter(Boolean).map((p) => ({
    optional: p.startsWith("[opt]"),
    name: p.replace("[opt]", "").split(":")[0].trim(),
  }));
}

/**
 * Where the declaration departs from the doc comment's @tparam list on purpose: Kong's code
 * treats these as optional (`options = options or {}`), and plugins call them without it.
 */
const OPTIONAL_DESPITE_DOCS = new Set(["kong.log.set_serialize_value(options)"]);

interface Finding {
  name: string;
  module: string;
  problems: string[];
  skipped?: string;
}

function check(): Finding[] {
  const program = loadProgram();
  const { checker, type: kongType, where } = kongGlobalType(program);
  return coveredRows(pdkFunctions()).map((row) => {
    const full = row.module === "kong" ? `kong.${row.fn}` : `${row.module}.${row.fn}`;
    const finding: Finding = { name: full, module: row.module === "kong" ? "kong.log" : row.module, problems: [] };
    const dotted = full.split(".").slice(1);
    const resolved = resolveMember(checker, kongType, where, dotted);
    if (typeof resolved === "string") {
      if (isDataField(row)) finding.skipped = `${full}: a data field Kong assigns internally, not a PDK function (${row.visibility.split(" ").slice(0, 3).join(" ")})`;
      else finding.problems.push(resolved);
      return finding;
    }
    const isTableField = row.params === "(table field)";
    const signatures = resolved.type.getCallSignatures();
    if (isTableField) {
      if (!(resolved.type.flags & ts.TypeFlags.Object)) finding.problems.push(`${full} should be a table`);
    } else if (signatures.length === 0) {
      finding.problems.push(`${full} is declared but not callable`);
    }
    const tag = phasesTag(checker, resolved.symbol);
    const expected = expectedPhases(row.phasesCode);
    if (tag === undefined) {
      finding.problems.push(`${full}: doc comment has no @phases tag`);
    } else if (expected === "any") {
      if (!/^any\b/.test(tag)) finding.problems.push(`${full}: Kong's code has no phase check, but @phases says "${tag}"`);
    } else {
      const declared = new Set(tag.split(",").map((s) => s.trim()).filter(Boolean));
      const missing = [...expected].filter((p) => !declared.has(p));
      const extra = [...declared].filter((p) => !expected.has(p));
      if (missing.length || extra.length) {
        finding.problems.push(`${full}: @phases differs from Kong's code (missing: ${missing.join(", ") || "-"}; extra: ${extra.join(", ") || "-"})`);
      }
    }
    if (signatures.length > 0) {
      const declaration = signatures[0].getDeclaration();
      const declared = declaration ? declaration.parameters.filter((p) => !(ts.isIdentifier(p.name) && p.name.text === "this")) : [];
      docParams(row.docParams).forEach((doc, i) => {
        const param = declared[i];
        if (!param) {
          finding.problems.push(`${full}: documented parameter ${doc.name} is not declared`);
          return;
        }
        if (param.dotDotDotToken) return;
        const optional = Boolean(param.questionToken || param.initializer);
        const waiver = OPTIONAL_DESPITE_DOCS.has(`${full}(${doc.name})`);
        if (optional !== doc.optional && !waiver) {
          finding.problems.push(`${full}: parameter ${i + 1} (${doc.name}) is ${optional ? "optional" : "required"}, Kong documents it as ${doc.optional ? "optional" : "required"}`);
        }
      });
    }
    return finding;
  });
}

describe("PDK declarations in types/", () => {
  const findings = check();

  it("reads the reference list", () => {
    // The covered modules hold 90+ functions in Kong 3.9; far fewer means types/reference/pdk-functions.tsv changed shape.
    expect(findings.length).toBeGreaterThan(90);
  });

  it("declares every listed function of the covered modules, with Kong's phases", () => {
    const byModule = new Map<string, { total: number; ok: number }>();
    for (const f of findings) {
      if (f.skipped) continue;
      const m = byModule.get(f.module) ?? { total: 0, ok: 0 };
      m.total++;
      if (f.problems.length === 0) m.ok++;
      byModule.set(f.module, m);
    }
    const lines = [...byModule.entries()].sort().map(([m, c]) => `  ${m.padEnd(22)} ${c.ok}/${c.total}`);
    const total = [...byModule.values()].reduce((a, c) => a + c.total, 0);
    const ok = [...byModule.values()].reduce((a, c) => a + c.ok, 0);
    const skipped = findings.filter((f) => f.skipped).map((f) => `  not counted: ${f.skipped}`);
    console.log(["PDK coverage per module:", ...lines, ...skipped, `PDK coverage: ${ok}/${total} (${Math.floor((100 * ok) / total)}%)`].join("\n"));
    const problems = findings.flatMap((f) => f.problems);
    expect(problems, problems.join("\n")).toEqual([]);
    expect(ok).toBe(total);
  });
});

/** The ngx API plugins and the gateway use (arg, var, ctx, re, shared dicts, timer, time, worker, log levels, cosockets, output, status, header). */
const NGX_MEMBERS = [
  "arg", "var", "ctx", "re.match", "re.find", "re.gmatch", "re.sub", "re.gsub", "shared", "timer.at", "timer.every",
  "timer.running_count", "now", "time", "update_time", "today", "localtime", "utctime", "http_time", "worker.id",
  "worker.pid", "worker.count", "worker.exiting", "log", "STDERR", "EMERG", "ALERT", "CRIT", "ERR", "WARN", "NOTICE",
  "INFO", "DEBUG", "socket.tcp", "say", "print", "flush", "exit", "status", "header", "headers_sent", "req.read_body",
  "req.get_body_data", "req.get_body_file", "req.get_headers", "req.start_time", "null", "OK", "ERROR", "HTTP_OK",
  "HTTP_TOO_MANY_REQUESTS", "encode_base64", "decode_base64", "md5", "sha1_bin", "escape_uri", "crc32_short", "sleep",
];

/** Members of objects that Lua calls with a colon: shared dicts and cosockets. */
const NGX_OBJECT_METHODS: Record<string, string[]> = {
  NgxSharedDict: ["get", "get_stale", "set", "safe_set", "add", "safe_add", "replace", "delete", "incr", "ttl", "expire", "flush_all", "flush_expired", "get_keys"],
  NgxTcpSocket: ["connect", "send", "receive", "settimeout", "settimeouts", "setkeepalive", "sslhandshake", "close", "getreusedtimes"],
};

/** Lua modules and the exports plugins use from them. */
function expectedModuleExports(): Record<string, string[]> {
  return {
    cjson: ["encode", "decode", "null", "empty_array_mt", "array_mt"],
    "cjson.safe": ["encode", "decode", "null"],
    "resty.redis": ["new"],
    "kong.db.schema.typedefs": schemaTypedefs(),
    "string.buffer": ["new"],
    ffi: ["cdef", "new", "string", "C", "typeof", "cast", "sizeof"],
    "table.new": ["export="],
    "table.clear": ["export="],
    "ngx.re": ["split"],
    "kong.meta": ["version"],
  };
}

const REDIS_METHODS = [
  "connect", "set_timeout", "set_timeouts", "auth", "select", "eval", "evalsha", "script", "get", "set", "incrby", "expire", "pexpire", "ttl",
  "del", "init_pipeline", "commit_pipeline", "cancel_pipeline", "set_keepalive", "get_reused_times", "close",
];

describe("ngx and Lua module declarations in types/", () => {
  const program = loadProgram();
  const checker = program.getTypeChecker();
  const file = program.getSourceFiles().find((f) => f.fileName.endsWith("/types/ngx.d.ts"))!;

  it("declares the ngx API plugins and the gateway use", () => {
    const ngx = checker.getSymbolsInScope(file, ts.SymbolFlags.Variable).find((s) => s.name === "ngx");
    expect(ngx, "no global ngx").toBeDefined();
    const ngxType = checker.getTypeOfSymbolAtLocation(ngx!, file);
    const missing = NGX_MEMBERS.filter((m) => typeof resolveMember(checker, ngxType, file, m.split(".")) === "string");
    for (const [iface, methods] of Object.entries(NGX_OBJECT_METHODS)) {
      const symbol = checker.getSymbolsInScope(file, ts.SymbolFlags.Interface).find((s) => s.name === iface);
      if (!symbol) {
        missing.push(iface);
        continue;
      }
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      missing.push(...methods.filter((m) => !checker.getPropertyOfType(type, m)).map((m) => `${iface}.${m}`));
    }
    console.log(`ngx coverage: ${NGX_MEMBERS.length + Object.values(NGX_OBJECT_METHODS).flat().length - missing.length}/${NGX_MEMBERS.length + Object.values(NGX_OBJECT_METHODS).flat().length}`);
    expect(missing).toEqual([]);
  });

  it("declares the Lua modules Kong provides, with their exports", () => {
    const modules = new Map(checker.getAmbientModules().map((m) => [m.name.replace(/^"|"$/g, ""), m]));
    const missing: string[] = [];
    const expected = expectedModuleExports();
    expect(expected["kong.db.schema.typedefs"].length).toBe(53);
    for (const [name, exports] of Object.entries(expected)) {
      const mod = modules.get(name);
      if (!mod) {
        missing.push(`module ${name}`);
        continue;
      }
      const declared = new Set(checker.getExportsOfModule(mod).map((e) => e.name));
      if (mod.exports?.has("export=" as ts.__String)) declared.add("export=");
      missing.push(...exports.filter((e) => !declared.has(e)).map((e) => `${name}.${e}`));
    }
    const redis = modules.get("resty.redis");
    const client = redis && checker.getExportsOfModule(redis).find((e) => e.name === "RedisClient");
    if (!client) missing.push("resty.redis RedisClient");
    else {
      const type = checker.getDeclaredTypeOfSymbol(client);
      missing.push(...REDIS_METHODS.filter((m) => !checker.getPropertyOfType(type, m)).map((m) => `RedisClient.${m}`));
    }
    expect(missing).toEqual([]);
  });
});

