// token-rate-limiting's enforcement through the local gateway: 429 and headers at the exact
// boundary, per-model limits, per-consumer budgets behind key-auth, hidden headers, the error
// body in the client's format, and reserve-then-reconcile.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm } from "../helpers/mock-llm.ts";
import { probeEntry, raw, secondsToHourEnd, sleep, uniqueId, type RawResponse, startLlmGateway, tenantLimiter } from "./helpers.ts";

let llm: MockLlm;
let gw: Gateway;

const per = tenantLimiter;

beforeAll(async () => {
  llm = await startMockLlm();
  gw = await startLlmGateway(
    llm.url,
    {
      // Every request asks for max_tokens 10 and the mock's texts are longer: each costs exactly 10.
      exact30: [per({ hour: 30, tokens_count: "completion" })],
      exact31: [per({ hour: 31, tokens_count: "completion" })],
      twowin: [per({ hour: 25, day: 1000, tokens_count: "completion" })],
      models: [per({ day: 1000, tokens_count: "completion", model_limits: [{ model: "gpt-4o", hour: 10 }] })],
      hidden: [per({ hour: 10, tokens_count: "completion", hide_client_headers: true })],
      custom: [per({ hour: 10, tokens_count: "completion", error_code: 403, error_message: "Your team spent its tokens" })],
      reserve: [per({ hour: 10000, reserve_max_tokens: true, reserve_tokens_cap: 500 }), { name: "trl-exit-probe" }],
      consumers: [{ name: "key-auth" }, { name: "token-rate-limiting", config: { hour: 20, tokens_count: "completion" } }],
    },
    {
      consumers: [
        { username: "alice", keyauth_credentials: [{ key: "alice-key" }] },
        { username: "bob", keyauth_credentials: [{ key: "bob-key" }] },
      ],
    },
  );
});

afterAll(async () => {
  await gw?.stop();
  await llm?.stop();
});

const MESSAGES = [{ role: "user", content: "Count to ten." }];

interface Sent {
  res: RawResponse;
  id: string;
}

async function send(route: string, tenant: string, body: object = { model: "gpt-4o-mini", max_tokens: 10, messages: MESSAGES }, headers: Record<string, string> = {}, path = "/v1/chat/completions"): Promise<Sent> {
  const id = uniqueId("req");
  const res = await raw(`${gw.url}/${route}${path}`, { headers: { "x-tenant": tenant, "x-test-id": id, ...headers }, body: JSON.stringify(body) });
  if (res.status === 200) await probeEntry(gw, id); // settled before the next request reads the counter
  return { res, id };
}

function expectReset(value: string | string[] | undefined, secondsLeft: number): void {
  // The response may be a second later than the measurement: the window end is the same.
  const n = Number(value);
  expect(n).toBeGreaterThanOrEqual(secondsLeft - 3);
  expect(n).toBeLessThanOrEqual(secondsLeft);
}

describe("token-rate-limiting enforcement", () => {
  it("admits while tokens remain and answers 429 at exactly the limit, with the headers", async () => {
    const left = await secondsToHourEnd();
    const tenant = uniqueId("exact");
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { res } = await send("exact30", tenant);
      expect(res.status).toBe(200);
      expect(res.headers["x-ratelimit-limit-tokens-hour"]).toBe("30");
      seen.push(res.headers["x-ratelimit-remaining-tokens-hour"] as string);
      expect(res.headers["ratelimit-limit"]).toBe("30");
      expect(res.headers["ratelimit-remaining"]).toBe(seen[i]);
      expectReset(res.headers["ratelimit-reset"], left);
      expect(res.headers["retry-after"]).toBeUndefined();
    }
    expect(seen).toEqual(["30", "20", "10"]);

    const before = (await llm.requests()).length;
    const { res } = await send("exact30", tenant);
    expect(res.status).toBe(429);
    expect(JSON.parse(res.text)).toEqual({ error: { message: "Token rate limit exceeded", type: "tokens", param: null, code: "rate_limit_exceeded" } });
    expect(res.headers["content-type"]).toMatch(/application\/json/);
    expect(res.headers["x-ratelimit-limit-tokens-hour"]).toBe("30");
    expect(res.headers["x-ratelimit-remaining-tokens-hour"]).toBe("0");
    expect(res.headers["ratelimit-remaining"]).toBe("0");
    expectReset(res.headers["retry-after"], left);
    expect(res.headers["ratelimit-reset"]).toBe(res.headers["retry-after"]);
    // Refused before the upstream was called.
    expect((await llm.requests()).length).toBe(before);
  });

  it("admits the request that finds exactly one token left", async () => {
    await secondsToHourEnd();
    const tenant = uniqueId("exact31");
    const statuses: number[] = [];
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { res } = await send("exact31", tenant);
      statuses.push(res.status);
      remaining.push(res.headers["x-ratelimit-remaining-tokens-hour"] as string);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    expect(remaining).toEqual(["31", "21", "11", "1", "0"]);
  });

  it("reports the most restrictive of several windows in RateLimit-*", async () => {
    await secondsToHourEnd();
    const tenant = uniqueId("two");
    const first = (await send("twowin", tenant)).res;
    expect(first.headers["x-ratelimit-remaining-tokens-hour"]).toBe("25");
    expect(first.headers["x-ratelimit-remaining-tokens-day"]).toBe("1000");
    expect(first.headers["ratelimit-limit"]).toBe("25");
    await send("twowin", tenant);
    const third = (await send("twowin", tenant)).res;
    expect(third.headers["x-ratelimit-remaining-tokens-hour"]).toBe("5");
    expect(third.headers["x-ratelimit-remaining-tokens-day"]).toBe("980");
    expect(third.headers["ratelimit-remaining"]).toBe("5");
    const fourth = (await send("twowin", tenant)).res;
    expect(fourth.status).toBe(429);
    expect(fourth.headers["x-ratelimit-remaining-tokens-day"]).toBe("970");
  });

  it("applies a model's own limit on top of the plugin-wide one", async () => {
    await secondsToHourEnd();
    const tenant = uniqueId("model");
    const big = { model: "gpt-4o", max_tokens: 10, messages: MESSAGES };
    const first = (await send("models", tenant, big)).res;
    expect(first.status).toBe(200);
    expect(first.headers["x-ratelimit-limit-tokens-hour"]).toBe("10");
    expect(first.headers["x-ratelimit-limit-tokens-day"]).toBe("1000");
    const second = (await send("models", tenant, big)).res;
    expect(second.status).toBe(429);
    // Another model is only held to the plugin-wide day limit, which counted gpt-4o's tokens too.
    const other = (await send("models", tenant)).res;
    expect(other.status).toBe(200);
    expect(other.headers["x-ratelimit-limit-tokens-hour"]).toBeUndefined();
    expect(other.headers["x-ratelimit-remaining-tokens-day"]).toBe("990");
  });

  it("hides every rate limit header when asked to, also on 429", async () => {
    const tenant = uniqueId("hidden");
    const ok = (await send("hidden", tenant)).res;
    expect(ok.status).toBe(200);
    const refused = (await send("hidden", tenant)).res;
    expect(refused.status).toBe(429);
    for (const res of [ok, refused]) {
      for (const name of Object.keys(res.headers)) expect(name).not.toMatch(/ratelimit|retry-after/i);
    }
  });

  it("uses the configured status and message, in the client's error format", async () => {
    const tenant = uniqueId("custom");
    await send("custom", tenant);
    const openai = (await send("custom", tenant)).res;
    expect(openai.status).toBe(403);
    expect(JSON.parse(openai.text).error.message).toBe("Your team spent its tokens");
    const anthropic = (
      await send("custom", tenant, { model: "claude-3-5-haiku-latest", max_tokens: 10, messages: MESSAGES }, { "anthropic-version": "2023-06-01" }, "/v1/messages")
    ).res;
    expect(anthropic.status).toBe(403);
    expect(JSON.parse(anthropic.text)).toEqual({ type: "error", error: { type: "permission_error", message: "Your team spent its tokens" } });
  });

  it("answers 429 in Anthropic's format on /v1/messages", async () => {
    const tenant = uniqueId("anthropic");
    const body = { model: "claude-3-5-haiku-latest", max_tokens: 10, messages: MESSAGES };
    const headers = { "anthropic-version": "2023-06-01" };
    for (let i = 0; i < 3; i++) expect((await send("exact30", tenant, body, headers, "/v1/messages")).res.status).toBe(200);
    const res = (await send("exact30", tenant, body, headers, "/v1/messages")).res;
    expect(res.status).toBe(429);
    expect(JSON.parse(res.text)).toEqual({ type: "error", error: { type: "rate_limit_error", message: "Token rate limit exceeded" } });
  });

  it("gives every consumer its own budget behind key-auth", async () => {
    const body = { model: "gpt-4o-mini", max_tokens: 10, messages: MESSAGES };
    const tenant = uniqueId("ignored");
    expect((await send("consumers", tenant, body, { apikey: "alice-key" })).res.status).toBe(200);
    expect((await send("consumers", tenant, body, { apikey: "alice-key" })).res.status).toBe(200);
    const refused = (await send("consumers", tenant, body, { apikey: "alice-key" })).res;
    expect(refused.status).toBe(429);
    const bob = (await send("consumers", tenant, body, { apikey: "bob-key" })).res;
    expect(bob.status).toBe(200);
    expect(bob.headers["x-ratelimit-remaining-tokens-hour"]).toBe("20");
    // key-auth refuses first: no consumer, no token accounting.
    expect((await send("consumers", tenant, body, {})).res.status).toBe(401);
  });
});

describe("token-rate-limiting reserve_max_tokens", () => {
  it("reserves the worst case while a stream runs and settles the real count after", async () => {
    await secondsToHourEnd(40);
    const tenant = uniqueId("reserve");
    const id = uniqueId("slow");
    // A slow stream with max_tokens 100 and a short answer: it reserves its prompt estimate + 100
    // for as long as it runs, and really costs much less.
    const slow = raw(`${gw.url}/reserve/v1/chat/completions`, {
      headers: { "x-tenant": tenant, "x-test-id": id, "x-mock-ttft-ms": "800", "x-mock-text": "A short answer." },
      body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 100, stream: true, messages: MESSAGES }),
    });
    await sleep(300);
    const during = await send("reserve", tenant, { model: "gpt-4o-mini", max_tokens: 1, messages: MESSAGES });
    const slowRes = await slow;
    expect(slowRes.status).toBe(200);
    const slowLog = (await probeEntry(gw, id)).token_rate_limiting!;
    const duringLog = (await probeEntry(gw, during.id)).token_rate_limiting!;
    expect(slowLog.reserved).toBeGreaterThan(100);
    expect(slowLog.cost).toBeLessThan(slowLog.reserved - 50);
    // While the slow stream ran, its reservation was already spent.
    expect(Number(during.res.headers["x-ratelimit-remaining-tokens-hour"])).toBe(10000 - slowLog.reserved - duringLog.reserved);
    // Afterwards only real counts remain.
    const after = await send("reserve", tenant, { model: "gpt-4o-mini", max_tokens: 1, messages: MESSAGES });
    const afterLog = (await probeEntry(gw, after.id)).token_rate_limiting!;
    expect(slowLog.estimated).toBe(false);
    // Its headers show the budget after its own reservation.
    expect(Number(after.res.headers["x-ratelimit-remaining-tokens-hour"])).toBe(10000 - slowLog.cost - duringLog.cost - afterLog.reserved);
  });

  it("releases the reservation of a request that a later plugin refuses", async () => {
    await secondsToHourEnd();
    const tenant = uniqueId("refused");
    const small = { model: "gpt-4o-mini", max_tokens: 1, messages: MESSAGES };
    const refused = await send("reserve", tenant, { model: "gpt-4o-mini", max_tokens: 400, messages: MESSAGES }, { "x-refuse": "1" });
    expect(refused.res.status).toBe(403);
    const refusedLog = (await probeEntry(gw, refused.id)).token_rate_limiting!;
    expect(refusedLog).toMatchObject({ cost: 0, source: "not_proxied" });
    expect(refusedLog.reserved).toBeGreaterThan(400);
    const next = await send("reserve", tenant, small);
    const nextLog = (await probeEntry(gw, next.id)).token_rate_limiting!;
    expect(Number(next.res.headers["x-ratelimit-remaining-tokens-hour"])).toBe(10000 - nextLog.reserved);
  });
});
