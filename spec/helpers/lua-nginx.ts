// A bare nginx + lua-nginx-module in a temp prefix, for specs that run a Lua module inside real
// nginx without the whole gateway (spec/gateway-schema, spec/redis-client).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "./ports.ts";

export const REPO = resolve(import.meta.dirname, "..", "..");
const MODULES_DIR = "/usr/lib/nginx/modules";

export interface LuaNginxOptions {
  /** mkdtemp prefix of the nginx prefix directory, e.g. "redis-client-test-". */
  tmpName: string;
  /** Directories (absolute) searched for `?.lua` after gateway/lua. */
  luaDirs: string[];
  /** Extra directives in the http block (init_by_lua_block, lua_socket_log_errors, ...). */
  http?: string;
  /** The server block's locations; the `listen` line is added. */
  locations: string;
  workerConnections?: number;
}

export interface LuaNginx {
  port: number;
  prefix: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port (or rejects after the deadline). */
export async function waitForPort(port: number, child: ChildProcess, what: string, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ port, host: "127.0.0.1" }, () => {
        s.destroy();
        res(true);
      });
      s.on("error", () => res(false));
    });
    if (ok) return;
    if (Date.now() - start > deadlineMs) throw new Error(`${what} did not listen on ${port} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within the timeout. */
export async function stopProcess(child: ChildProcess | undefined, timeoutMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      res();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      res();
    });
  });
  child.kill("SIGTERM");
  await exited;
}

export async function startLuaNginx(opts: LuaNginxOptions): Promise<LuaNginx> {
  for (const bin of ["/usr/sbin/nginx", `${MODULES_DIR}/ngx_http_lua_module.so`]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: install nginx-light and libnginx-mod-http-lua`);
  }
  const prefix = mkdtempSync(join(tmpdir(), opts.tmpName));
  for (const d of ["conf", "logs", "tmp"]) mkdirSync(join(prefix, d));
  const port = await freePort();
  const luaPath = [`${REPO}/gateway/lua/?.lua`, `${REPO}/gateway/lua/?/init.lua`, ...opts.luaDirs.map((d) => `${d}/?.lua`), ""].join(";");
  writeFileSync(
    join(prefix, "conf", "nginx.conf"),
    `load_module ${MODULES_DIR}/ndk_http_module.so;
load_module ${MODULES_DIR}/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections ${opts.workerConnections ?? 64}; }
http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    lua_package_path "${luaPath};";
    ${opts.http ?? ""}
    server {
        listen 127.0.0.1:${port};
        ${opts.locations}
    }
}
`,
  );
  const errorLogPath = join(prefix, "logs", "error.log");
  const errorLog = (): string => (existsSync(errorLogPath) ? readFileSync(errorLogPath, "utf8") : "");
  const nginx = spawn("nginx", ["-p", prefix, "-c", join(prefix, "conf", "nginx.conf"), "-e", errorLogPath], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  nginx.stderr?.on("data", (d) => (stderr += String(d)));
  const stop = async (): Promise<void> => {
    await stopProcess(nginx);
    rmSync(prefix, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, nginx, "nginx");
  } catch (e) {
    const log = errorLog();
    await stop();
    throw new Error(`${(e as Error).message}\n${stderr}\n${log}`);
  }
  return { port, prefix, errorLog, stop };
}
