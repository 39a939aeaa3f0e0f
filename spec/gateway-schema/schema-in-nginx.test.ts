// The schema library inside nginx (init_by_lua and a request), where it uses
// ngx.re for regex checks: the same answers as under busted.
// The Lua side is spec/gateway-schema/schema_in_nginx.lua.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";

const REPO = resolve(import.meta.dirname, "..", "..");
const MODULES_DIR = "/usr/lib/nginx/modules";

let prefix = "";
let port = 0;
let nginx: ChildProcess | undefined;

async function waitForPort(p: number, child: ChildProcess): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ port: p, host: "127.0.0.1" }, () => {
        s.destroy();
        res(true);
      });
      s.on("error", () => res(false));
    });
    if (ok) return;
    if (Date.now() - start > 10_000) throw new Error(`nginx did not listen on ${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (!existsSync(`${MODULES_DIR}/ngx_http_lua_module.so`)) {
    throw new Error("the nginx lua module is missing: install libnginx-mod-http-lua");
  }
  prefix = mkdtempSync(join(tmpdir(), "schema-nginx-test-"));
  for (const d of ["conf", "logs", "tmp"]) mkdirSync(join(prefix, d));
  port = await freePort();
  const luaPath = [`${REPO}/gateway/lua/?.lua`, `${REPO}/gateway/lua/?/init.lua`, `${REPO}/spec/gateway-schema/?.lua`, ""].join(";");
  writeFileSync(
    join(prefix, "conf", "nginx.conf"),
    `load_module ${MODULES_DIR}/ndk_http_module.so;
load_module ${MODULES_DIR}/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    lua_package_path "${luaPath};";
    init_by_lua_block { require("schema_in_nginx").init() }
    server {
        listen 127.0.0.1:${port};
        location = /t { content_by_lua_block { require("schema_in_nginx").content() } }
    }
}
`,
  );
  nginx = spawn("nginx", ["-p", prefix, "-c", join(prefix, "conf", "nginx.conf"), "-e", join(prefix, "logs", "error.log")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  nginx.stderr?.on("data", (d) => (stderr += String(d)));
  try {
    await waitForPort(port, nginx);
  } catch (e) {
    const log = existsSync(join(prefix, "logs", "error.log")) ? readFileSync(join(prefix, "logs", "error.log"), "utf8") : "";
    throw new Error(`${(e as Error).message}\n${stderr}\n${log}`);
  }
});

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx?.once("exit", r));
    nginx.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (nginx.exitCode === null) nginx.kill("SIGKILL");
  }
  if (prefix) rmSync(prefix, { recursive: true, force: true });
});

interface Outcome {
  conf?: Record<string, unknown>;
  err?: string;
}

describe("kong_local.schema inside nginx", () => {
  it("validates and fills defaults the same way in init_by_lua and in a request", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/t`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { init: Record<string, Outcome | boolean>; request: Record<string, Outcome | boolean> };
    for (const phase of [body.init, body.request]) {
      expect(phase.null_is_ngx_null).toBe(true);
      const valid = phase.valid as Outcome;
      expect(valid.err).toBeUndefined();
      expect(valid.conf?.limit).toBe(10);
      expect(valid.conf?.redis).toEqual({ port: 6379, timeout: 2000, database: 0, ssl: false, ssl_verify: false });
      expect((phase.bad_regex as Outcome).err).toBe("in 'plugins' (demo): config.pattern: not a valid regex: (unclosed");
      expect((phase.bad_uuid as Outcome).err).toBe("in 'plugins' (demo): config.id: expected a valid UUID");
      expect((phase.bad_header as Outcome).err).toBe(
        "in 'plugins' (demo): config.header: bad header name 'x y', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
      );
      expect((phase.bad_host as Outcome).err).toBe("in 'plugins' (demo): config.upstream: must not have a port");
      expect((phase.bad_limit as Outcome).err).toBe("in 'plugins' (demo): config.limit: value should be between 1 and 100");
    }
  });
});
