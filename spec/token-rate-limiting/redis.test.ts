// token-rate-limiting with the redis policy when Redis dies under load and comes back:
// fault_tolerant lets traffic through and logs once per interval; without it clients get a
// clear 503; counting resumes exactly once Redis is back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm } from "../helpers/mock-llm.ts";
import { probeEntry, raw, redisSum, sleep, startRedis, uniqueId, waitFor, type RawResponse, type Redis, startLlmGateway, tenantLimiter } from "./helpers.ts";

let llm: MockLlm;
let redis: Redis;
let gw: Gateway;
const DAY = 1_000_000_000;

beforeAll(async () => {
  llm = await startMockLlm();
  redis = await startRedis();
  const per = (extra: object) =>
    tenantLimiter({ day: DAY, policy: "redis", redis: { host: "127.0.0.1", port: redis.port, timeout: 500 }, ...extra });
  gw = await startLlmGateway(llm.url, {
    tolerant: [per({})],
    strict: [per({ fault_tolerant: false })],
  });
});

afterAll(async () => {
  await gw?.stop();
  await redis?.stop();
  await llm?.stop();
});

function chat(route: string, tenant: string, id = uniqueId("req"), path = "/v1/chat/completions", headers: Record<string, string> = {}): Promise<RawResponse> {
  const anthropic = path === "/v1/messages";
  return raw(`${gw.url}/${route}${path}`, {
    headers: { "x-tenant": tenant, "x-test-id": id, "x-mock-token-delay-ms": "2", ...(anthropic ? { "anthropic-version": "2023-06-01" } : {}), ...headers },
    body: JSON.stringify({ model: anthropic ? "claude-3-5-haiku-latest" : "gpt-4o-mini", max_tokens: 16, stream: true, messages: [{ role: "user", content: `Hello ${id}` }] }),
  });
}

/** Every store failure line, reading, reserving or settling. */
const STORE_FAILURE = /token counters unavailable \(policy redis\)|could not be settled/;

describe("token-rate-limiting when Redis fails", () => {
  it("fault_tolerant: serves traffic while Redis is down, logs once, and counts exactly again after it is back", async () => {
    const tenant = uniqueId("tolerant");
    const pattern = `token_rate_limiting:*header%3A${tenant}*`;
    const logBefore = gw.errorLog();

    // Load before the failure: counted.
    const before = await Promise.all(Array.from({ length: 8 }, () => chat("tolerant", tenant)));
    expect(before.every((r) => r.status === 200 && r.headers["x-ratelimit-remaining-tokens-day"] !== undefined)).toBe(true);
    const recordsBefore = (await llm.requests()).filter((r) => r.headers["x-tenant"] === tenant);
    const spentBefore = recordsBefore.reduce((s, r) => s + r.usage!.total_tokens, 0);
    await waitFor("the first counts in Redis", () => (redisSum(redis, pattern) === spentBefore ? true : undefined));

    // Redis dies while streams are running (the finally brings it back whatever happens).
    try {
      const outageIds = Array.from({ length: 18 }, () => uniqueId("outage"));
      const during = outageIds.slice(0, 8).map((id) => chat("tolerant", tenant, id, "/v1/chat/completions", { "x-mock-token-delay-ms": "30" }));
      await sleep(100);
      await redis.stop();
      const whileDown: RawResponse[] = [];
      for (const id of outageIds.slice(8)) whileDown.push(await chat("tolerant", tenant, id));
      const duringRes = await Promise.all(during);
      expect(duringRes.every((r) => r.status === 200)).toBe(true);
      expect(whileDown.every((r) => r.status === 200)).toBe(true);
      // Requests that could not be checked carry no budget headers (as Kong's rate-limiting).
      expect(whileDown.every((r) => r.headers["x-ratelimit-remaining-tokens-day"] === undefined)).toBe(true);
      const newLog = () => gw.errorLog().slice(logBefore.length);
      const failureLines = () => newLog().split("\n").filter((l) => STORE_FAILURE.test(l));
      await waitFor("the store failure to be logged", () => (failureLines().length > 0 ? true : undefined));
      // Let the outage's settlements (timers) fail too before counting lines.
      await Promise.all(outageIds.map((id) => probeEntry(gw, id)));
      await sleep(300);
      // Ten failed checks and eighteen failed settlements, one line: a store outage is logged at most
      // once per interval and worker, whatever fails, with the plugin's prefix.
      expect(failureLines()).toHaveLength(1);
      expect(failureLines()[0]).toContain("[token-rate-limiting]");
      // The log names the failure but never a secret or the prompt.
      expect(newLog()).not.toContain("Hello ");

      // Every request of the outage has finished its log phase (its settlement failed): a request
      // still running when Redis returns would be counted then, which is right, but not this test.
      const outageLogs = await Promise.all(outageIds.map((id) => probeEntry(gw, id)));
      await sleep(200);
      // Unchecked requests are marked, without windows, and their usage is still read.
      for (const e of outageLogs.slice(8)) {
        expect(e.token_rate_limiting).toMatchObject({ store_error: true, limited: false, estimated: false });
        expect(e.token_rate_limiting!.windows).toBeUndefined();
        expect(e.token_rate_limiting!.cost).toBeGreaterThan(0);
      }
    } finally {
      // Redis is back (empty: no persistence); counting resumes exactly.
      await redis.start();
    }
    const afterIds = Array.from({ length: 6 }, () => uniqueId("after"));
    const after = await Promise.all(afterIds.map((id) => chat("tolerant", tenant, id)));
    expect(after.every((r) => r.status === 200 && r.headers["x-ratelimit-remaining-tokens-day"] !== undefined)).toBe(true);
    const afterLogs = await Promise.all(afterIds.map((id) => probeEntry(gw, id)));
    const spentAfter = afterLogs.reduce((s, e) => s + e.token_rate_limiting!.cost, 0);
    expect(afterLogs.every((e) => e.token_rate_limiting!.estimated === false && e.token_rate_limiting!.store_error === false)).toBe(true);
    const records = (await llm.requests()).filter((r) => afterIds.includes(r.headers["x-test-id"] as string));
    expect(spentAfter).toBe(records.reduce((s, r) => s + r.usage!.total_tokens, 0));
    await waitFor("Redis to hold exactly the counts since it came back", () => (redisSum(redis, pattern) === spentAfter ? true : undefined));
  });

  it("a settlement that fails in its timer is logged once, with the plugin's prefix", async () => {
    // A gateway of its own: its worker has logged no failure in this interval yet.
    const fresh = await startLlmGateway(llm.url, {
      settling: [tenantLimiter({ day: DAY, policy: "redis", redis: { host: "127.0.0.1", port: redis.port, timeout: 500 } })],
    });
    try {
      const tenant = uniqueId("settling");
      const logBefore = fresh.errorLog().length;
      // Admitted while Redis is up; Redis goes away before the streams end and settle.
      const streams = Array.from({ length: 4 }, () =>
        raw(`${fresh.url}/settling/v1/chat/completions`, {
          headers: { "x-tenant": tenant, "x-mock-token-delay-ms": "40" },
          body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 16, stream: true, messages: [{ role: "user", content: "Hello" }] }),
        }),
      );
      await sleep(150);
      await redis.stop();
      expect((await Promise.all(streams)).every((r) => r.status === 200)).toBe(true);
      const lines = () => fresh.errorLog().slice(logBefore).split("\n").filter((l) => STORE_FAILURE.test(l));
      await waitFor("the settlement failure to be logged", () => (lines().length > 0 ? true : undefined));
      await sleep(300);
      expect(lines()).toHaveLength(1);
      expect(lines()[0]).toContain("token counts could not be settled in Redis");
      expect(lines()[0]).toContain("[token-rate-limiting]");
    } finally {
      await redis.start();
      await fresh.stop();
    }
  });

  it("not fault_tolerant: refuses with a clear 503 in the client's format while Redis is down", async () => {
    const tenant = uniqueId("strict");
    expect((await chat("strict", tenant)).status).toBe(200);
    await redis.stop();
    try {
      const before = (await llm.requests()).length;
      const openai = await chat("strict", tenant);
      expect(openai.status).toBe(503);
      expect(JSON.parse(openai.text)).toEqual({ error: { message: "Token rate limiting is temporarily unavailable", type: "server_error", param: null, code: null } });
      const anthropic = await chat("strict", tenant, uniqueId("req"), "/v1/messages");
      expect(anthropic.status).toBe(503);
      expect(JSON.parse(anthropic.text)).toEqual({ type: "error", error: { type: "overloaded_error", message: "Token rate limiting is temporarily unavailable" } });
      expect((await llm.requests()).length).toBe(before);
    } finally {
      await redis.start();
    }
    expect((await chat("strict", tenant)).status).toBe(200);
  });
});
