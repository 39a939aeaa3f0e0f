// `make new-plugin` end to end, in a temporary copy of the project layout (never in plugins/):
// scaffold two plugins, type-check and transpile them with the project's tsconfig, run their
// generated busted specs, then load both side by side in a real nginx + lua-nginx-module and check
// that each keeps its own PRIORITY/VERSION, that nothing outside kong/plugins/ was produced, and
// that loading them creates no global variables (the TSTL runtime is inlined per file).
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = (name: string) => path.join(projectRoot, "node_modules", ".bin", name);
const LUA_MODULES = "/usr/lib/nginx/modules";

let root = "";
let nginx: ChildProcess | undefined;

function run(cmd: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
}

function newPlugin(name: string): SpawnSyncReturns<string> {
  return run(bin("tsx"), [path.join(projectRoot, "tools", "new-plugin.ts"), name], { NEW_PLUGIN_ROOT: root });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? walk(file) : [file];
  });
}

function output(r: SpawnSyncReturns<string>): string {
  return `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`;
}

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), "scaffold-"));
  // The same layout and build configuration as the project: tsconfig, types, TSTL plugin, dist check.
  for (const entry of ["tsconfig.json", ".busted", "types", path.join("tools", "tstl-kong-paths.cjs"), path.join("tools", "check-dist.mjs")]) {
    cpSync(path.join(projectRoot, entry), path.join(root, entry), { recursive: true });
  }
  symlinkSync(path.join(projectRoot, "node_modules"), path.join(root, "node_modules"));
  mkdirSync(path.join(root, "plugins"));
});

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx!.once("exit", resolve));
    nginx.kill("SIGQUIT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (nginx.exitCode === null) nginx.kill("SIGKILL");
  }
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("make new-plugin", () => {
  it("scaffolds two plugins", () => {
    for (const name of ["alpha", "beta"]) {
      const r = newPlugin(name);
      expect(r.status, output(r)).toBe(0);
      for (const file of [`plugins/${name}/handler.ts`, `plugins/${name}/schema.ts`, `plugins/${name}/describe.ts`, `spec/${name}/${name}_spec.lua`]) {
        expect(existsSync(path.join(root, file)), file).toBe(true);
      }
    }
    // An author changes the scaffold's defaults: give beta its own identity to tell them apart.
    const betaHandler = path.join(root, "plugins", "beta", "handler.ts");
    const text = readFileSync(betaHandler, "utf8");
    const edited = text.replace(/PRIORITY: \d+/, "PRIORITY: 777").replace('VERSION: "0.1.0"', 'VERSION: "2.3.4"');
    expect(edited).not.toBe(text);
    writeFileSync(betaHandler, edited);
  });

  it.each([
    ["rate-limiting", /bundled with Kong/],
    ["key-auth", /bundled with Kong/],
    ["My_Plugin", /not a valid plugin name/],
    ["1abc", /not a valid plugin name/],
    ["bad--name", /not a valid plugin name/],
    ["ai-gateway-shared", /reserved/],
    ["alpha", /already exists/],
  ])("refuses %s", (name, why) => {
    const scaffolded = () => [...walk(path.join(root, "plugins")), ...walk(path.join(root, "spec"))].sort();
    const before = scaffolded();
    const r = newPlugin(name);
    expect(r.status, output(r)).toBe(1);
    expect(r.stderr).toMatch(why);
    expect(scaffolded()).toEqual(before);
  });

  it("type-checks and transpiles both into dist/kong/plugins only", () => {
    const tsc = run(bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
    expect(tsc.status, output(tsc)).toBe(0);
    const tstl = run(bin("tstl"), ["-p", "tsconfig.json"]);
    expect(tstl.status, output(tstl)).toBe(0);
    const check = run(process.execPath, ["tools/check-dist.mjs"]);
    expect(check.status, output(check)).toBe(0);
    const files = walk(path.join(root, "dist")).map((f) => path.relative(path.join(root, "dist"), f)).sort();
    expect(files).toEqual([
      "kong/plugins/alpha/describe.lua", "kong/plugins/alpha/handler.lua", "kong/plugins/alpha/schema.lua",
      "kong/plugins/beta/describe.lua", "kong/plugins/beta/handler.lua", "kong/plugins/beta/schema.lua",
    ]);
    const handler = readFileSync(path.join(root, "dist/kong/plugins/beta/handler.lua"), "utf8");
    expect(handler).toMatch(/PRIORITY = 777/);
    expect(handler).toMatch(/access = function\(self, conf\)/);
    expect(handler).toMatch(/require\("kong\.plugins\.beta\.describe"\)/);
    expect(handler).toMatch(/kong\.request\.get_method\(\)/);
  });

  it("passes the project's Lua lint (output and generated specs)", () => {
    cpSync(path.join(projectRoot, ".luacheckrc"), path.join(root, ".luacheckrc"));
    const r = run("luacheck", ["--no-color", "--config", ".luacheckrc", "dist", "spec"]);
    expect(r.status, output(r)).toBe(0);
    expect(r.stdout).toMatch(/0 warnings \/ 0 errors in 8 files/);
  });

  it("passes the generated busted specs", () => {
    const r = run("luajit", ["/usr/bin/busted", "-o", "plainTerminal", "spec/alpha", "spec/beta"]);
    expect(r.status, output(r)).toBe(0);
    expect(r.stdout).toMatch(/14 successes \/ 0 failures \/ 0 errors/);
  });

  it("loads both side by side in nginx without clashing", async () => {
    const port = await freePort();
    const prefix = path.join(root, "nginx");
    mkdirSync(path.join(prefix, "logs"), { recursive: true });
    const stub = path.join(projectRoot, "spec", "scaffold", "stub");
    const luaPath = [`${root}/dist/?.lua`, `${stub}/?.lua`, "/usr/share/lua/5.1/?.lua", ";"].join(";");
    writeFileSync(path.join(prefix, "nginx.conf"), `
load_module ${LUA_MODULES}/ndk_http_module.so;
load_module ${LUA_MODULES}/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path logs; proxy_temp_path logs; fastcgi_temp_path logs; uwsgi_temp_path logs; scgi_temp_path logs;
  lua_package_path '${luaPath}';
  init_by_lua_block {
    -- What Kong does at init: require every enabled plugin's handler and schema.
    local globals_before = {}
    for k in pairs(_G) do globals_before[k] = true end
    local modules_before = {}
    for k in pairs(package.loaded) do modules_before[k] = true end

    loaded = {}
    for _, name in ipairs({ "alpha", "beta" }) do
      loaded[name] = {
        handler = require("kong.plugins." .. name .. ".handler"),
        schema = require("kong.plugins." .. name .. ".schema"),
      }
    end

    new_globals, new_modules = {}, {}
    for k in pairs(_G) do
      if not globals_before[k] and k ~= "loaded" and k ~= "new_globals" and k ~= "new_modules" then
        new_globals[#new_globals + 1] = k
      end
    end
    for k in pairs(package.loaded) do
      if not modules_before[k] then new_modules[#new_modules + 1] = k end
    end
    table.sort(new_modules)
  }
  server {
    listen 127.0.0.1:${port};
    location /load {
      content_by_lua_block {
        local cjson = require("cjson")
        local out = { plugins = {}, new_globals = new_globals, new_modules = new_modules }
        for name, p in pairs(loaded) do
          local headers = {}
          -- The PDK calls the handler makes, backed by this request.
          kong = {
            request = { get_method = ngx.req.get_method, get_path = function() return ngx.var.uri end },
            service = { request = { set_header = function(k, v) headers[k] = v end } },
          }
          p.handler:access({ header_name = "x-" .. name, max_length = 64 })
          out.plugins[name] = {
            priority = p.handler.PRIORITY,
            version = p.handler.VERSION,
            schema_name = p.schema.name,
            header = headers["x-" .. name],
          }
        end
        ngx.say(cjson.encode(out))
      }
    }
  }
}
`);
    nginx = spawn("nginx", ["-p", prefix, "-c", path.join(prefix, "nginx.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    nginx.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const errorLog = () => (existsSync(path.join(prefix, "logs/error.log")) ? readFileSync(path.join(prefix, "logs/error.log"), "utf8") : "");

    let body: string | undefined;
    for (let i = 0; i < 100 && body === undefined; i++) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${stderr}\n${errorLog()}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/load/some/path`);
        body = await res.text();
        expect(res.status, body + errorLog()).toBe(200);
      } catch (err) {
        if (body !== undefined) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(body, `nginx did not answer: ${stderr}\n${errorLog()}`).toBeDefined();
    const result = JSON.parse(body!);
    expect(result.plugins.alpha).toEqual({ priority: 1000, version: "0.1.0", schema_name: "alpha", header: "GET /load/some/path" });
    expect(result.plugins.beta).toEqual({ priority: 777, version: "2.3.4", schema_name: "beta", header: "GET /load/some/path" });
    // cjson encodes an empty Lua table as {}: no global was created by loading the plugins.
    expect(result.new_globals).toEqual({});
    const outsidePlugins = (result.new_modules as string[]).filter((m) => !m.startsWith("kong.plugins."));
    // Only the typedefs stand-in (Kong's own module) may come from outside kong.plugins.*.
    expect(outsidePlugins).toEqual(["kong.db.schema.typedefs"]);
    expect(result.new_modules.filter((m: string) => m.startsWith("kong.plugins.")).sort()).toEqual([
      "kong.plugins.alpha.describe", "kong.plugins.alpha.handler", "kong.plugins.alpha.schema",
      "kong.plugins.beta.describe", "kong.plugins.beta.handler", "kong.plugins.beta.schema",
    ]);
    expect(errorLog()).not.toMatch(/\[(error|crit|alert|emerg)\]/);
  });
});
