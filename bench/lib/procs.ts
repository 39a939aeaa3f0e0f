// Child processes of the benchmark (nginx instances, redis-server): started on free ports,
// waited for, and always stopped, also when the harness fails or is interrupted.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export interface Managed {
  name: string;
  child: ChildProcess;
  /** stdout + stderr so far, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `cmd args` and resolves once it accepts connections on `port`; rejects with its output
 * if it exits first or does not listen within `timeoutMs`. `gracefulSignal` is what `stop()`
 * sends first (nginx: SIGQUIT), then SIGTERM, then SIGKILL.
 */
export async function startListening(
  name: string,
  cmd: string,
  args: string[],
  port: number,
  opts: { gracefulSignal?: NodeJS.Signals; timeoutMs?: number; cwd?: string } = {},
): Promise<Managed> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], cwd: opts.cwd });
  children.add(child);
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  child.once("exit", () => children.delete(child));
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));

  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    if (spawnError) throw new Error(`${name}: cannot start ${cmd}: ${spawnError.message}`);
    if (exited(child)) throw new Error(`${name} exited (code ${child.exitCode}) before listening on ${port}:\n${output}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} did not listen on ${port} within ${opts.timeoutMs ?? 10_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopping: Promise<void> | undefined;
  return {
    name,
    child,
    output: () => output,
    stop: () => {
      stopping ??= (async () => {
        if (exited(child)) return;
        child.kill(opts.gracefulSignal ?? "SIGTERM");
        if (await waitExit(child, 5_000)) return;
        child.kill("SIGTERM");
        if (await waitExit(child, 3_000)) return;
        child.kill("SIGKILL");
        await waitExit(child, 2_000);
      })();
      return stopping;
    },
  };
}

/** Runs a command to completion, collecting its output (for wrk, luajit, version probes). */
export function runToEnd(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill("SIGKILL");
          stderr += `\n(killed after ${opts.timeoutMs} ms)`;
        }, opts.timeoutMs)
      : undefined;
    child.once("error", (err) => {
      if (timer) clearTimeout(timer);
      children.delete(child);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.once("close", (code) => {
      if (timer) clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}
