// 64 concurrent streams through token-rate-limiting, two nginx workers, with the local and the redis policy: the
// counter ends at exactly the sum of the usages the upstream reported, and with
// reserve_max_tokens concurrent streams cannot overshoot a limit together.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm, type MockRequestRecord } from "../helpers/mock-llm.ts";
import { probeEntries, raw, redisSum, secondsToHourEnd, startRedis, uniqueId, waitFor, type Redis, startLlmGateway, tenantLimiter } from "./helpers.ts";

const STREAMS = 64;
const BIG = 1_000_000_000;
const RESERVE_LIMIT = 1000;

let llm: MockLlm;
let redis: Redis;
let gw: Gateway;

beforeAll(async () => {
  llm = await startMockLlm();
  redis = await startRedis();
  const redisConf = { host: "127.0.0.1", port: redis.port, timeout: 2000 };
  gw = await startLlmGateway(
    llm.url,
    {
      local: [tenantLimiter({ day: BIG })],
      redis: [tenantLimiter({ day: BIG, policy: "redis", redis: redisConf })],
      "local-reserve": [tenantLimiter({ hour: RESERVE_LIMIT, reserve_max_tokens: true })],
      "local-noreserve": [tenantLimiter({ hour: RESERVE_LIMIT })],
      "redis-reserve": [tenantLimiter({ hour: RESERVE_LIMIT, reserve_max_tokens: true, policy: "redis", redis: redisConf })],
    },
    // two nginx workers, as a Kong node has at least on this machine: the local policy's counters
    // must be exact across workers (one shared dict), not only within one Lua VM
    { env: { KONG_NGINX_WORKER_PROCESSES: "2" } },
  );
});

it("runs the gateway with two nginx workers", () => {
  expect(readFileSync(join(gw.prefix, "nginx.conf"), "utf8")).toMatch(/^\s*worker_processes\s+2;/m);
});

afterAll(async () => {
  await gw?.stop();
  await redis?.stop();
  await llm?.stop();
});

interface Burst {
  tenant: string;
  statuses: number[];
  records: MockRequestRecord[];
  ids: string[];
}

/** STREAMS concurrent streaming requests for one tenant, each with its own prompt and max_tokens. */
async function burst(route: string, extraHeaders: Record<string, string> = {}): Promise<Burst> {
  await secondsToHourEnd(); // the hour limits must not straddle an hour boundary
  const tenant = uniqueId(route);
  const ids = Array.from({ length: STREAMS }, (_, i) => `${tenant}-${i}`);
  const responses = await Promise.all(
    ids.map((id, i) =>
      raw(`${gw.url}/${route}/v1/chat/completions`, {
        headers: { "x-tenant": tenant, "x-test-id": id, "x-mock-token-delay-ms": "5", ...extraHeaders },
        body: JSON.stringify({
          model: "gpt-4o-mini",
          stream: true,
          max_tokens: 20 + (i % 13),
          messages: [{ role: "user", content: `Question number ${i}: ${"why ".repeat(i % 7)}?` }],
        }),
      }),
    ),
  );
  const statuses = responses.map((r) => r.status);
  // Every admitted request has been settled once the probe logged it.
  await waitFor("every request's log entry", () => {
    const seen = new Set(probeEntries(gw).map((e) => e.request_id));
    return ids.every((id) => seen.has(id)) ? true : undefined;
  }, 15_000);
  const records = (await llm.requests()).filter((r) => r.headers["x-tenant"] === tenant);
  return { tenant, statuses, records, ids };
}

function usageSum(records: MockRequestRecord[]): number {
  return records.reduce((sum, r) => sum + (r.usage?.total_tokens ?? 0), 0);
}

async function remainingDay(route: string, tenant: string): Promise<number> {
  // A request that the upstream refuses (fail_status 400) costs nothing and still reports the budget.
  const res = await raw(`${gw.url}/${route}/v1/chat/completions`, {
    headers: { "x-tenant": tenant, "x-mock-fail-status": "400" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }),
  });
  return Number(res.headers["x-ratelimit-remaining-tokens-day"]);
}

describe("token-rate-limiting under 64 concurrent streams", () => {
  it("local policy: the counter is exactly the sum of the reported usages", async () => {
    const b = await burst("local");
    expect(b.statuses.every((s) => s === 200)).toBe(true);
    expect(b.records.length).toBe(STREAMS);
    expect(b.records.every((r) => r.outcome === "completed")).toBe(true);
    const entries = probeEntries(gw).filter((e) => b.ids.includes(e.request_id ?? ""));
    expect(entries.every((e) => e.token_rate_limiting?.estimated === false && e.token_rate_limiting?.injected === true)).toBe(true);
    const expected = usageSum(b.records);
    expect(expected).toBeGreaterThan(STREAMS * 20);
    expect(BIG - (await remainingDay("local", b.tenant))).toBe(expected);
  });

  it("redis policy: the counter in Redis is exactly the sum of the reported usages", async () => {
    const b = await burst("redis");
    expect(b.statuses.every((s) => s === 200)).toBe(true);
    const expected = usageSum(b.records);
    // Settlement runs in a timer after the log phase: wait for the last one to land.
    const pattern = `token_rate_limiting:*header%3A${b.tenant}*`;
    await waitFor("Redis to hold every settled count", () => (redisSum(redis, pattern) === expected ? true : undefined), 5000);
    expect(redisSum(redis, pattern)).toBe(expected);
    expect(BIG - (await remainingDay("redis", b.tenant))).toBe(expected);
  });
});

describe("token-rate-limiting reserve_max_tokens under 64 concurrent streams", () => {
  // The upstream's chat template adds 30 prompt tokens that no estimate of the request can see:
  // every stream reports about 40 prompt tokens where the documented estimate says about 10.
  const TEMPLATE = { "x-mock-template-tokens": "30" };

  it("without reservation every stream is admitted and the limit is overshot many times over", async () => {
    const b = await burst("local-noreserve", TEMPLATE);
    expect(b.statuses.filter((s) => s === 200).length).toBe(STREAMS);
    expect(usageSum(b.records)).toBeGreaterThan(2 * RESERVE_LIMIT);
  });

  for (const route of ["local-reserve", "redis-reserve"]) {
    it(`${route}: reservations are upper bounds, so the overshoot stays under one response even when the estimate is low`, async () => {
      const b = await burst(route, TEMPLATE);
      const admitted = b.statuses.filter((s) => s === 200).length;
      const refused = b.statuses.filter((s) => s === 429).length;
      expect(admitted + refused).toBe(STREAMS);
      expect(refused).toBeGreaterThan(0);
      expect(b.records.length).toBe(admitted);
      const entries = probeEntries(gw).filter((e) => b.ids.includes(e.request_id ?? "") && e.status === 200);
      expect(entries.length).toBe(admitted);
      // The documented bound: body bytes + reserve_prompt_overhead + max_tokens is never below what
      // the upstream reports, though its prompt is four times the estimate.
      for (const e of entries) expect(e.token_rate_limiting!.reserved).toBeGreaterThanOrEqual(e.token_rate_limiting!.cost);
      const reported = b.records.map((r) => r.usage!.total_tokens);
      expect(Math.min(...reported)).toBeGreaterThan(35);
      // Every admitted request found a token left with every earlier one counted at least at its real
      // cost: what was spent exceeds the limit by less than one response.
      const spent = usageSum(b.records);
      expect(spent).toBeLessThanOrEqual(RESERVE_LIMIT - 1 + Math.max(...reported));
      // Not absurdly cautious: admissions stop only once the reservations fill the limit.
      const largestReservation = Math.max(...entries.map((e) => e.token_rate_limiting!.reserved));
      expect(admitted).toBeGreaterThanOrEqual(Math.floor(RESERVE_LIMIT / largestReservation));
      // And the counter holds exactly what was spent (reservations reconciled).
      if (route.startsWith("redis")) {
        const pattern = `token_rate_limiting:*header%3A${b.tenant}*`;
        await waitFor("the reconciled Redis counter", () => (redisSum(redis, pattern) === spent ? true : undefined), 5000);
      }
      expect(entries.reduce((sum, e) => sum + (e.token_rate_limiting?.cost ?? 0), 0)).toBe(spent);
    });
  }
});
