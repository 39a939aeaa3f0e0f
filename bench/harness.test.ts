// The benchmark's arithmetic and parsing, without starting anything.
import { describe, expect, it } from "vitest";
import { gatewayConfig, CONFIGS } from "./lib/configs.ts";
import { luaNginxModuleVersion } from "./lib/machine.ts";
import { BLOCKED_PROMPT, PROMPT_GUARD_PATTERNS, chatRequest, countSseEvents, promptText, sseStream } from "./lib/payloads.ts";
import { parseReaderOutput } from "./lib/sse-reader.ts";
import { evaluateTargets, median, summarise, type Round } from "./lib/stats.ts";
import { errorLogProblems } from "./lib/verify.ts";
import { parseWrkOutput, wrkErrorCount, type WrkResult } from "./lib/wrk.ts";

function wrk(rps: number, p50us: number, p99us: number, statusErrors = 0): WrkResult {
  return {
    requests: rps * 5,
    duration_s: 5,
    bytes: 0,
    rps,
    latency_us: { p50: p50us, p90: p50us, p99: p99us, mean: p50us, max: p99us },
    errors: { connect: 0, read: 0, write: 0, status: statusErrors, timeout: 0 },
  };
}

describe("median", () => {
  it("takes the middle value, or the mean of the two middle ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe("summarise", () => {
  // the machine slows down in round 2: ratios within a round stay the same
  const rounds: Round[] = [
    { bare: wrk(1000, 1000, 4000), gateway: wrk(800, 1250, 5000), all3: wrk(720, 1400, 6000) },
    { bare: wrk(500, 2000, 8000), gateway: wrk(400, 2500, 10000), all3: wrk(360, 2800, 12000) },
    { bare: wrk(900, 1100, 4400), gateway: wrk(720, 1375, 5500), all3: wrk(648, 1540, 6600) },
  ];

  it("reports ratios computed within each round, then their median", () => {
    const s = summarise(rounds, "all3");
    expect(s.rounds).toBe(3);
    expect(s.vs_gateway!.rps).toBeCloseTo(0.9, 10);
    expect(s.vs_bare!.rps).toBeCloseTo(0.72, 10);
    expect(s.vs_bare!.rps_min).toBeCloseTo(0.72, 10);
    expect(s.vs_bare!.rps_max).toBeCloseTo(0.72, 10);
    expect(s.vs_bare!.p50).toBeCloseTo(1.4, 10);
    expect(s.rps).toBe(648);
    expect(s.p50_ms).toBeCloseTo(1.54, 10);
    // p50 differences to the gateway: 0.15, 0.3, 0.165 ms
    expect(s.added_p50_ms_vs_gateway).toBeCloseTo(0.165, 10);
  });

  it("has no ratio for the floor and none to itself for the gateway", () => {
    expect(summarise(rounds, "bare").vs_bare).toBeNull();
    const g = summarise(rounds, "gateway");
    expect(g.vs_gateway).toBeNull();
    expect(g.vs_bare!.rps).toBeCloseTo(0.8, 10);
  });

  it("skips rounds where a configuration is missing", () => {
    const partial: Round[] = [{ bare: wrk(1000, 1000, 4000), all3: wrk(500, 2000, 8000) }, { bare: wrk(1000, 1000, 4000) }];
    const s = summarise(partial, "all3");
    expect(s.rounds).toBe(1);
    expect(s.vs_bare!.rps).toBe(0.5);
    expect(s.vs_gateway).toBeNull();
  });
});

describe("evaluateTargets", () => {
  it("says met, not met, or not measured, never guesses", () => {
    const t = evaluateTargets({ jsonRpsAllVsGateway: 0.89, sseAddedP50Ms: 0.4, sseEvents: 1000, luaKbPerStream: null, sseReaderMbps16k: 200 });
    expect(t.map((x) => x.status)).toEqual(["not met", "met", "not measured", "met"]);
    expect(t[0].measured).toBe("89.0%");
    const edge = evaluateTargets({ jsonRpsAllVsGateway: 0.9, sseAddedP50Ms: 1, sseEvents: 1000, luaKbPerStream: 64, sseReaderMbps16k: NaN });
    expect(edge.map((x) => x.status)).toEqual(["met", "not met", "not met", "not measured"]);
  });
});

describe("wrk output", () => {
  it("takes the BENCH_JSON line of report.lua and counts every kind of error", () => {
    const stdout =
      "Running 1s test @ http://127.0.0.1:1/json\n  1 threads and 8 connections\n" +
      'BENCH_JSON {"requests":10,"duration_s":1.0,"bytes":100,"rps":10.0,"latency_us":{"p50":1,"p90":2,"p99":3,"mean":1.5,"max":4},' +
      '"errors":{"connect":1,"read":2,"write":0,"status":3,"timeout":4}}\n';
    const r = parseWrkOutput(stdout);
    expect(r.latency_us.p99).toBe(3);
    expect(wrkErrorCount(r)).toBe(10);
    expect(() => parseWrkOutput("no json here")).toThrow(/BENCH_JSON/);
  });
});

describe("SSE reader output", () => {
  it("reads the JSON of the last line, and calls anything else a failure", () => {
    const ok = parseReaderOutput('SSE usage reader ...\n   16384-byte chunks: 500 MB/s\n{"bench":"sse-reader","mb_per_s":{"16384":500.5,"64":300,"1":12},"bytes":1048576}\n');
    expect(ok.status).toBe("ok");
    expect(ok.mb_per_s!["16384"]).toBe(500.5);
    expect(parseReaderOutput("WRONG RESULT").status).toBe("failed");
    expect(parseReaderOutput('{"bench":"sse-reader"}').status).toBe("failed");
  });
});

describe("payloads", () => {
  it("builds an OpenAI stream of exactly N events ending with usage and [DONE]", () => {
    const s = sseStream(1000);
    expect(s.events).toHaveLength(1000);
    expect(countSseEvents(s.body)).toBe(1000);
    expect(s.body.endsWith("data: [DONE]\n\n")).toBe(true);
    const usage = JSON.parse(s.events[998].slice("data: ".length));
    expect(usage.usage.completion_tokens).toBe(996);
    expect(usage.choices).toEqual([]);
  });

  it("prompts of the requested size pass all 20 deny patterns; the blocked prompt does not", () => {
    expect(PROMPT_GUARD_PATTERNS).toHaveLength(20);
    for (const size of [1024, 100 * 1024]) {
      const text = promptText(size);
      expect(text).toHaveLength(size);
      for (const p of PROMPT_GUARD_PATTERNS) expect(new RegExp(p).test(text), p).toBe(false);
    }
    expect(PROMPT_GUARD_PATTERNS.some((p) => new RegExp(p).test(BLOCKED_PROMPT))).toBe(true);
    const req = JSON.parse(chatRequest({ stream: true, promptBytes: 1024 }));
    expect(req.messages[1].content).toHaveLength(1024);
    expect(req.stream_options).toEqual({ include_usage: true });
  });
});

describe("gateway configs", () => {
  it("puts the plugins of a configuration on the benchmark routes and never on the probe", () => {
    const all3 = CONFIGS.find((c) => c.id === "all3")!;
    const cfg = gatewayConfig(all3, { upstreamPort: 1, closedPort: 2 }) as { services: { name: string; plugins: { name: string }[] }[] };
    const byName = Object.fromEntries(cfg.services.map((s) => [s.name, s.plugins.map((p) => p.name)]));
    expect(byName.llm).toEqual(["token-rate-limiting", "prompt-guard", "upstream-disconnect-log"]);
    expect(byName.refused).toEqual(byName.llm);
    expect(byName["bench-probe"]).toEqual(["bench-probe"]);
    const redis = CONFIGS.find((c) => c.id === "trl-redis")!;
    const r = gatewayConfig(redis, { upstreamPort: 1, closedPort: 2, redisPort: 3 }) as { services: { plugins: { config: Record<string, unknown> }[] }[] };
    expect(r.services[0].plugins[0].config).toMatchObject({ policy: "redis", redis: { host: "127.0.0.1", port: 3 }, fault_tolerant: false });
  });
});

describe("error log scan", () => {
  it("flags worker and plugin errors but not the refused route's expected connect error", () => {
    const log = [
      '2026/01/01 00:00:00 [notice] 1#1: start worker processes',
      '2026/01/01 00:00:00 [error] 2#2: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: kong, request: "GET /_bench/refused HTTP/1.1"',
      '2026/01/01 00:00:00 [error] 2#2: *2 [kong] runloop.lua:399 handler.lua:44: attempt to call a nil value, request: "POST /json HTTP/1.1"',
      "2026/01/01 00:00:00 [warn] 2#2: *3 [upstream-disconnect] {}",
    ].join("\n");
    const bad = errorLogProblems(log);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toContain("attempt to call");
  });
});

describe("machine", () => {
  it("writes ngx_lua_version as a version string", () => {
    expect(luaNginxModuleVersion(10023)).toBe("0.10.23");
  });
});
