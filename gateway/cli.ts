// Local gateway: runs Kong plugins (built into dist/) inside Debian's nginx + lua-nginx-module
// with Kong 3.9's plugin semantics, configured by a Kong declarative file.
//
//   npx tsx gateway/cli.ts --config kong/kong.yml [--proxy-port 8000] [--prefix DIR]
//                          [--listen 127.0.0.1] [--lua-path DIR]... [--workers N] [--status-port N]
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DeclarativeConfigError, loadDeclarativeFile } from "./config.ts";
import { injectedDirectives, mergeSharedDicts, parseSharedDictEnv, renderNginxConf } from "./nginx-conf.ts";

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NGINX_BIN = process.env.KONG_LOCAL_NGINX ?? "/usr/sbin/nginx";
const MODULES_DIR = "/usr/lib/nginx/modules";
const RESTY_CORE = "/usr/share/lua/5.1/resty/core.lua";
const APT_PACKAGES = "nginx-light libnginx-mod-http-lua lua-resty-core luajit2 lua-cjson";
const LOG_LEVELS = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];

interface CliOptions {
  config: string;
  proxyPort: number;
  prefix: string | null;
  listen: string;
  luaPaths: string[];
  workers: number;
  /** Kong's status_listen port (on --listen): the Status API, GET /metrics. */
  statusPort: number | null;
}

function usage(message?: string): never {
  if (message) process.stderr.write(`gateway: ${message}\n`);
  process.stderr.write(
    "usage: gateway --config FILE.yml [--proxy-port 8000] [--prefix DIR] [--listen 127.0.0.1] [--lua-path DIR]... [--workers N] [--status-port N]\n",
  );
  process.exit(2);
}

function parseArgs(argv: string[]): CliOptions {
  // Kong's KONG_NGINX_WORKER_PROCESSES sets the default; one worker unless asked (Kong: auto)
  const envWorkers = Number(process.env.KONG_NGINX_WORKER_PROCESSES ?? "1");
  const opts: CliOptions = {
    config: "",
    proxyPort: 8000,
    prefix: null,
    listen: "127.0.0.1",
    luaPaths: [],
    workers: Number.isInteger(envWorkers) && envWorkers >= 1 && envWorkers <= 64 ? envWorkers : 1,
    statusPort: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--config":
      case "-c":
        opts.config = value();
        break;
      case "--proxy-port":
      case "--port": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 65535) usage("--proxy-port must be a port number");
        opts.proxyPort = n;
        break;
      }
      case "--prefix":
        opts.prefix = value();
        break;
      case "--listen":
        opts.listen = value();
        break;
      case "--lua-path":
        opts.luaPaths.push(value());
        break;
      case "--workers": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 64) usage("--workers must be a small positive integer");
        opts.workers = n;
        break;
      }
      case "--status-port": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 65535) usage("--status-port must be a port number");
        opts.statusPort = n;
        break;
      }
      case "--help":
      case "-h":
        usage();
        break;
      default:
        usage(`unknown argument '${arg}'`);
    }
  }
  if (!opts.config) usage("--config is required");
  if (opts.statusPort !== null && opts.statusPort === opts.proxyPort) usage("--status-port must differ from --proxy-port");
  return opts;
}

/** Refuses to go on when the nginx pieces are missing, naming what to install. */
function checkRuntime(): void {
  const missing = [
    [NGINX_BIN, "nginx"],
    [join(MODULES_DIR, "ngx_http_lua_module.so"), "lua-nginx-module"],
    [join(MODULES_DIR, "ndk_http_module.so"), "nginx development kit module"],
    [RESTY_CORE, "lua-resty-core"],
  ].filter(([path]) => !existsSync(path));
  if (missing.length > 0) {
    process.stderr.write(
      `gateway: cannot run: missing ${missing.map(([p, what]) => `${what} (${p})`).join(", ")}.\n` +
        `Install the Debian packages: sudo apt-get install ${APT_PACKAGES}\n`,
    );
    process.exit(1);
  }
}

function luaPackagePath(extra: string[]): string[] {
  const dirs = [...extra.map((d) => resolve(d)), join(PROJECT_ROOT, "dist"), join(PROJECT_ROOT, "gateway", "lua")];
  const fromEnv = (process.env.KONG_LUA_PACKAGE_PATH ?? "").split(";").filter((p) => p && p !== ";");
  return [
    ...fromEnv,
    ...dirs.flatMap((d) => [`${d}/?.lua`, `${d}/?/init.lua`]),
    "/usr/share/lua/5.1/?.lua",
    "/usr/share/lua/5.1/?/init.lua",
  ];
}

/** Pulls the useful part out of nginx's stderr / error.log when startup fails. */
export function startupError(stderr: string, errorLog: string): string {
  const text = `${stderr}\n${errorLog}`;
  const lua = /init_by_lua(?:_block)? error: ([\s\S]*?)(?:\nstack traceback:|\n\S+ \[\w+\]|\nnginx: |$)/.exec(text);
  if (lua) return lua[1].replace(/^[^\n]*?kong_local\/init\.lua:\d+: /, "").trim();
  const emerg = text.split("\n").filter((l) => /\[(emerg|alert|crit|error)\]/.test(l));
  if (emerg.length > 0) return emerg.join("\n").trim();
  return text.trim() || "nginx exited without a message";
}

function readyWorkers(prefix: string): number {
  try {
    return readdirSync(join(prefix, "logs")).filter((f) => f.startsWith(".worker-ready-")).length;
  } catch {
    return 0;
  }
}

/**
 * Ready = nginx wrote its pid file (it does so only after binding the listener), every worker ran
 * init_worker (kong_local.init leaves a marker), and the port answers. The pid file also keeps
 * another process on the same port from passing as ours.
 */
function waitForReady(host: string, port: number, pidFile: string, child: ChildProcess, timeoutMs: number, workers: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolvePromise) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) return resolvePromise(false);
      let pid = "";
      try {
        pid = readFileSync(pidFile, "utf8").trim();
      } catch {
        // not written yet
      }
      if (pid !== String(child.pid) || readyWorkers(dirname(dirname(pidFile))) < workers) {
        if (Date.now() > deadline) return resolvePromise(false);
        setTimeout(attempt, 50);
        return;
      }
      const socket = connect({ host, port });
      socket.once("connect", () => {
        socket.destroy();
        resolvePromise(true);
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline) return resolvePromise(false);
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  checkRuntime();

  let config;
  try {
    config = loadDeclarativeFile(opts.config);
  } catch (err) {
    if (err instanceof DeclarativeConfigError) {
      process.stderr.write(`gateway: error parsing declarative config file ${opts.config}:\n${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  let prefix: string;
  if (opts.prefix) {
    prefix = resolve(opts.prefix);
  } else {
    prefix = mkdtempSync(join(tmpdir(), "kong-local-"));
    process.stdout.write(`gateway prefix: ${prefix}\n`);
  }
  for (const d of ["logs", "tmp/client_body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"]) {
    mkdirSync(join(prefix, d), { recursive: true });
  }

  let extraDicts;
  try {
    extraDicts = parseSharedDictEnv(process.env.KONG_NGINX_HTTP_LUA_SHARED_DICT);
  } catch (err) {
    process.stderr.write(`gateway: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const logLevel = (process.env.KONG_LOG_LEVEL ?? "notice").toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) usage(`KONG_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);

  const configJsonPath = join(prefix, "config.json");
  writeFileSync(
    configJsonPath,
    JSON.stringify(
      {
        ...config,
        _gateway: {
          listen: `${opts.listen}:${opts.proxyPort}`,
          proxy_port: opts.proxyPort,
          status_listen: opts.statusPort === null ? null : `${opts.listen}:${opts.statusPort}`,
          prefix,
          log_level: logLevel,
          source: resolve(opts.config),
        },
      },
      null,
      2,
    ),
  );
  const errorLogPath = join(prefix, "logs", "error.log");
  writeFileSync(
    join(prefix, "nginx.conf"),
    renderNginxConf({
      prefix,
      listenHost: opts.listen,
      port: opts.proxyPort,
      configJsonPath,
      luaPackagePath: luaPackagePath(opts.luaPaths),
      luaPackageCpath: ["/usr/lib/x86_64-linux-gnu/lua/5.1/?.so", "/usr/local/lib/lua/5.1/?.so"],
      sharedDicts: mergeSharedDicts(extraDicts),
      workerProcesses: opts.workers,
      logLevel,
      httpDirectives: injectedDirectives(process.env, "KONG_NGINX_HTTP_"),
      proxyDirectives: injectedDirectives(process.env, "KONG_NGINX_PROXY_"),
      modulesDir: MODULES_DIR,
      // nginx clears the environment of its workers: keep Kong's variables for plugins' os.getenv
      envVars: Object.keys(process.env).filter((k) => k.startsWith("KONG_")),
      // As root, nginx would switch its workers to `nobody`, who cannot write the temp folders of a
      // private (0700) prefix; unprivileged, the workers simply keep the current user (as in Kong).
      workerUser: process.getuid?.() === 0 ? "root" : undefined,
      statusListen: opts.statusPort === null ? undefined : { host: opts.listen, port: opts.statusPort },
    }),
  );
  const pidFile = join(prefix, "logs", "nginx.pid");
  rmSync(pidFile, { force: true });
  for (const f of readdirSync(join(prefix, "logs")).filter((n) => n.startsWith(".worker-ready-"))) {
    rmSync(join(prefix, "logs", f), { force: true });
  }
  const errorLogStart = existsSync(errorLogPath) ? readFileSync(errorLogPath).length : 0;

  const child = spawn(NGINX_BIN, ["-p", `${prefix}/`, "-c", "nginx.conf", "-e", "logs/error.log"], {
    stdio: ["ignore", "inherit", "pipe"],
  });
  // Until nginx is up its stderr is kept back: a startup failure is reported once, cleanly.
  let stderr = "";
  let ready = false;
  child.stderr?.on("data", (chunk: Buffer) => {
    if (ready) {
      process.stderr.write(chunk);
    } else {
      stderr += chunk.toString();
    }
  });

  let stopping = false;
  const forward = () => {
    if (child.exitCode !== null) return;
    // nginx: QUIT = graceful shutdown (in-flight requests finish, bounded by
    // worker_shutdown_timeout); a second signal asks for the fast shutdown (TERM).
    child.kill(stopping ? "SIGTERM" : "SIGQUIT");
    stopping = true;
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);

  const exited = new Promise<number>((resolveExit) => {
    child.on("exit", (code, signal) => resolveExit(code ?? (signal ? 128 : 1)));
  });

  const up = await waitForReady(opts.listen, opts.proxyPort, pidFile, child, 15_000, opts.workers);
  if (!up) {
    if (child.exitCode === null) child.kill("SIGKILL");
    const code = await exited;
    const log = existsSync(errorLogPath) ? readFileSync(errorLogPath).subarray(errorLogStart).toString() : "";
    process.stderr.write(`gateway failed to start:\n${startupError(stderr, log)}\n(see ${errorLogPath})\n`);
    process.exit(code === 0 ? 1 : code);
  }
  ready = true;
  // warnings printed during startup (the Lua init writes its warning line to stderr)
  const startupLines = stderr.split("\n").filter((l) => l.startsWith("gateway: warning:"));
  if (startupLines.length > 0) process.stderr.write(startupLines.join("\n") + "\n");
  if (opts.statusPort !== null) process.stdout.write(`gateway status listening on http://${opts.listen}:${opts.statusPort}\n`);
  process.stdout.write(`gateway listening on http://${opts.listen}:${opts.proxyPort}\n`);

  const code = await exited;
  if (!stopping) process.stderr.write(`gateway: nginx exited with code ${code}\n`);
  process.exit(stopping ? 0 : code || 1);
}

main().catch((err) => {
  process.stderr.write(`gateway: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
