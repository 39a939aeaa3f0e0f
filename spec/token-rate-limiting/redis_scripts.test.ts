// The redis policy's two scripts, run by a real redis-server: the admission rule (fixed and
// sliding), the atomic reservation, key expiry, and settlement that never revives a counter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACQUIRE_SCRIPT, SETTLE_SCRIPT } from "../../plugins/token-rate-limiting/policies/redis_scripts.ts";
import { startRedis, type Redis } from "./helpers.ts";

let redis: Redis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

interface Window {
  key: string;
  prev?: string;
  limit: number;
  overlap?: number;
  ttl?: number;
}

function acquire(reserve: number, windows: Window[]): number[] {
  const keys = windows.flatMap((w) => [w.key, w.prev ?? w.key]);
  const args = [String(reserve), ...windows.flatMap((w) => [String(w.limit), String(w.overlap ?? 0), String(w.ttl ?? 60)])];
  const out = redis.cli("EVAL", ACQUIRE_SCRIPT, String(keys.length), ...keys, ...args);
  return out.split("\n").map(Number);
}

function settle(adjs: { key: string; delta: number; ttl?: number }[]): number {
  const out = redis.cli("EVAL", SETTLE_SCRIPT, String(adjs.length), ...adjs.map((a) => a.key), ...adjs.flatMap((a) => [String(a.delta), String(a.ttl ?? 60)]));
  return Number(out);
}

let n = 0;
const key = (name: string) => `trl-test:${process.pid}:${++n}:${name}`;

describe("token-rate-limiting Redis scripts", () => {
  it("reads without writing when nothing is reserved, and refuses at exactly the limit", () => {
    const k = key("fixed");
    redis.cli("SET", k, "99");
    expect(acquire(0, [{ key: k, limit: 100 }])).toEqual([1, 99, 0]);
    redis.cli("SET", k, "100");
    expect(acquire(0, [{ key: k, limit: 100 }])).toEqual([0, 100, 0]);
    expect(redis.cli("GET", k)).toBe("100");
  });

  it("reserves in every window when all admit, and nowhere when one is exhausted", () => {
    const a = key("a");
    const b = key("b");
    expect(acquire(60, [{ key: a, limit: 1000, ttl: 120 }, { key: b, limit: 100, ttl: 7200 }])).toEqual([1, 0, 0, 0, 0]);
    expect(redis.cli("GET", a)).toBe("60");
    expect(Number(redis.cli("TTL", b))).toBeGreaterThan(7000);
    expect(acquire(60, [{ key: a, limit: 1000 }, { key: b, limit: 100 }])).toEqual([1, 60, 0, 60, 0]);
    expect(acquire(60, [{ key: a, limit: 1000 }, { key: b, limit: 100 }])).toEqual([0, 120, 0, 120, 0]);
    expect(redis.cli("GET", a)).toBe("120");
    expect(redis.cli("GET", b)).toBe("120");
  });

  it("weighs the previous window by its overlap in sliding mode", () => {
    const cur = key("cur");
    const prev = key("prev");
    redis.cli("SET", prev, "600");
    redis.cli("SET", cur, "59");
    // 59 + 600 * (4/60) = 99: one token left.
    expect(acquire(0, [{ key: cur, prev, limit: 100, overlap: 4 / 60 }])[0]).toBe(1);
    redis.cli("SET", cur, "60");
    expect(acquire(0, [{ key: cur, prev, limit: 100, overlap: 4 / 60 }])).toEqual([0, 60, 600]);
    // Fixed windows ignore the previous key.
    expect(acquire(0, [{ key: cur, prev, limit: 100, overlap: 0 }])).toEqual([1, 60, 0]);
  });

  it("admits reservations until they fill the limit (concurrent streams: concurrency.test.ts)", () => {
    const k = key("fill");
    const results = Array.from({ length: 20 }, () => acquire(100, [{ key: k, limit: 1000 }])[0]);
    expect(results.filter((r) => r === 1).length).toBe(10);
    expect(redis.cli("GET", k)).toBe("1000");
  });

  it("settles deltas, sets the expiry of a new counter, and never revives an expired one", () => {
    const k = key("settle");
    const gone = key("gone");
    expect(settle([{ key: k, delta: 30, ttl: 90 }, { key: gone, delta: -50 }])).toBe(1);
    expect(redis.cli("GET", k)).toBe("30");
    expect(Number(redis.cli("TTL", k))).toBeGreaterThan(80);
    expect(redis.cli("EXISTS", gone)).toBe("0");
    expect(settle([{ key: k, delta: -12 }])).toBe(1);
    expect(redis.cli("GET", k)).toBe("18");
  });
});
