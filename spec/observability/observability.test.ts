// Token analytics end to end: the shared metrics and analytics modules (driven by the probe plugins
// of spec/observability/lua, as our plugins will drive them), the prometheus plugin's stand-in in the
// local gateway (two nginx workers), its status listener, and a real Prometheus server scraping it
// every second. Every count is checked with PromQL against what the workload's responses carried;
// every query of the Grafana dashboard must return data.
//
// OBSERVABILITY_SCRAPE_OUT=<file> keeps the AI lines of a real scrape (README's excerpt).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/gateway.ts";
import { FAKE_AI_PROXY, JUNK_MODEL, KEYS, PROMPT, ROUND, ROUNDS, startStack, sumBy, type Sent, type Stack } from "./workload.ts";

let stack: Stack;
let scrape = "";

beforeAll(async () => {
  stack = await startStack(2);
  const res = await fetch(`${stack.gw.statusUrl}/metrics`);
  expect(res.status).toBe(200);
  scrape = await res.text();
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

const reported = (s: Sent) => s.usage !== undefined;
const tokensOf = (s: Sent) => (s.usage ? (s.usage.prompt + s.usage.completion) * s.scale : 0);
const viaAiProxy = (s: Sent) => s.route === "with-ai-proxy" || s.route === "ai-proxy-then-late";
// Requests a probe metered (the late probe alone on late-only and ai-proxy-then-late) whose usage arrived.
const metered = (s: Sent) => reported(s) && s.route !== "cut";

describe("the workload", () => {
  it("got the answers it expects from the gateway", () => {
    const statuses = Object.fromEntries(ROUND.map((r, i) => [`${r.route} ${r.consumer} ${r.model}`, stack.sent[i].status]));
    expect(statuses).toMatchObject({
      "metered alice mock-a": 200, "refused alice mock-a": 429, "guarded alice mock-a": 400, "monitored bob mock-a": 200,
    });
    // every answered request but the cut stream carried its usage
    expect(stack.sent.filter((s) => s.status === 200 && s.route !== "cut").every(reported)).toBe(true);
    expect(stack.sent.filter((s) => s.route === "cut").some(reported)).toBe(false);
  });

  it("was scraped by Prometheus from the status listener", async () => {
    expect(await stack.prom.scalar('up{job="kong"}')).toBe(1);
    // nginx's own line for the stream the mock cuts is the only error
    const errors = stack.gw.errorLog().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    expect(errors.filter((l) => !/upstream prematurely closed connection .*"POST \/cut\//.test(l))).toEqual([]);
  });
});

describe("kong_ai_gateway_tokens_total", () => {
  it("sum by (consumer) equals the usage the upstream reported to each consumer", async () => {
    const expected = sumBy(stack.sent, (s) => s.consumerLabel, tokensOf, metered);
    expect(expected.alice).toBeGreaterThan(0);
    expect(expected.bob).toBeGreaterThan(0);
    expect(expected[""]).toBeGreaterThan(0);
    expect(await byLabels('sum by (consumer) (kong_ai_gateway_tokens_total{route!="cut"})', ["consumer"])).toEqual(expected);
  });

  it("by route, model and kind: prompt and completion as reported, unknown models as other", async () => {
    const expected: Record<string, number> = {};
    for (const s of stack.sent.filter(metered)) {
      for (const [kind, n] of [["prompt", s.usage!.prompt * s.scale], ["completion", s.usage!.completion * s.scale]] as const) {
        const k = `${s.route}|${s.modelLabel}|${kind}|reported`;
        expected[k] = (expected[k] ?? 0) + n;
      }
    }
    expect(await byLabels('sum by (route, model, kind, source) (kong_ai_gateway_tokens_total{route!="cut"})', ["route", "model", "kind", "source"]))
      .toEqual(expected);
    expect(Object.keys(expected)).toContain("metered|other|prompt|reported");
  });

  it("counts a cut stream with estimated tokens", async () => {
    expect(await stack.prom.scalar('sum(kong_ai_gateway_tokens_total{route="cut",source="estimated"})')).toBeGreaterThan(0);
    expect(await stack.prom.query('kong_ai_gateway_tokens_total{route="cut",source="reported"}')).toEqual([]);
  });

  it("counts each request once: the late probe's inflated second count is refused, alone on a route it counts", async () => {
    const late = sumBy(stack.sent, () => "late-only", tokensOf, (s) => s.route === "late-only");
    expect(await stack.prom.scalar('sum(kong_ai_gateway_tokens_total{route="late-only"})')).toBe(late["late-only"]);
    const afterAiProxy = sumBy(stack.sent, () => "r", tokensOf, (s) => s.route === "ai-proxy-then-late");
    expect(await stack.prom.scalar('sum(kong_ai_gateway_tokens_total{route="ai-proxy-then-late"})')).toBe(afterAiProxy.r);
    expect(stack.gw.errorLog()).toContain("ai-metrics-late-probe recorded tokens=false analytics=false");
    expect(stack.gw.errorLog()).toContain("ai-metrics-late-probe recorded tokens=true analytics=true");
  });

  it("has an empty consumer label where per_consumer is off", async () => {
    expect(await byLabels('sum by (consumer) (kong_ai_gateway_tokens_total{route="anonymous"})', ["consumer"]))
      .toEqual({ "": sumBy(stack.sent, () => "", tokensOf, (s) => s.route === "anonymous")[""] });
  });
});

describe("refusals, guard decisions, stream endings, time to first token", () => {
  it("counts token-limit refusals by consumer and route", async () => {
    expect(await byLabels("sum by (consumer, route) (kong_ai_gateway_token_limit_refusals_total)", ["consumer", "route"]))
      .toEqual({ "alice|refused": ROUNDS });
  });

  it("counts prompt-guard decisions by route, rule and action", async () => {
    expect(await byLabels("sum by (route, rule, action) (kong_ai_gateway_prompt_guard_decisions_total)", ["route", "rule", "action"]))
      .toEqual({ "guarded|prompt-injection|blocked": ROUNDS, "monitored|credential-assignment|monitored": ROUNDS });
  });

  it("counts stream endings by route and outcome", async () => {
    const expected = sumBy(
      stack.sent,
      (s) => `${s.route}|${s.route === "cut" ? "upstream_abort" : s.status === 200 ? "completed" : "gateway_exit"}`,
      () => 1,
      (s) => s.route !== "late-only" && s.route !== "ai-proxy-then-late",
    );
    expect(await byLabels("sum by (route, outcome) (kong_ai_gateway_stream_endings_total)", ["route", "outcome"])).toEqual(expected);
  });

  it("observes the time to the first token of each stream, in ms, by route and model", async () => {
    const streams = sumBy(stack.sent, (s) => `${s.route}|${s.modelLabel}`, () => 1, (s) => s.stream && s.status === 200);
    expect(await byLabels("sum by (route, model) (kong_ai_gateway_time_to_first_token_ms_count)", ["route", "model"])).toEqual(streams);
    // alice's mock-a streams on /metered waited 300 ms for their first token (x-mock-ttft-ms)
    expect(await stack.prom.scalar('sum(kong_ai_gateway_time_to_first_token_ms_bucket{route="metered",model="mock-a",le="500"})')).toBe(ROUNDS);
    expect(await stack.prom.scalar('sum(kong_ai_gateway_time_to_first_token_ms_bucket{route="metered",model="mock-a",le="200"}) or vector(0)')).toBe(0);
    expect(await stack.prom.scalar('sum(kong_ai_gateway_time_to_first_token_ms_bucket{route="metered",model="mock-b",le="200"})')).toBe(ROUNDS);
    expect(await stack.prom.scalar('min(kong_ai_gateway_time_to_first_token_ms_sum{route="metered",model="mock-a"})')).toBeGreaterThanOrEqual(300 * ROUNDS);
  });
});

describe("Kong's AI metrics from the analytics our plugins write (prometheus ai_metrics)", () => {
  // requests that reached the model: every answered one, the cut stream included
  const proxied = (s: Sent) => s.status === 200;

  it("kong_ai_llm_requests_total counts each proxied request once, ai-proxy's entry where it ran", async () => {
    const total = stack.sent.filter(proxied).length;
    expect(await stack.prom.scalar("sum(kong_ai_llm_requests_total)")).toBe(total);
    const aiProxy = stack.sent.filter((s) => proxied(s) && viaAiProxy(s)).length;
    expect(aiProxy).toBe(2 * ROUNDS);
    expect(await byLabels("sum by (ai_provider) (kong_ai_llm_requests_total)", ["ai_provider"])).toEqual({
      openai: total - aiProxy,
      [FAKE_AI_PROXY.provider]: aiProxy,
    });
  });

  it("kong_ai_llm_tokens_total by model and token type equals the reported usage (ai-proxy's where it ran)", async () => {
    const expected: Record<string, number> = {};
    const add = (model: string, type: string, n: number) => (expected[`${model}|${type}`] = (expected[`${model}|${type}`] ?? 0) + n);
    for (const s of stack.sent.filter((x) => metered(x))) {
      if (viaAiProxy(s)) {
        add(FAKE_AI_PROXY.model, "prompt_tokens", FAKE_AI_PROXY.prompt);
        add(FAKE_AI_PROXY.model, "completion_tokens", FAKE_AI_PROXY.completion);
        add(FAKE_AI_PROXY.model, "total_tokens", FAKE_AI_PROXY.prompt + FAKE_AI_PROXY.completion);
        continue;
      }
      add(s.modelLabel, "prompt_tokens", s.usage!.prompt);
      add(s.modelLabel, "completion_tokens", s.usage!.completion);
      add(s.modelLabel, "total_tokens", s.usage!.prompt + s.usage!.completion);
    }
    expect(await byLabels('sum by (ai_model, token_type) (kong_ai_llm_tokens_total{ai_model!="mock-cut"})', ["ai_model", "token_type"]))
      .toEqual(expected);
  });

  it("observes the LLM latency of each request and carries Kong's labels", async () => {
    expect(await stack.prom.scalar("sum(kong_ai_llm_provider_latency_ms_count)")).toBeGreaterThanOrEqual(ROUNDS);
    // Kong's labels, in Kong's order; Prometheus keeps only those with a value (no cache here)
    expect(scrape).toMatch(
      /^kong_ai_llm_requests_total\{ai_provider="fake-ai-proxy",ai_model="fake-model",cache_status="",vector_db="",embeddings_provider="",embeddings_model="",workspace="default"\} 4$/m,
    );
    const [sample] = await stack.prom.query(`kong_ai_llm_requests_total{ai_provider="${FAKE_AI_PROXY.provider}"}`);
    expect(Object.keys(sample.metric).sort()).toEqual(["__name__", "ai_model", "ai_provider", "instance", "job", "workspace"]);
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
    for (const secret of [KEYS.alice, KEYS.bob, PROMPT, JUNK_MODEL]) expect(scrape).not.toContain(secret);
  });

  it("can be kept for the README (OBSERVABILITY_SCRAPE_OUT)", () => {
    const out = process.env.OBSERVABILITY_SCRAPE_OUT;
    const excerpt = scrape
      .split("\n")
      // AI lines only, and of the histograms' buckets only 300, 500 and +Inf
      .filter((l) => /^(# (HELP|TYPE) )?kong_ai_(gateway|llm)_/.test(l) && !/_bucket\{.*le="(?!(?:\+Inf|300|500)")[^"]*"\}/.test(l))
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

/** Grafana's template variables as the dashboard's defaults ("All") and a short time range. */
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
