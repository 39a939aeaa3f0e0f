// The gateway's resty.redis against real redis-server processes, inside a real
// nginx + lua-nginx-module: connect, auth, select, commands, eval, pipelines,
// keepalive reuse, command errors, timeouts and a redis that goes away.
// The Lua side is spec/redis-client/redis_scenarios.lua.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";
import { REPO, startLuaNginx, stopProcess, waitForPort, type LuaNginx } from "../helpers/lua-nginx.ts";

const PASSWORD = "s3cret-pass";

interface Step {
  r?: unknown;
  e?: string;
}
interface CaseResult {
  ok: boolean;
  error?: string;
  steps: Record<string, Step>;
}

const children: ChildProcess[] = [];

async function startRedis(extraArgs: string[] = []): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(proc);
  await waitForPort(port, proc, "redis-server");
  return { port, proc };
}

let nginx: LuaNginx | undefined;
let nginxPort = 0;
let plain: { port: number; proc: ChildProcess };
let secured: { port: number; proc: ChildProcess };
let tagCounter = 0;

async function runCase(name: string, params: Record<string, string | number> = {}): Promise<CaseResult> {
  const qs = new URLSearchParams({ case: name, tag: `${process.pid}-${++tagCounter}` });
  for (const [k, v] of Object.entries(params)) qs.set(k, String(v));
  const res = await fetch(`http://127.0.0.1:${nginxPort}/t?${qs}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as CaseResult;
}

function errorLog(): string {
  return nginx?.errorLog() ?? "";
}

beforeAll(async () => {
  if (!existsSync("/usr/bin/redis-server")) throw new Error("/usr/bin/redis-server is missing: install redis-server");
  plain = await startRedis();
  secured = await startRedis(["--requirepass", PASSWORD]);
  nginx = await startLuaNginx({
    tmpName: "redis-client-test-",
    luaDirs: [`${REPO}/spec/redis-client`],
    http: "lua_socket_log_errors off;",
    locations: `location = /t {
            content_by_lua_block { require("redis_scenarios").run() }
        }`,
    workerConnections: 256,
  });
  nginxPort = nginx.port;
});

afterAll(async () => {
  await nginx?.stop();
  for (const child of children) await stopProcess(child);
});

describe("resty.redis against redis-server, in nginx", () => {
  it("runs commands with lua-resty-redis's return conventions", async () => {
    const { ok, error, steps } = await runCase("basic", { port: plain.port });
    expect(error).toBeUndefined();
    expect(ok).toBe(true);
    expect(steps.connect).toEqual({ r: 1 });
    expect(steps.ping).toEqual({ r: "PONG" });
    expect(steps.set).toEqual({ r: "OK" });
    expect(steps.get).toEqual({ r: "v1" });
    // a nil bulk is ngx.null (JSON null), not a missing value
    expect(steps.get_missing).toEqual({ r: null });
    expect(steps.incrby).toEqual({ r: 15 });
    expect(steps.expire).toEqual({ r: 1 });
    expect(steps.ttl.r).toBeGreaterThan(95);
    expect(steps.ttl.r).toBeLessThanOrEqual(100);
    expect(steps.pttl.r).toBeGreaterThan(95_000);
    expect(steps.hset).toEqual({ r: 1 });
    expect(steps.hget).toEqual({ r: "x" });
    expect(steps.hget_missing).toEqual({ r: null });
    expect(steps.del).toEqual({ r: 3 });
    expect(steps.binary_get).toEqual({ r: "a\r\nb\u0000c" });
    expect(steps.big_roundtrip).toEqual({ r: true, e: 1_000_000 });
    expect(steps.big_int).toEqual({ r: 1e15 });
  });

  it("returns false and Redis's message for command errors, and the connection stays usable", async () => {
    const { steps } = await runCase("basic", { port: plain.port });
    expect(steps.incr_not_int).toEqual({ r: false, e: "ERR value is not an integer or out of range" });
    expect(steps.lpush_wrongtype).toEqual({
      r: false,
      e: "WRONGTYPE Operation against a key holding the wrong kind of value",
    });
    expect(steps.wrong_arity).toEqual({ r: false, e: "ERR wrong number of arguments for 'get' command" });
    expect(steps.unknown_command.r).toBe(false);
    expect(steps.unknown_command.e).toMatch(/^ERR unknown command 'nosuchcommand'/);
    expect(steps.after_errors).toEqual({ r: "abc" });
  });

  it("returns nil and 'closed' after close", async () => {
    const { steps } = await runCase("basic", { port: plain.port });
    expect(steps.close).toEqual({ r: 1 });
    expect(steps.after_close).toEqual({ e: "closed" });
  });

  it("runs eval/evalsha scripts, nested arrays and error elements", async () => {
    const { ok, steps } = await runCase("eval", { port: plain.port });
    expect(ok).toBe(true);
    expect(steps.eval1).toEqual({ r: 3 });
    expect(steps.eval2).toEqual({ r: 7 });
    expect(steps.ttl.r).toBeGreaterThan(55);
    expect(steps.sha_len).toEqual({ r: 40 });
    expect(steps.evalsha).toEqual({ r: 8 });
    expect(steps.evalsha_unknown.r).toBe(false);
    expect(steps.evalsha_unknown.e).toMatch(/^NOSCRIPT/);
    // Redis 7 prefixes "ERR " to an error_reply without a code
    expect(steps.nested).toEqual({ r: [1, [2, "x"], [false, "ERR boom"], "end"] });
    expect(steps.eval_error.r).toBe(false);
    expect(steps.eval_error.e).toMatch(/^ERR /);
    expect(steps.eval_nil).toEqual({ r: null });
    // BLPOP timing out is a null multi-bulk
    expect(steps.blpop_null_array).toEqual({ r: null });
  });

  it("selects databases", async () => {
    const { steps } = await runCase("select", { port: plain.port });
    expect(steps.select1).toEqual({ r: "OK" });
    expect(steps.set_db1).toEqual({ r: "OK" });
    expect(steps.select0).toEqual({ r: "OK" });
    expect(steps.get_db0).toEqual({ r: null });
    expect(steps.get_db1).toEqual({ r: "in-db1" });
    expect(steps.select_bad).toEqual({ r: false, e: "ERR DB index is out of range" });
  });

  it("pipelines: one result per command, error replies as {false, err}", async () => {
    const { steps } = await runCase("pipeline", { port: plain.port });
    expect(steps.queued_returns_nil).toEqual({ r: true });
    expect(steps.commit).toEqual({
      r: ["OK", 2, [false, "ERR value is not an integer or out of range"], "x", 1],
    });
    expect(steps.commit_again).toEqual({ e: "no pipeline" });
    expect(steps.after_cancel).toEqual({ r: "x" });
  });

  it("reuses kept-alive connections from the cosocket pool", async () => {
    const first = await runCase("keepalive", { port: plain.port });
    expect(first.steps.connect).toEqual({ r: 1 });
    expect(first.steps.keepalive).toEqual({ r: 1 });
    expect(first.steps.after_keepalive).toEqual({ e: "closed" });
    expect(first.steps.reused_second.r).toBeGreaterThanOrEqual(1);
    expect(first.steps.ping2).toEqual({ r: "PONG" });
    // the next request finds the connection in the pool as well
    const second = await runCase("keepalive", { port: plain.port });
    expect(second.steps.reused_first.r).toBeGreaterThanOrEqual(2);
  });

  it("passes pool, pool_size and backlog to the cosocket", async () => {
    const first = await runCase("keepalive", { port: plain.port, pool: "custom-pool" });
    expect(first.steps.connect).toEqual({ r: 1 });
    expect(first.steps.reused_first).toEqual({ r: 0 });
    expect(first.steps.reused_second).toEqual({ r: 1 });
  });

  it("authenticates against requirepass", async () => {
    const { steps } = await runCase("auth", { port: secured.port, password: PASSWORD });
    expect(steps.before_auth).toEqual({ r: false, e: "NOAUTH Authentication required." });
    expect(steps.auth_wrong.r).toBe(false);
    expect(steps.auth_wrong.e).toMatch(/^(WRONGPASS|ERR invalid password)/);
    expect(steps.auth_right).toEqual({ r: "OK" });
    expect(steps.after_auth).toEqual({ r: "OK" });
  });

  it("times out reads, closes the connection, and set_timeout works too", async () => {
    const { ok, steps } = await runCase("timeout", { port: plain.port });
    expect(ok).toBe(true);
    expect(steps.blpop).toEqual({ e: "timeout" });
    expect(steps.elapsed_ms.r).toBeGreaterThanOrEqual(100);
    expect(steps.elapsed_ms.r).toBeLessThan(1500);
    expect(steps.after_timeout).toEqual({ e: "closed" });
    expect(steps.ping2).toEqual({ r: "PONG" });
  });

  it("reports 'connection refused' for a port nothing listens on", async () => {
    const closedPort = await freePort();
    const { ok, steps } = await runCase("refused", { port: closedPort });
    expect(ok).toBe(true);
    expect(steps.connect).toEqual({ e: "connection refused" });
  });

  it("a redis that was stopped gives a clean connection error, not a crashed worker", async () => {
    // a pooled connection to the redis that is about to go away
    await runCase("keepalive", { port: plain.port });
    await stopProcess(plain.proc);

    const { ok, error, steps } = await runCase("basic", { port: plain.port });
    expect(error).toBeUndefined();
    expect(ok).toBe(true);
    // either refused outright, or the pooled socket is found dead on first use
    if (steps.connect.r === 1) {
      expect(["closed", "connection reset by peer"]).toContain(steps.ping.e);
    } else {
      expect(steps.connect).toEqual({ e: "connection refused" });
    }

    const fresh = await runCase("refused", { port: plain.port });
    expect(fresh.steps.connect).toEqual({ e: "connection refused" });

    // the worker still serves requests
    const after = await runCase("auth", { port: secured.port, password: PASSWORD });
    expect(after.steps.auth_right).toEqual({ r: "OK" });
    expect(errorLog()).not.toMatch(/lua entry thread aborted|worker process \d+ exited on signal/);
  });
});
