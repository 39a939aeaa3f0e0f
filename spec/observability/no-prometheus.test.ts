// Without Kong's prometheus plugin the shared metrics module registers nothing and records nothing,
// and the plugins that call it work as before: no error, not even get_prometheus()'s "plugin is not
// initialized" line. The analytics still reach the log serializer (file-log, http-log).
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm } from "../helpers/mock-llm.ts";
import { KEYS, PROBE_LUA, gatewayYaml } from "./workload.ts";

let llm: MockLlm;
let gw: Gateway;

beforeAll(async () => {
  llm = await startMockLlm({ inProcess: true });
  gw = await startGateway({ yaml: gatewayYaml(llm.url, false), luaPath: [PROBE_LUA], statusPort: true });
});

afterAll(async () => {
  await gw?.stop();
  await llm?.stop();
});

async function chat(path: string): Promise<number> {
  const res = await fetch(`${gw.url}${path}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: KEYS.alice },
    body: JSON.stringify({ model: "mock-a", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }),
  });
  await res.text();
  return res.status;
}

async function waitForLog(pattern: RegExp, count: number): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const log = gw.errorLog();
    if ((log.match(new RegExp(pattern.source, "g")) ?? []).length >= count || Date.now() > deadline) return log;
    await new Promise((r) => setTimeout(r, 50));
  }
}

it("proxies, refuses and guards as before, records nothing, logs no error", async () => {
  expect(await chat("/metered")).toBe(200);
  expect(await chat("/refused")).toBe(429);
  expect(await chat("/guarded")).toBe(400);
  const log = await waitForLog(/\[ai-metrics-probe\] ai-metrics-probe recorded/, 3);
  // tokens not counted (no registry), analytics written all the same
  expect(log).toContain("ai-metrics-probe recorded tokens=false analytics=true");
  expect(log).not.toMatch(/\[(error|crit|alert|emerg)\]/);
  expect(log).not.toContain("prometheus: plugin is not initialized");
});

it("has no /metrics on the status listener (Kong mounts it with the plugin)", async () => {
  const res = await fetch(`${gw.statusUrl}/metrics`);
  expect(res.status).toBe(404);
  expect(await res.json()).toEqual({ message: "Not found" });
});
