// Starts the local gateway (gateway/cli.ts) for an integration test and stops it again.
//
//   const gw = await startGateway({ yaml: `_format_version: "3.0"\nservices: ...` });
//   await fetch(`${gw.url}/path`);
//   await gw.stop();
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.ts";

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Lua folder of the probe plugins used by the gateway's own tests. */
export const PROBE_LUA_PATH = join(PROJECT_ROOT, "spec", "fixtures", "gateway", "lua");

export interface StartGatewayOptions {
  /** Declarative config as YAML text (Kong's `_format_version: "3.0"` format). */
  yaml?: string;
  /** Declarative config as an object (written as JSON, which is valid YAML). */
  config?: object;
  /** Extra environment for the gateway (KONG_NGINX_HTTP_LUA_SHARED_DICT, KONG_LOG_LEVEL, ...). */
  env?: Record<string, string>;
  /** Listen on this port instead of a free one. */
  proxyPort?: number;
  /** Extra folders put first on the Lua path (each holds kong/plugins/<name>/...). */
  luaPath?: string[];
  /** Refuse to start when dist/ (make lua) is missing; default true. */
  requireDist?: boolean;
  /** How long to wait for "gateway listening"; default 20 s. */
  startTimeoutMs?: number;
  /** Open Kong's status listener (GET /metrics): `true` for a free port, or this port. */
  statusPort?: number | boolean;
}

export interface Gateway {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** http://127.0.0.1:<status port> when started with `statusPort`. */
  statusUrl?: string;
  /** The gateway's prefix folder: nginx.conf, config.json, logs/error.log. */
  prefix: string;
  /** Current content of <prefix>/logs/error.log (where kong.log writes). */
  errorLog(): string;
  /** Everything the CLI printed on stdout/stderr so far. */
  output(): string;
  /** Graceful stop (SIGTERM -> nginx QUIT); escalates to a fast stop, then SIGKILL. */
  stop(): Promise<void>;
}

export class GatewayStartError extends Error {
  constructor(
    message: string,
    public readonly stderr: string,
    public readonly exitCode: number | null,
  ) {
    super(message);
    this.name = "GatewayStartError";
  }
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => resolvePromise(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolvePromise(true);
    });
  });
}

function killNginx(prefix: string): void {
  try {
    const pid = Number(readFileSync(join(prefix, "logs", "nginx.pid"), "utf8").trim());
    if (pid > 0) process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

async function startOnce(opts: StartGatewayOptions, port: number, statusPort: number | undefined): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), "kong-gw-test-"));
  const prefix = join(dir, "prefix");
  const configFile = join(dir, "kong.yml");
  writeFileSync(configFile, opts.yaml ?? JSON.stringify(opts.config, null, 2));

  const args = ["--import", "tsx", join(PROJECT_ROOT, "gateway", "cli.ts"), "--config", configFile, "--proxy-port", String(port), "--prefix", prefix];
  for (const p of opts.luaPath ?? []) args.push("--lua-path", p);
  if (statusPort !== undefined) args.push("--status-port", String(statusPort));

  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let output = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
    stderr += c.toString();
  });
  child.once("exit", () => running.delete(child));

  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolvePromise, reject) => {
    const timeout = setTimeout(() => {
      child.kill("SIGKILL");
      killNginx(prefix);
      reject(new GatewayStartError(`gateway did not start within ${opts.startTimeoutMs ?? 20000} ms:\n${output}`, stderr, null));
    }, opts.startTimeoutMs ?? 20_000);
    const onData = () => {
      if (output.includes(`gateway listening on ${url}`)) {
        clearTimeout(timeout);
        child.stdout?.off("data", onData);
        resolvePromise();
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timeout);
      reject(new GatewayStartError(`gateway exited with code ${code} before listening:\n${stderr || output}`, stderr, code));
    });
  });

  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    statusUrl: statusPort === undefined ? undefined : `http://127.0.0.1:${statusPort}`,
    prefix,
    errorLog: () => {
      const path = join(prefix, "logs", "error.log");
      return existsSync(path) ? readFileSync(path, "utf8") : "";
    },
    output: () => output,
    stop: () => {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        if (!(await waitExit(child, 5_000))) {
          // a second signal makes the CLI ask nginx for a fast shutdown
          child.kill("SIGTERM");
          if (!(await waitExit(child, 5_000))) {
            child.kill("SIGKILL");
            killNginx(prefix);
            await waitExit(child, 2_000);
          }
        }
        running.delete(child);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/**
 * Starts a gateway with the given declarative config on a free port, resolving once it listens.
 * Rejects with a GatewayStartError carrying the CLI's stderr if it exits first (for example on a
 * plugin config validation error).
 */
export async function startGateway(opts: StartGatewayOptions): Promise<Gateway> {
  if (opts.yaml === undefined && opts.config === undefined) {
    throw new Error("startGateway: give `yaml` or `config`");
  }
  if ((opts.requireDist ?? true) && !existsSync(join(PROJECT_ROOT, "dist", "kong", "plugins"))) {
    throw new Error("startGateway: dist/kong/plugins is missing: run `make lua` before the gateway integration tests");
  }
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.proxyPort ?? (await freePort());
    let statusPort: number | undefined;
    if (typeof opts.statusPort === "number") statusPort = opts.statusPort;
    else if (opts.statusPort === true) do statusPort = await freePort(); while (statusPort === port);
    try {
      return await startOnce(opts, port, statusPort);
    } catch (err) {
      lastError = err;
      // another process took the free port between freePort() and nginx's bind: try another one
      const retry = opts.proxyPort === undefined && typeof opts.statusPort !== "number" && err instanceof GatewayStartError && /Address already in use/.test(err.message);
      if (!retry) throw err;
    }
  }
  throw lastError;
}

/** A gateway that runs the probe plugins of spec/fixtures/gateway (no dist/ needed). */
export function startProbeGateway(yaml: string, env?: Record<string, string>): Promise<Gateway> {
  return startGateway({ requireDist: false, luaPath: [PROBE_LUA_PATH], yaml, env });
}
