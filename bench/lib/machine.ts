// Where the numbers were measured: CPU, cores, memory, kernel and the versions of every program
// in the path of a request, so a table is never read without its machine.
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { NGINX_BIN } from "./nginx.ts";
import { runToEnd } from "./procs.ts";

export interface Machine {
  cpu_model: string;
  cores: number;
  memory_gib: number;
  kernel: string;
  nginx: string;
  luajit: string;
  lua_nginx_module: string | null;
  wrk: string;
  redis: string;
  node: string;
  loadavg_start: number[];
  loadavg_end?: number[];
}

function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const line = info.split("\n").find((l) => /^model name\s*:/.test(l));
    if (line) return line.replace(/^model name\s*:\s*/, "").trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? "unknown";
}

async function version(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const { stdout, stderr } = await runToEnd(cmd, args, { timeoutMs: 10_000 });
    const m = (stdout + "\n" + stderr).match(pattern);
    return m ? m[1].trim() : (stdout + stderr).split("\n")[0].trim();
  } catch {
    return "not installed";
  }
}

export async function describeMachine(): Promise<Machine> {
  return {
    cpu_model: cpuModel(),
    cores: cpus().length,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    nginx: await version(NGINX_BIN, ["-v"], /nginx version:\s*(\S+)/),
    luajit: await version("luajit", ["-e", "print(jit.version)"], /(LuaJIT \S+)/),
    lua_nginx_module: null, // filled from the gateway worker (bench-probe) once it runs
    wrk: await version("wrk", ["-v"], /^(wrk \S+)/m),
    redis: await version("redis-server", ["--version"], /(v=\S+)/),
    node: process.version,
    loadavg_start: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** ngx.config.ngx_lua_version (10023) as 0.10.23. */
export function luaNginxModuleVersion(n: number): string {
  return `${Math.floor(n / 1000000)}.${Math.floor((n % 1000000) / 1000)}.${n % 1000}`;
}
