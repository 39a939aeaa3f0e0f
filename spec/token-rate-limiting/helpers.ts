// Helpers for token-rate-limiting's integration tests: raw HTTP (bytes exactly as sent, no
// automatic decompression), the log probe's serialized entries, a real redis-server on a free
// port, and small waits.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { PROJECT_ROOT, startGateway, type Gateway } from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

/** Lua folder holding the trl-log-probe plugin (prints kong.log.serialize()'s token_rate_limiting). */
export const PROBE_LUA_PATH = join(PROJECT_ROOT, "spec", "token-rate-limiting", "lua");

/** token-rate-limiting counting per `x-tenant` header, so each test spends its own budget. */
export function tenantLimiter(config: object): { name: string; config: object } {
  return { name: "token-rate-limiting", config: { limit_by: "header", header_name: "x-tenant", ...config } };
}

/**
 * The gateway the suites share: one route `/<name>` (prefix stripped) per entry of `routes`,
 * each with its plugins, all proxying to the mock LLM, and the log probe on every request.
 */
export function startLlmGateway(
  llmUrl: string,
  routes: Record<string, object[]>,
  extra: { consumers?: object[]; env?: Record<string, string> } = {},
): Promise<Gateway> {
  return startGateway({
    env: extra.env,
    luaPath: [PROBE_LUA_PATH],
    config: {
      _format_version: "3.0",
      services: [
        {
          name: "llm",
          url: llmUrl,
          routes: Object.entries(routes).map(([name, plugins]) => ({ name, paths: [`/${name}`], strip_path: true, plugins })),
        },
      ],
      ...(extra.consumers ? { consumers: extra.consumers } : {}),
      plugins: [{ name: "trl-log-probe" }],
    },
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The connection closed before the response was complete (with RawRequest.allowAbort). */
  aborted: boolean;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Resolve with what arrived when the server cuts the response, instead of rejecting. */
  allowAbort?: boolean;
}

/** One HTTP/1.1 request on a fresh connection; the body is returned as received (no decoding). */
export function raw(url: string, req: RawRequest = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(url, { method: req.method ?? "POST", headers: { "content-type": "application/json", ...req.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = (aborted: boolean): void => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8"), aborted });
      };
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => done(false));
      res.on("error", (err) => (req.allowAbort ? done(true) : reject(err)));
    });
    r.on("error", reject);
    r.end(req.body);
  });
}

/**
 * Sends a request and closes the connection once `bytes` body bytes arrived (a client that goes
 * away mid-stream). Resolves with the status and what was read.
 */
export function abortAfter(url: string, req: RawRequest, bytes: number): Promise<{ status: number; read: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(url, { method: "POST", headers: { "content-type": "application/json", ...req.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= bytes) {
          r.destroy();
          resolve({ status: res.statusCode ?? 0, read: Buffer.concat(chunks) });
        }
      });
      res.on("end", () => reject(new Error(`the response ended after ${n} bytes, before ${bytes}`)));
    });
    r.on("error", (err) => {
      if (!r.destroyed) reject(err);
    });
    r.end(req.body);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value (not undefined) or the time is up. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Seconds left in the current UTC hour; waits for the next hour when too few are left for a test. */
export async function secondsToHourEnd(needed = 20): Promise<number> {
  let left = 3600 - (Math.floor(Date.now() / 1000) % 3600);
  if (left < needed) {
    console.log(`token-rate-limiting: waiting ${left} s for the next hour so the test does not straddle an hour boundary`);
    await sleep(left * 1000 + 100);
    left = 3600 - (Math.floor(Date.now() / 1000) % 3600);
  }
  return left;
}

export interface TrlWindowLog {
  period: string;
  scope: string;
  limit: number;
  used: number;
  remaining: number;
}

export interface TrlLog {
  prompt: number;
  completion: number;
  total: number;
  cost: number;
  estimated: boolean;
  source: string;
  tokens_count: string;
  model?: string;
  stream: boolean;
  reserved: number;
  injected: boolean;
  limited: boolean;
  store_error: boolean;
  policy: string;
  /** Absent when the request could not be checked (store failure). */
  windows?: TrlWindowLog[];
  remaining?: number;
  format?: string;
  finish_reason?: string;
}

export interface ProbeEntry {
  request_id?: string;
  status: number;
  token_rate_limiting?: TrlLog;
}

/** Every entry the log probe wrote so far. */
export function probeEntries(gw: Gateway): ProbeEntry[] {
  const out: ProbeEntry[] = [];
  for (const line of gw.errorLog().split("\n")) {
    const at = line.indexOf("TRL_SERIALIZED ");
    if (at < 0) continue;
    // nginx appends " while logging request, client: ..., server: ..." to lines logged in a request.
    let json = line.slice(at + "TRL_SERIALIZED ".length);
    for (const trailer of [" while logging request", ", client: "]) {
      const cut = json.lastIndexOf(trailer);
      if (cut >= 0) json = json.slice(0, cut);
    }
    out.push(JSON.parse(json) as ProbeEntry);
  }
  return out;
}

/** Waits for the probe's entry of the request sent with `x-test-id: id`. */
export async function probeEntry(gw: Gateway, id: string, timeoutMs = 5000): Promise<ProbeEntry> {
  try {
    return await waitFor(`the log entry of request ${id}`, () => probeEntries(gw).find((e) => e.request_id === id), timeoutMs);
  } catch (err) {
    const problems = gw.errorLog().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l)).slice(-10);
    throw new Error(`${(err as Error).message}; last gateway errors:\n${problems.join("\n")}`);
  }
}

let idCounter = 0;
/** A test-unique id, used as request id and as limit_by header value (own counters per test). */
export function uniqueId(prefix: string): string {
  idCounter += 1;
  return `${prefix}-${process.pid}-${Date.now()}-${idCounter}`;
}

export interface Redis {
  port: number;
  /** Runs redis-cli against this server and returns its stdout (trimmed). */
  cli(...args: string[]): string;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
}

/** A real redis-server on a free port, no persistence. Stop it in afterAll. */
export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const cli = (...args: string[]): string => {
    const r = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const start = async (): Promise<void> => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    await waitFor("redis-server to answer PING", () => {
      const r = spawnSync("redis-cli", ["-p", String(port), "PING"], { encoding: "utf8" });
      return r.stdout.trim() === "PONG" ? true : undefined;
    }, 10_000);
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  };
  await start();
  return { port, cli, stop, start };
}

/** Sum of the integer values of the Redis keys matching a pattern. */
export function redisSum(redis: Redis, pattern: string): number {
  const keys = redis.cli("--scan", "--pattern", pattern).split("\n").filter((k) => k !== "");
  let sum = 0;
  for (const key of keys) sum += Number(redis.cli("GET", key));
  return sum;
}
