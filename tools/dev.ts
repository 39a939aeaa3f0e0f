// `make dev`: the local gateway with kong/kong.yml plus the local upstreams it names, for a person
// to try with curl. The YAML's upstream hosts are docker-compose service names (mock-llm, vllm,
// sglang, video-service, redis); each one this script knows how to run is started on the port the
// YAML expects, and the gateway resolves the name to 127.0.0.1 (KONG_LOCAL_HOSTS).
//
//   npx tsx tools/dev.ts [--config kong/kong.yml] [--proxy-port 8000] [--prefix .gateway]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort } from "../spec/helpers/ports.ts";
import { loadDeclarativeFile, DeclarativeConfigError, type NormalizedConfig } from "../gateway/config.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface LocalUpstream {
  /** What to run for this host name, listening on `port`. */
  command(port: number): { cmd: string; args: string[] };
  /** Line on stdout/stderr that says it is ready (else: the port answering). */
  ready?: RegExp;
}

const TSX = [process.execPath, "--import", "tsx"];
const mockLlm = (flavor: string): LocalUpstream => ({
  command: (port) => ({ cmd: TSX[0], args: [...TSX.slice(1), join(ROOT, "upstream/mock-llm/main.ts"), "--port", String(port), "--flavor", flavor] }),
  ready: /mock-llm listening on/,
});

/** Host names of kong/kong.yml that this script can run locally. */
export const KNOWN_UPSTREAMS: Record<string, LocalUpstream> = {
  "mock-llm": mockLlm("openai"),
  vllm: mockLlm("vllm"),
  sglang: mockLlm("sglang"),
  "video-service": {
    command: (port) => ({ cmd: TSX[0], args: [...TSX.slice(1), join(ROOT, "upstream/video-service/main.ts"), "--port", String(port)] }),
  },
  redis: {
    command: (port) => ({ cmd: "redis-server", args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"] }),
  },
};

export interface UpstreamTarget {
  host: string;
  port: number;
  /** where the YAML names it */
  origin: string;
}

/** Every host:port the YAML points at: services, and redis hosts inside plugin configs. */
export function upstreamTargets(config: NormalizedConfig): UpstreamTarget[] {
  const out = new Map<string, UpstreamTarget>();
  for (const s of config.services) {
    out.set(`${s.host}:${s.port}`, { host: s.host, port: s.port, origin: `service ${s.name ?? s.id}` });
  }
  const visit = (value: unknown, origin: string) => {
    if (Array.isArray(value)) {
      value.forEach((v) => visit(v, origin));
    } else if (value && typeof value === "object") {
      const obj = value as Record<string, unknown>;
      if (typeof obj.host === "string" && typeof obj.port === "number") {
        out.set(`${obj.host}:${obj.port}`, { host: obj.host, port: obj.port, origin });
      }
      Object.values(obj).forEach((v) => visit(v, origin));
    }
  };
  for (const p of config.plugins) visit(p.config, `plugin ${p.name} (${p._origin})`);
  return [...out.values()];
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once("error", () => resolvePromise(false));
  });
}

async function waitReady(child: ChildProcess, port: number, ready: RegExp | undefined, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let output = "";
  const collect = (c: Buffer) => {
    output += c.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}:\n${output}`);
    if (ready ? ready.test(output) : await portAnswers(port)) return;
    if (Date.now() > deadline) throw new Error(`${name} did not start within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function which(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "kong/kong.yml" },
      "proxy-port": { type: "string", default: "8000" },
      prefix: { type: "string", default: ".gateway" },
    },
  });
  const configPath = resolve(values.config!);
  let config: NormalizedConfig;
  try {
    config = loadDeclarativeFile(configPath);
  } catch (err) {
    if (err instanceof DeclarativeConfigError) {
      process.stderr.write(`dev: ${configPath}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  const children: ChildProcess[] = [];
  const hosts: string[] = [];
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const c of children.reverse()) if (c.exitCode === null) c.kill("SIGTERM");
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
      process.exit(code);
    }, 3000).unref();
    Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => c.once("exit", r))))).then(() => process.exit(code));
  };
  process.on("SIGINT", () => stopAll(0));
  process.on("SIGTERM", () => stopAll(0));

  for (const target of upstreamTargets(config)) {
    const known = KNOWN_UPSTREAMS[target.host];
    if (!known) {
      if (!["127.0.0.1", "localhost", "::1"].includes(target.host)) {
        process.stdout.write(`dev: ${target.origin}: no local runner for host '${target.host}': start it yourself on ${target.host}:${target.port}\n`);
      } else if (!(await portAnswers(target.port))) {
        process.stdout.write(`dev: ${target.origin}: nothing answers on ${target.host}:${target.port} yet\n`);
      }
      continue;
    }
    // In compose every service has its own address; here they share 127.0.0.1, so an upstream that
    // wants the gateway's own port (vllm:8000) is moved to a free one, and the gateway told so.
    const proxyPort = Number(values["proxy-port"]);
    const port = target.port === proxyPort ? await freePort() : target.port;
    hosts.push(port === target.port ? `${target.host}=127.0.0.1` : `${target.host}=127.0.0.1:${port}`);
    if (port === target.port && (await portAnswers(target.port))) {
      process.stdout.write(`dev: ${target.host}: something already listens on 127.0.0.1:${target.port}, using it\n`);
      continue;
    }
    const { cmd, args } = known.command(port);
    if (cmd !== process.execPath && !which(cmd)) {
      process.stdout.write(`dev: ${target.host}: '${cmd}' is not installed, skipped\n`);
      continue;
    }
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    child.stdout?.on("data", (c: Buffer) => process.stdout.write(prefixLines(target.host, c)));
    child.stderr?.on("data", (c: Buffer) => process.stderr.write(prefixLines(target.host, c)));
    try {
      await waitReady(child, port, known.ready, target.host);
    } catch (err) {
      process.stderr.write(`dev: ${(err as Error).message}\n`);
      stopAll(1);
      return;
    }
    process.stdout.write(`dev: ${target.host} running on 127.0.0.1:${port} (${target.origin})\n`);
  }

  const gateway = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "gateway/cli.ts"), "--config", configPath, "--proxy-port", values["proxy-port"]!, "--prefix", resolve(values.prefix!)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, KONG_LOCAL_HOSTS: [process.env.KONG_LOCAL_HOSTS, ...hosts].filter(Boolean).join(",") } },
  );
  children.push(gateway);
  gateway.stdout?.on("data", (c: Buffer) => {
    process.stdout.write(c);
    if (c.toString().includes("gateway listening")) {
      const keys = config.keyauth_credentials.map((k) => k.key);
      const path = config.routes.find((r) => r.paths?.some((p) => p.startsWith("/v1/chat")))?.paths?.[0] ?? "/";
      process.stdout.write(
        `\nTry:\n  curl -s http://127.0.0.1:${values["proxy-port"]}${path} -H 'content-type: application/json'` +
          (keys[0] ? ` -H 'apikey: ${keys[0]}'` : "") +
          ` -d '{"model":"mock","messages":[{"role":"user","content":"hello"}]}'\n` +
          `Logs: ${resolve(values.prefix!)}/logs/error.log   Stop: Ctrl-C\n\n`,
      );
    }
  });
  gateway.once("exit", (code) => {
    if (!stopping) {
      process.stderr.write(`dev: the gateway exited (code ${code})\n`);
      stopAll(code ?? 1);
    }
  });
}

function prefixLines(name: string, chunk: Buffer): string {
  return chunk
    .toString()
    .split("\n")
    .map((l, i, all) => (l === "" && i === all.length - 1 ? "" : `[${name}] ${l}`))
    .join("\n");
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main().catch((err) => {
    process.stderr.write(`dev: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
