// Counters in Redis, for several Kong nodes sharing one budget: one round trip in access, one in
// settlement. The keepalive pool is named after everything that makes a connection different, so
// one config never reuses another's authenticated connection.

import * as redis from "resty.redis";
import type { Adjustment, CounterValues, CounterWindow } from "../windows";
import { logStoreFailure } from "./failures";
import { ACQUIRE_SCRIPT, SETTLE_SCRIPT } from "./redis_scripts";

export interface RedisConfig {
  host?: string;
  port: number;
  username?: string;
  password?: string;
  database: number;
  ssl: boolean;
  ssl_verify: boolean;
  server_name?: string;
  timeout: number;
  keepalive_pool_size: number;
}

const KEEPALIVE_IDLE_MS = 60000;

function isText(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}

function poolName(c: RedisConfig): string {
  const secret = isText(c.password) ? ngx.md5(c.password) : "";
  const user = isText(c.username) ? c.username : "";
  return `token_rate_limiting:${c.host}:${c.port}:${c.database}:${user}:${c.ssl ? "tls" : "tcp"}:${secret}`;
}

function connect(c: RedisConfig): LuaMultiReturn<[redis.RedisClient, number, undefined] | [undefined, undefined, string]> {
  if (!isText(c.host)) return $multi(undefined, undefined, "redis.host is not set");
  const [red, newErr] = redis.new();
  if (red === undefined) return $multi(undefined, undefined, `could not create a Redis client: ${newErr}`);
  red.set_timeouts(c.timeout, c.timeout, c.timeout);
  const [ok, err] = red.connect(c.host, c.port, {
    ssl: c.ssl,
    ssl_verify: c.ssl_verify,
    server_name: isText(c.server_name) ? c.server_name : undefined,
    pool: poolName(c),
    pool_size: c.keepalive_pool_size,
  });
  if (ok === undefined) return $multi(undefined, undefined, `could not connect to Redis ${c.host}:${c.port}: ${err}`);
  const [reusedTimes] = red.get_reused_times();
  const reused = reusedTimes ?? 0;
  if (reused === 0) {
    if (isText(c.password)) {
      const [authed, authErr] = isText(c.username) ? red.auth(c.username, c.password) : red.auth(c.password);
      if (authed === undefined) {
        red.close();
        return $multi(undefined, undefined, `Redis AUTH failed: ${authErr}`);
      }
    }
    if (c.database !== 0) {
      const [selected, selectErr] = red.select(c.database);
      if (selected === undefined) {
        red.close();
        return $multi(undefined, undefined, `Redis SELECT ${c.database} failed: ${selectErr}`);
      }
    }
  }
  return $multi(red, reused, undefined);
}

// The script cannot have run. Not a timeout: after one, a retry could count twice.
function deadConnection(err: string | undefined): boolean {
  return err === "closed" || err === "broken pipe" || err === "connection reset by peer";
}

function run(c: RedisConfig, script: string, numkeys: number, params: (string | number)[]): LuaMultiReturn<[redis.RedisValue, undefined] | [undefined, string]> {
  // A pooled connection may have died with a Redis restart: one retry on a fresh one.
  for (let attempt = 1; ; attempt++) {
    const [red, reused, err] = connect(c);
    if (red === undefined) return $multi(undefined, err);
    const [res, evalErr] = red.eval(script, numkeys, ...params);
    if (res !== undefined) {
      red.set_keepalive(KEEPALIVE_IDLE_MS, c.keepalive_pool_size);
      return $multi(res, undefined);
    }
    // A failed call may leave a reply unread: never pool the connection.
    red.close();
    if (reused === 0 || attempt >= 2 || !deadConnection(evalErr)) return $multi(undefined, `Redis script failed: ${evalErr}`);
  }
}

function int(value: number): string {
  return string.format("%d", value);
}

export function acquire(
  c: RedisConfig,
  windows: CounterWindow[],
  reserve: number,
): LuaMultiReturn<[CounterValues[], boolean, undefined] | [undefined, undefined, string]> {
  const params: string[] = [];
  for (const w of windows) params.push(w.key, w.prevKey ?? w.key);
  params.push(int(reserve));
  for (const w of windows) params.push(int(w.limit.tokens), string.format("%.17g", w.overlap), int(w.ttl));
  const [res, err] = run(c, ACQUIRE_SCRIPT, 2 * windows.length, params);
  if (res === undefined) return $multi(undefined, undefined, err);
  if (typeof res !== "object") return $multi(undefined, undefined, "unexpected reply from the Redis script");
  const reply = res as (string | number)[];
  const values: CounterValues[] = [];
  for (let i = 0; i < windows.length; i++) {
    values.push({ current: tonumber(reply[2 * i + 1]) ?? 0, previous: tonumber(reply[2 * i + 2]) ?? 0 });
  }
  return $multi(values, tonumber(reply[0]) === 1, undefined);
}

export function settleNow(c: RedisConfig, adjs: Adjustment[]): string | undefined {
  if (adjs.length === 0) return undefined;
  const params: string[] = [];
  for (const a of adjs) params.push(a.key);
  for (const a of adjs) params.push(int(a.delta), int(a.ttl));
  const [, err] = run(c, SETTLE_SCRIPT, adjs.length, params);
  return err;
}

function settleInTimer(this: void, _premature: boolean, c: RedisConfig, adjs: Adjustment[]): void {
  const err = settleNow(c, adjs);
  if (err !== undefined) logStoreFailure("token counts could not be settled in Redis", err, true);
}

/** The log phase has no cosockets. */
export function settleLater(c: RedisConfig, adjs: Adjustment[]): void {
  if (adjs.length === 0) return;
  const [ok, err] = ngx.timer.at(0, settleInTimer, c, adjs);
  if (!ok) logStoreFailure("token counts could not be settled (no timer)", err ?? "unknown");
}
