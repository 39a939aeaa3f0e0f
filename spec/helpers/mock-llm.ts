/**
 * Starts the mock LLM upstream for a test: a child process by default (so that a client abort through
 * the gateway is observed by a separate process, as in production), or in-process with
 * `inProcess: true`. Stop it in afterAll.
 *
 *   const llm = await startMockLlm({ flavor: "vllm" });
 *   ... send requests (faults by header: x-mock-ttft-ms, x-mock-abort-after-tokens, ...)
 *   const [record] = await llm.requests({ waitFor: 1 });
 *   await llm.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MockRequestRecord } from "../../upstream/mock-llm/records.ts";
import { startMockLlmServer } from "../../upstream/mock-llm/server.ts";

export type { MockRequestRecord, Outcome, UsageRecord } from "../../upstream/mock-llm/records.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MAIN = resolve(REPO_ROOT, "upstream/mock-llm/main.ts");
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface StartMockLlmOptions {
  /** Default response flavor: openai (default), vllm, sglang, anthropic, ollama. */
  flavor?: string;
  /** Run the server inside the test process instead of a child process. */
  inProcess?: boolean;
  /** Bind address, 127.0.0.1 by default. */
  host?: string;
  /** Model names GET /v1/models lists. */
  models?: string[];
}

export interface RequestsQuery {
  /** Wait until at least this many records exist (server-side, no polling). */
  waitFor?: number;
  /** How long to wait for them; 5000 ms by default. */
  timeoutMs?: number;
}

export interface MockLlm {
  url: string;
  port: number;
  /** The records, oldest first; with waitFor, fails when fewer than that many exist after timeoutMs. */
  requests(query?: RequestsQuery): Promise<MockRequestRecord[]>;
  clearRequests(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMockLlm(opts: StartMockLlmOptions = {}): Promise<MockLlm> {
  const host = opts.host ?? "127.0.0.1";
  if (opts.inProcess) {
    const server = await startMockLlmServer({ port: 0, host, flavor: opts.flavor, models: opts.models });
    return client(server.url, server.port, () => server.close());
  }
  const { child, url, port } = await spawnMock(host, opts);
  return client(url, port, () => stopChild(child));
}

function client(url: string, port: number, stop: () => Promise<void>): MockLlm {
  let stopped: Promise<void> | null = null;
  return {
    url,
    port,
    async requests(query: RequestsQuery = {}): Promise<MockRequestRecord[]> {
      let endpoint = `${url}/_mock/requests`;
      if (query.waitFor !== undefined) endpoint += `?wait_for=${query.waitFor}&timeout_ms=${query.timeoutMs ?? 5_000}`;
      const response = await fetch(endpoint);
      if (!response.ok) throw new Error(`GET /_mock/requests: ${response.status} ${await response.text()}`);
      const records = (await response.json()) as MockRequestRecord[];
      if (query.waitFor !== undefined && records.length < query.waitFor) {
        throw new Error(
          `mock LLM: waited ${query.timeoutMs ?? 5_000} ms for ${query.waitFor} request records, have ${records.length}: ` +
            JSON.stringify(records.map((r) => ({ id: r.id, path: r.path, outcome: r.outcome }))),
        );
      }
      return records;
    },
    async clearRequests(): Promise<void> {
      const response = await fetch(`${url}/_mock/requests`, { method: "DELETE" });
      if (!response.ok) throw new Error(`DELETE /_mock/requests: ${response.status}`);
      await response.arrayBuffer();
    },
    stop(): Promise<void> {
      stopped ??= stop();
      return stopped;
    },
  };
}

async function spawnMock(host: string, opts: StartMockLlmOptions): Promise<{ child: ChildProcess; url: string; port: number }> {
  const args = ["--import", "tsx", MAIN, "--port", "0", "--host", host, "--exit-with-stdin"];
  if (opts.flavor !== undefined) args.push("--flavor", opts.flavor);
  if (opts.models !== undefined) args.push("--models", opts.models.join(","));
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  return await new Promise((resolveStart, rejectStart) => {
    let stdout = "";
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      rejectStart(new Error(`mock LLM did not start: ${why}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail(`no "listening" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once("error", (err) => fail(err.message));
    child.once("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      stdout += chunk;
      const match = /mock-llm listening on (http:\/\/\S+:(\d+))/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolveStart({ child, url: match[1], port: Number(match[2]) });
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill("SIGTERM");
  });
}
