// Token analytics end to end with the real plugins: prompt-guard, token-rate-limiting and
// upstream-disconnect-log in front of the mock LLM, Kong's prometheus plugin (the local gateway's
// stand-in, two nginx workers, ai_metrics on), its status listener, and a real Prometheus server
// scraping it every second. Every count is checked with PromQL against what the mock recorded for
// each request (its usage, how the request ended); every query of the Grafana dashboard must
// return data after the workload.
//
// OBSERVABILITY_SCRAPE_OUT=<file> keeps the README's excerpt of this real scrape.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/gateway.ts";
import type { UsageRecord } from "../helpers/mock-llm.ts";
import {
  CREDENTIAL_PROMPT, FAKE_AI_PROXY, INJECTION, JUNK_MODEL, KEYS, PROMPT, ROUNDS, ROUTES, SECRET_KEY_PROMPT,
  serializedAi, startStack, sumBy, type RouteSpec, type Sent, type SerializedAi, type Stack,
} from "./workload.ts";

let stack: Stack;
let scrape = "";
let serialized: SerializedAi[] = [];

beforeAll(async () => {
  stack = await startStack(2);
  const res = await fetch(`${stack.gw.statusUrl}/metrics`);
  expect(res.status).toBe(200);
  scrape = await res.text();
  serialized = serializedAi(stack.gw);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** A query's samples as { "<label values joined by |>": value }. */
async function byLabels(promql: string, labels: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await stack.prom.query(promql)) out[labels.map((l) => s.metric[l] ?? "").join("|")] = Number(s.value);
  return out;
}

const route = (s: Sent): RouteSpec => ROUTES[s.route];
/** The request reached the mock (the gateway did not answer it by itself). */
const proxied = (s: Sent) => s.record !== undefined;
/** The usage the mock sent (undefined: the stream was cut before it). */
const usageOf = (s: Sent): UsageRecord | undefined => (s.record?.usage_sent ? (s.record.usage ?? undefined) : undefined);
/** Cut by the upstream (x-mock-abort-after-tokens) or the client. */
const cut = (s: Sent) => s.record !== undefined && s.record.outcome !== "completed";
const labelsOf = (s: Sent) => ({ consumer: route(s).consumerLabel(s.consumer), route: s.route, model: route(s).modelLabel(s.model) });

/** Our counts: reported usage. */
const reported = (s: Sent) => usageOf(s) !== undefined;

describe("the workload", () => {
  it("got the answers it expects from the gateway", () => {
    for (const s of stack.sent) {
      const what = `${s.id} ${s.route} ${s.consumer} ${s.model}`;
      if (s.guard?.action === "blocked") expect(s.status, what).toBe(400);
      else if (s.route !== "limited") expect(s.status, what).toBe(200);
    }
    // the daily budget of 10 tokens: the first request of each consumer passes, the others are refused
    const limited = stack.sent.filter((s) => s.route === "limited");
    expect(limited.map((s) => `${s.consumer} ${s.status}`)).toEqual(["alice 200", "alice 429", "bob 200", "alice 429", "alice 429", "bob 429"]);
    // the mock saw every request the gateway let through, and cut what it was told to
    expect(stack.sent.filter((s) => s.status !== 400 && s.status !== 429).every(proxied)).toBe(true);
    expect(stack.sent.filter((s) => s.headers?.["x-mock-abort-after-tokens"]).map((s) => s.record?.outcome)).toEqual(Array(2 * ROUNDS).fill("aborted_by_fault"));
    expect(stack.sent.filter((s) => s.abortAfterEvents).map((s) => `${s.ending} ${s.record?.outcome}`)).toEqual(Array(ROUNDS).fill("aborted-by-client client_disconnected"));
    // every other answer carried its usage
    expect(stack.sent.filter((s) => proxied(s) && !cut(s)).every((s) => usageOf(s) !== undefined)).toBe(true);
  });

  it("was scraped by Prometheus from the status listener; nginx logs no error but the streams the mock cut", async () => {
    expect(await stack.prom.scalar('up{job="kong"}')).toBe(1);
    const errors = stack.gw.errorLog().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    expect(errors.filter((l) => !/upstream prematurely closed connection/.test(l))).toEqual([]);
    expect(errors).toHaveLength(2 * ROUNDS);
  });
});

describe("kong_ai_gateway_tokens_total", () => {
  it("sum by (consumer) equals the usage the mock reported to each consumer", async () => {
    const expected = sumBy(stack.sent, (s) => labelsOf(s).consumer, (s) => usageOf(s)!.total_tokens, reported);
    expect(Object.keys(expected).sort()).toEqual(["", "alice", "bob"]);
    expect(await byLabels('sum by (consumer) (kong_ai_gateway_tokens_total{source="reported"})', ["consumer"])).toEqual(expected);
  });

  it("by consumer, route, model and kind: prompt and completion as reported, models as sent, other outside metrics.models, no consumer where per_consumer is off", async () => {
    const expected: Record<string, number> = {};
    for (const s of stack.sent.filter(reported)) {
      const l = labelsOf(s);
      for (const [kind, n] of [["prompt", usageOf(s)!.prompt_tokens], ["completion", usageOf(s)!.completion_tokens]] as const) {
        const k = `${l.consumer}|${l.route}|${l.model}|${kind}`;
        expected[k] = (expected[k] ?? 0) + n;
      }
    }
    expect(await byLabels('sum by (consumer, route, model, kind) (kong_ai_gateway_tokens_total{source="reported"})', ["consumer", "route", "model", "kind"]))
      .toEqual(expected);
    expect(Object.keys(expected)).toEqual(expect.arrayContaining([
      "bob|full|other|prompt", // a client's junk model name
      "|anonymous|mock-a|prompt", "|anonymous|other|prompt", // metrics.models [mock-a], per_consumer off
      "alice|monitored|mock-b|prompt", // upstream-disconnect-log counting, the model from prompt-guard's decoding
      "alice|bare|unknown|prompt", // upstream-disconnect-log alone: no plugin decoded the model
    ]));
    // the chat template's 7 prompt tokens came from the upstream's usage: no estimate can see them
    expect(stack.sent.find((s) => s.headers?.["x-mock-template-tokens"])?.record?.usage?.prompt_tokens).toBe(17);
  });

  it("counts each request once where token-rate-limiting and upstream-disconnect-log both run", async () => {
    const full = sumBy(stack.sent, () => "full", (s) => usageOf(s)!.total_tokens, (s) => s.route === "full" && reported(s));
    expect(await stack.prom.scalar('sum(kong_ai_gateway_tokens_total{route="full",source="reported"})')).toBe(full.full);
  });

  it("counts streams cut by the upstream or the client as estimated (source=estimated), prompt and completion", async () => {
    const expected = sumBy(stack.sent, (s) => `${labelsOf(s).consumer}|${s.route}|${labelsOf(s).model}`, () => 1, (s) => cut(s));
    const rows = await stack.prom.query('sum by (consumer, route, model, kind) (kong_ai_gateway_tokens_total{source="estimated"})');
    const keys = new Set(rows.map((r) => `${r.metric.consumer}|${r.metric.route}|${r.metric.model}`));
    expect([...keys].sort()).toEqual(Object.keys(expected).sort());
    for (const s of stack.sent.filter(cut)) {
      const l = labelsOf(s);
      for (const kind of ["prompt", "completion"]) {
        const row = rows.find((r) => r.metric.route === l.route && r.metric.model === l.model && r.metric.consumer === l.consumer && r.metric.kind === kind);
        expect(Number(row?.value), `${s.id} ${kind}`).toBeGreaterThan(0);
      }
    }
  });
});

describe("Kong's AI analytics (ai.proxy) and Kong's kong_ai_llm_* from them", () => {
  const line = (s: Sent) => serialized.find((l) => l.id === s.id);

  it("every proxied request carries one ai.proxy entry, written by the first plugin that meters the route (ai-proxy's where it runs), with the reported usage", () => {
    expect(serialized).toHaveLength(stack.sent.length);
    for (const s of stack.sent) {
      const entry = line(s)?.ai?.proxy;
      if (!proxied(s)) {
        expect(line(s)?.ai, `${s.id}: the gateway answered, nothing reached a model`).toBeUndefined();
        continue;
      }
      expect(entry?.meta?.plugin_id, s.id).toBe(route(s).analyticsBy);
      const u = usageOf(s);
      if (route(s).aiProxy) {
        expect(entry?.meta).toMatchObject({ provider_name: FAKE_AI_PROXY.provider, request_model: FAKE_AI_PROXY.model });
      } else if (u !== undefined) {
        expect(entry?.meta, s.id).toMatchObject({ provider_name: "openai", request_model: labelsOf(s).model, response_model: labelsOf(s).model });
        expect(entry?.usage, s.id).toMatchObject({ prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens, cost: 0 });
      }
    }
  });

  it("kong_ai_llm_requests_total counts each proxied request once, by provider and model", async () => {
    expect(await stack.prom.scalar("sum(kong_ai_llm_requests_total)")).toBe(stack.sent.filter(proxied).length);
    const ours = sumBy(stack.sent, (s) => labelsOf(s).model, () => 1, (s) => proxied(s) && !route(s).aiProxy);
    expect(await byLabels('sum by (ai_model) (kong_ai_llm_requests_total{ai_provider="openai"})', ["ai_model"])).toEqual(ours);
    expect(await stack.prom.scalar(`sum(kong_ai_llm_requests_total{ai_provider="${FAKE_AI_PROXY.provider}",ai_model="${FAKE_AI_PROXY.model}"})`))
      .toBe(stack.sent.filter((s) => proxied(s) && route(s).aiProxy).length);
  });

  it("kong_ai_llm_tokens_total by model and token type equals the reported usage (ai-proxy's where it ran)", async () => {
    const expected: Record<string, number> = {};
    const add = (model: string, type: string, n: number) => (expected[`${model}|${type}`] = (expected[`${model}|${type}`] ?? 0) + n);
    for (const s of stack.sent.filter((x) => proxied(x) && route(x).aiProxy)) {
      add(FAKE_AI_PROXY.model, "prompt_tokens", FAKE_AI_PROXY.prompt);
      add(FAKE_AI_PROXY.model, "completion_tokens", FAKE_AI_PROXY.completion);
      add(FAKE_AI_PROXY.model, "total_tokens", FAKE_AI_PROXY.prompt + FAKE_AI_PROXY.completion);
    }
    for (const s of stack.sent.filter((x) => reported(x) && !route(x).aiProxy)) {
      const u = usageOf(s)!;
      add(labelsOf(s).model, "prompt_tokens", u.prompt_tokens);
      add(labelsOf(s).model, "completion_tokens", u.completion_tokens);
      add(labelsOf(s).model, "total_tokens", u.total_tokens);
    }
    const cutModels = [...new Set(stack.sent.filter(cut).map((s) => s.model))].join("|");
    expect(await byLabels(`sum by (ai_model, token_type) (kong_ai_llm_tokens_total{ai_provider=~"openai|${FAKE_AI_PROXY.provider}",ai_model!~"${cutModels}"})`, ["ai_model", "token_type"]))
      .toEqual(expected);
  });

  it("observes the LLM latency the analytics carry and Kong's labels", async () => {
    // Kong observes only positive latencies (a fast answer floors to 0 ms)
    const latencies = serialized.map((l) => Number(l.ai?.proxy?.meta?.llm_latency ?? 0)).filter((ms) => ms > 0);
    // from the request's start to the stream's end: the slow streams waited 300 ms for their first token
    const slow = stack.sent.filter((s) => s.model === "mock-slow").map((s) => Number(serialized.find((l) => l.id === s.id)?.ai?.proxy?.meta?.llm_latency));
    expect(slow).toHaveLength(ROUNDS);
    for (const ms of slow) expect(ms).toBeGreaterThanOrEqual(300);
    expect(await stack.prom.scalar("sum(kong_ai_llm_provider_latency_ms_count)")).toBe(latencies.length);
    expect(await stack.prom.scalar("sum(kong_ai_llm_provider_latency_ms_sum)")).toBe(latencies.reduce((a, b) => a + b, 0));
    const fake = stack.sent.filter((s) => proxied(s) && route(s).aiProxy).length;
    // Kong's labels, in Kong's order; Prometheus keeps only those with a value (no cache here)
    expect(scrape).toContain(
      `kong_ai_llm_requests_total{ai_provider="fake-ai-proxy",ai_model="fake-model",cache_status="",vector_db="",embeddings_provider="",embeddings_model="",workspace="default"} ${fake}\n`,
    );
    const [sample] = await stack.prom.query(`kong_ai_llm_requests_total{ai_provider="${FAKE_AI_PROXY.provider}"}`);
    expect(Object.keys(sample.metric).sort()).toEqual(["__name__", "ai_model", "ai_provider", "instance", "job", "workspace"]);
  });
});

describe("refusals, guard decisions, stream endings, time to first token", () => {
  it("counts token-limit refusals (429) by consumer and route", async () => {
    const expected = sumBy(stack.sent, (s) => `${s.consumer}|${s.route}`, () => 1, (s) => s.status === 429);
    expect(expected).toEqual({ "alice|limited": 2 * ROUNDS - 1, "bob|limited": ROUNDS - 1 });
    expect(await byLabels("sum by (consumer, route) (kong_ai_gateway_token_limit_refusals_total)", ["consumer", "route"])).toEqual(expected);
  });

  it("counts prompt-guard decisions by route, rule (name, pattern path or limit) and action", async () => {
    const expected = sumBy(stack.sent, (s) => `${s.route}|${s.guard?.rule ?? ""}|${s.guard?.action ?? "allowed"}`, () => 1, (s) => route(s).guard);
    expect(Object.keys(expected).sort()).toEqual([
      "full||allowed", "full|deny_patterns.1|blocked", "full|prompt-injection|blocked", "full|too_many_messages|blocked",
      "monitored||allowed", "monitored|credential-assignment|monitored",
    ].sort());
    expect(await byLabels("sum by (route, rule, action) (kong_ai_gateway_prompt_guard_decisions_total)", ["route", "rule", "action"])).toEqual(expected);
  });

  it("counts how every response ended, by route and outcome (completed, upstream_abort, client_abort, gateway_exit)", async () => {
    const outcome = (s: Sent) => {
      if (s.record === undefined) return "gateway_exit";
      return { completed: "completed", aborted_by_fault: "upstream_abort", client_disconnected: "client_abort", error: "upstream_error" }[s.record.outcome];
    };
    const expected = sumBy(stack.sent, (s) => `${s.route}|${outcome(s)}`, () => 1, (s) => route(s).endings);
    expect(Object.keys(expected)).toEqual(expect.arrayContaining(["full|completed", "full|upstream_abort", "full|client_abort", "full|gateway_exit", "monitored|upstream_abort"]));
    expect(await byLabels("sum by (route, outcome) (kong_ai_gateway_stream_endings_total)", ["route", "outcome"])).toEqual(expected);
  });

  it("observes the time to the first token of every answer that carried one, by route and model", async () => {
    const expected = sumBy(stack.sent, (s) => `${s.route}|${labelsOf(s).model}`, () => 1, (s) => (s.record?.tokens_sent ?? 0) > 0);
    expect(await byLabels("sum by (route, model) (kong_ai_gateway_time_to_first_token_ms_count)", ["route", "model"])).toEqual(expected);
    // alice's mock-slow streams waited 300 ms for their first token (x-mock-ttft-ms), the others did not
    const bucket = (model: string, le: string) => stack.prom.scalar(`sum(kong_ai_gateway_time_to_first_token_ms_bucket{route="full",model="${model}",le="${le}"}) or vector(0)`);
    expect(await bucket("mock-slow", "500")).toBe(ROUNDS);
    expect(await bucket("mock-slow", "200")).toBe(0);
    expect(await bucket("mock-b", "200")).toBe(ROUNDS);
    expect(await stack.prom.scalar('sum(kong_ai_gateway_time_to_first_token_ms_sum{route="full",model="mock-slow"})')).toBeGreaterThanOrEqual(300 * ROUNDS);
  });
});

describe("upstream-disconnect-log metering alone", () => {
  it("counts a non-streamed answer's reported usage", async () => {
    expect(stack.sent.filter((s) => route(s).counter === "upstream-disconnect-log" && s.stream === undefined && usageOf(s) !== undefined).length).toBeGreaterThan(0);
    const alone = (s: Sent) => route(s).counter === "upstream-disconnect-log";
    const expected = sumBy(stack.sent, (s) => `${labelsOf(s).consumer}|${s.route}`, (s) => usageOf(s)!.total_tokens, (s) => alone(s) && usageOf(s) !== undefined);
    const routes = Object.entries(ROUTES).filter(([, r]) => r.counter === "upstream-disconnect-log").map(([name]) => name).join("|");
    expect(await byLabels(`sum by (consumer, route) (kong_ai_gateway_tokens_total{route=~"${routes}",source="reported"})`, ["consumer", "route"]))
      .toEqual(expected);
  });

  it("observes no time to first token for the gateway's own answers (400, 429)", async () => {
    const admitted = stack.sent.filter((s) => s.route === "limited" && proxied(s)).length;
    expect(await stack.prom.scalar('sum(kong_ai_gateway_time_to_first_token_ms_count{route="limited"})')).toBe(admitted);
  });
});

describe("the scrape", () => {
  it("is Kong's text format: HELP and TYPE once before each metric, kong_ prefix, no registration error", () => {
    const lines = scrape.trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(/^(# (HELP|TYPE) kong_\w+ .+|kong_\w+(\{.*\})? [-+0-9.eE]+(Inf)?)$/);
    for (const name of ["tokens_total", "token_limit_refusals_total", "prompt_guard_decisions_total", "stream_endings_total", "time_to_first_token_ms"]) {
      const help = lines.filter((l) => l.startsWith(`# HELP kong_ai_gateway_${name} `));
      expect(help, name).toHaveLength(1);
      const first = lines.findIndex((l) => l.startsWith(`kong_ai_gateway_${name}`));
      expect(first, name).toBeGreaterThan(lines.indexOf(help[0]));
    }
    expect(scrape).toContain("# TYPE kong_ai_gateway_time_to_first_token_ms histogram");
    expect(scrape).toMatch(/^kong_nginx_metric_errors_total 0$/m);
  });

  it("carries no API key, no prompt text and no raw client model name", () => {
    for (const secret of [KEYS.alice, KEYS.bob, PROMPT, INJECTION, SECRET_KEY_PROMPT, CREDENTIAL_PROMPT, "sk-abcdefghij", "hunter2", JUNK_MODEL]) {
      expect(scrape).not.toContain(secret);
    }
  });

  it("reached Kong's shared dict (the log probe's sample count, which the test without prometheus expects at 0)", () => {
    expect(serialized.at(-1)?.gateway_samples).toBeGreaterThan(0);
  });

  it("can be kept for the README (OBSERVABILITY_SCRAPE_OUT)", () => {
    const out = process.env.OBSERVABILITY_SCRAPE_OUT;
    const excerpt = scrape
      .split("\n")
      // our metrics on three routes (time to first token: the slow streams' 300, 500 and +Inf
      // buckets), Kong's request and token counts for two models
      .filter((l) => /^(# (HELP|TYPE) )?kong_ai_(gateway_|llm_(requests|tokens)_total)/.test(l))
      .filter((l) => !/route="/.test(l) || /route="(full|anonymous|limited)"/.test(l))
      .filter((l) => !/^kong_ai_gateway_time_to_first_token_ms_/.test(l) || (/model="mock-slow"/.test(l) && !/le="(?!(?:\+Inf|300|500)")/.test(l)))
      .filter((l) => !/^kong_ai_llm_/.test(l) || /ai_model="(mock-a|fake-model)"/.test(l))
      .join("\n");
    expect(excerpt).toContain("kong_ai_gateway_tokens_total{");
    if (out) writeFileSync(out, excerpt + "\n");
  });
});

interface Target {
  expr?: string;
  refId?: string;
}

interface Panel {
  id?: number;
  title?: string;
  type?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}

interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
}

interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const DASHBOARD_FILE = join(PROJECT_ROOT, "observability", "grafana", "dashboards", "ai-gateway.json");
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels).filter((p) => p.type !== "row");

/** Grafana's template variables as the dashboard's defaults ("All", allValue .*) and a short time range. */
function substitute(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "30s")
    .replaceAll("$__interval", "5s")
    .replaceAll("$__range", "5m")
    .replace(/\$\{?(route|consumer|model)\}?/g, ".*");
}

describe("observability/grafana/dashboards/ai-gateway.json", () => {
  it("has panels for tokens per consumer and model, refusals, guard blocks, stream outcomes and TTFT", () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
    for (const metric of ["kong_ai_gateway_tokens_total", "kong_ai_gateway_token_limit_refusals_total", "kong_ai_gateway_prompt_guard_decisions_total",
      "kong_ai_gateway_stream_endings_total", "kong_ai_gateway_time_to_first_token_ms_bucket", "kong_ai_llm_tokens_total"]) {
      expect(exprs.some((e) => e.includes(metric)), metric).toBe(true);
    }
    expect(exprs.some((e) => /by \(consumer\)/.test(e) && e.includes("tokens_total"))).toBe(true);
    expect(exprs.some((e) => /by \(model\)/.test(e) && e.includes("tokens_total"))).toBe(true);
  });

  it("queries through the provisioned Prometheus datasource variable, with unique panel ids", () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.find((v) => v.name === "datasource")?.type).toBe("datasource");
  });

  it.each(panels.flatMap((p) => (p.targets ?? []).map((t) => [`${p.title} (${t.refId})`, t.expr ?? ""] as const)))(
    "panel %s returns data after the workload",
    async (_title, expr) => {
      const rows = await stack.prom.query(substitute(expr));
      expect(rows.length, substitute(expr)).toBeGreaterThan(0);
      expect(rows.some((r) => Number.isFinite(Number(r.value))), `${substitute(expr)}: ${JSON.stringify(rows)}`).toBe(true);
    },
  );

  it.each(dashboard.templating.list.filter((v) => v.type === "query").map((v) => [v.name, v] as const))(
    "variable %s lists values after the workload",
    async (_name, v) => {
      const q = typeof v.query === "string" ? v.query : v.query?.query ?? "";
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q.trim());
      expect(m, q).not.toBeNull();
      const values = await stack.prom.labelValues(m![2], substitute(m![1]));
      expect(values.length, q).toBeGreaterThan(0);
    },
  );
});
