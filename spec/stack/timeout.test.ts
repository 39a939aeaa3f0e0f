// The seeds' timeout script as a test: through the gateway, an upstream that answers
// within the service's read_timeout gives 200; one that is silent for longer gives Kong's 504 when no
// header has been sent yet, and a stream that stalls after its headers is cut. Uses kong.yml's
// mock-llm-short-timeout service (read_timeout 2 s, no retries), locally or in Kong (KONG_PROXY_URL).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { declaredServices, readKongYml } from "./kong-config.ts";
import { disconnectRecords, startStackTarget, waitForMockRecord, type StackTarget } from "./target.ts";

const service = declaredServices(readKongYml()).find((s) => s.name === "mock-llm-short-timeout");
const READ_TIMEOUT = service?.read_timeout ?? NaN;
const PATH = "/short-timeout/v1/chat/completions";

let target: StackTarget;

beforeAll(async () => {
  expect(READ_TIMEOUT, "kong/kong.yml's mock-llm-short-timeout service sets read_timeout").toBeGreaterThan(0);
  target = await startStackTarget();
  console.log(`[stack] timeouts (read_timeout ${READ_TIMEOUT} ms) against ${target.mode === "kong" ? `Kong at ${target.proxyUrl}` : "the local gateway (kong/kong.yml)"}`);
});

afterAll(async () => {
  await target?.stop();
});

function chat(id: string, stream: boolean, mockHeaders: Record<string, string>): Promise<Response> {
  return fetch(`${target.proxyUrl}${PATH}`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: target.keys.llm, "x-e2e-id": id, ...mockHeaders },
    body: JSON.stringify({ model: "mock", stream, max_tokens: 8, messages: [{ role: "user", content: "Say something short." }] }),
  });
}

/** Kong's own error body for an upstream timeout (kong/tools/http.lua BODIES.s504). */
async function expectKong504(res: Response): Promise<void> {
  expect(res.status).toBe(504);
  const body = (await res.json()) as { message?: unknown };
  expect(body.message).toBe("The upstream server is timing out");
}

interface StreamRead {
  text: string;
  ended: "done" | "error";
  lastDataAt: number;
  endedAt: number;
}

async function readStream(res: Response): Promise<StreamRead> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let lastDataAt = Date.now();
  for (;;) {
    try {
      const { value, done } = await reader.read();
      if (done) return { text, ended: "done", lastDataAt, endedAt: Date.now() };
      text += decoder.decode(value, { stream: true });
      lastDataAt = Date.now();
    } catch {
      return { text, ended: "error", lastDataAt, endedAt: Date.now() };
    }
  }
}

describe("upstream timeouts through the gateway (kong/kong.yml, mock-llm-short-timeout)", () => {
  it("non-streaming: an answer after a short delay comes back 200", async () => {
    const res = await chat(randomUUID(), false, { "x-mock-ttft-ms": String(Math.round(READ_TIMEOUT / 4)) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices?: unknown[] };
    expect(body.choices?.length).toBe(1);
  });

  it("non-streaming: an upstream silent past read_timeout gives Kong's 504 after one read_timeout", async () => {
    const id = randomUUID();
    const started = Date.now();
    const res = await chat(id, false, { "x-mock-ttft-ms": String(READ_TIMEOUT * 2) });
    const elapsed = Date.now() - started;
    await expectKong504(res);
    expect(elapsed).toBeGreaterThanOrEqual(READ_TIMEOUT - 200);
    expect(elapsed).toBeLessThan(READ_TIMEOUT * 2 - 100);
    // The gateway gave up on the upstream connection, which the mock saw as a disconnect.
    const rec = await waitForMockRecord(target.mockUrl, id, () => true, READ_TIMEOUT * 3);
    expect(rec.outcome).toBe("client_disconnected");
  });

  it("streaming: a stream that starts after a short delay arrives whole", async () => {
    const res = await chat(randomUUID(), true, { "x-mock-ttft-ms": String(Math.round(READ_TIMEOUT / 4)) });
    expect(res.status).toBe(200);
    const read = await readStream(res);
    expect(read.ended).toBe("done");
    expect(read.text).toContain("data: [DONE]");
  });

  it("streaming: no headers within read_timeout gives Kong's 504", async () => {
    const started = Date.now();
    const res = await chat(randomUUID(), true, { "x-mock-header-delay-ms": String(READ_TIMEOUT * 2) });
    const elapsed = Date.now() - started;
    await expectKong504(res);
    expect(elapsed).toBeLessThan(READ_TIMEOUT * 2 - 100);
  });

  it("streaming: a stall after the headers is cut one read_timeout after the last byte, without [DONE]", async () => {
    const id = randomUUID();
    const res = await chat(id, true, { "x-mock-stall-after-tokens": "2" });
    expect(res.status).toBe(200);
    const read = await readStream(res);
    const silence = read.endedAt - read.lastDataAt;
    console.log(`[stack] stalled stream ended by ${read.ended} after ${silence} ms of silence`);
    expect(read.text).toMatch(/^data: /m);
    expect(read.text).not.toContain("[DONE]");
    expect(silence).toBeGreaterThanOrEqual(READ_TIMEOUT - 200);
    expect(silence).toBeLessThan(READ_TIMEOUT * 3);
    const rec = await waitForMockRecord(target.mockUrl, id, () => true, READ_TIMEOUT * 3);
    expect(rec.outcome).toBe("client_disconnected");
    expect(rec.tokens_sent).toBe(2);
  });

  it("leaves an upstream_timeout record from upstream-disconnect-log for each timeout above", async (ctx) => {
    if (target.mode === "kong") {
      console.log("[stack] against Kong the error log is in `docker compose logs kong`, where tools/e2e.sh prints the [upstream-disconnect] records");
      return ctx.skip();
    }
    const timeouts = () => disconnectRecords(target.errorLog() ?? "").filter((r) => r.outcome === "upstream_timeout");
    const deadline = Date.now() + 5000;
    while (timeouts().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const records = timeouts();
    expect(records.length, target.errorLog()).toBe(3);
    for (const r of records) expect((r.route as { name?: string } | undefined)?.name).toBe("mock-llm-short-timeout");
  });
});
