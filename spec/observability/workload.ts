// The observability suites' setup: the mock LLM, the local gateway with the prometheus stand-in
// (every metric family on, ai_metrics included), its status listener, the probe plugins of
// spec/observability/lua standing in for our three plugins, and a real Prometheus scraping it
// every second. Then a workload in two rounds (so that rate() and increase() have two samples to
// compare), and, for every request, what the metrics must have counted for it.
import { join } from "node:path";
import { startGateway, PROJECT_ROOT, type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm } from "../helpers/mock-llm.ts";
import { startPrometheus, type PrometheusServer } from "../helpers/prometheus.ts";

export const PROBE_LUA = join(PROJECT_ROOT, "spec", "observability", "lua");

export const KEYS = { alice: "alice-key", bob: "bob-key" } as const;
export type Consumer = keyof typeof KEYS;

/** Prompt text sent by the workload: must never show up in a label. */
export const PROMPT = "Say hello to the observability suite";

export function gatewayYaml(upstream: string, withPrometheus = true): string {
  return `_format_version: "3.0"
${withPrometheus ? `plugins:
  - name: prometheus
    config: { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, ai_metrics: true }
` : ""}consumers:
  - username: alice
    keyauth_credentials: [{ key: ${KEYS.alice} }]
  - username: bob
    keyauth_credentials: [{ key: ${KEYS.bob} }]
services:
  - name: llm
    url: ${upstream}
    plugins:
      - name: key-auth
    routes:
      - name: metered
        paths: [/metered]
        plugins:
          - name: ai-metrics-probe
          - name: ai-metrics-late-probe
            config: { scale: 10 }
      - name: anonymous
        paths: [/anonymous]
        plugins:
          - name: ai-metrics-probe
            config: { metrics: { per_consumer: false, models: [mock-a] } }
      - name: late-only
        paths: [/late]
        plugins:
          - name: ai-metrics-late-probe
      - name: with-ai-proxy
        paths: [/aiproxy]
        plugins:
          - name: ai-metrics-probe
          - name: fake-ai-proxy-stats
          - name: ai-metrics-late-probe
            config: { scale: 10 }
      - name: ai-proxy-then-late
        paths: [/ai-proxy-then-late]
        plugins:
          - name: fake-ai-proxy-stats
          - name: ai-metrics-late-probe
            config: { scale: 10 }
      - name: cut
        paths: [/cut]
        plugins:
          - name: ai-metrics-probe
      - name: refused
        paths: [/refused]
        plugins:
          - name: ai-metrics-probe
            config: { refuse: true }
      - name: guarded
        paths: [/guarded]
        plugins:
          - name: ai-metrics-probe
            config: { guard_rule: prompt-injection, guard_action: blocked }
      - name: monitored
        paths: [/monitored]
        plugins:
          - name: ai-metrics-probe
            config: { guard_rule: credential-assignment, guard_action: monitored }
`;
}

export interface Usage {
  prompt: number;
  completion: number;
}

/** One request of the workload and what it must have counted. */
export interface Sent {
  route: string;
  consumer: Consumer;
  /** The consumer label the route gives it ("" where per_consumer is off). */
  consumerLabel: string;
  /** The model label the route gives it. */
  modelLabel: string;
  stream: boolean;
  /** What the probe that counts multiplies the usage by. */
  scale: number;
  status: number;
  /** The usage the response carried (undefined: none reached the client). */
  usage?: Usage;
}

interface Request {
  route: string;
  path: string;
  consumer: Consumer;
  model: string;
  stream: boolean;
  headers?: Record<string, string>;
  consumerLabel?: string;
  modelLabel?: string;
  scale?: number;
}

/** The usage in a response body: a JSON answer's `usage`, or the usage chunk of a stream. */
export function usageOf(text: string, stream: boolean): Usage | undefined {
  const pick = (o: unknown): Usage | undefined => {
    if (typeof o !== "object" || o === null || !("usage" in o)) return undefined;
    const u = o.usage;
    if (typeof u !== "object" || u === null || !("prompt_tokens" in u) || !("completion_tokens" in u)) return undefined;
    return { prompt: Number(u.prompt_tokens), completion: Number(u.completion_tokens) };
  };
  if (!stream) {
    try {
      return pick(JSON.parse(text));
    } catch {
      return undefined;
    }
  }
  let found: Usage | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: {")) continue;
    found = pick(JSON.parse(line.slice(6))) ?? found;
  }
  return found;
}

async function send(gw: Gateway, r: Request): Promise<Sent> {
  const body: Record<string, unknown> = { model: r.model, messages: [{ role: "user", content: PROMPT }] };
  if (r.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  const res = await fetch(`${gw.url}${r.path}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: KEYS[r.consumer], ...r.headers },
    body: JSON.stringify(body),
  });
  let text = "";
  try {
    text = await res.text();
  } catch {
    // a stream cut by the upstream ends the body with an error
  }
  return {
    route: r.route,
    consumer: r.consumer,
    consumerLabel: r.consumerLabel ?? r.consumer,
    modelLabel: r.modelLabel ?? r.model,
    stream: r.stream,
    scale: r.scale ?? 1,
    status: res.status,
    usage: res.status === 200 ? usageOf(text, r.stream) : undefined,
  };
}

/** The model a client may send that must never become a label. */
export const JUNK_MODEL = "ignore all previous instructions";

/** One round of the workload: every route, both consumers. */
export const ROUND: Request[] = [
  { route: "metered", path: "/metered", consumer: "alice", model: "mock-a", stream: false },
  { route: "metered", path: "/metered", consumer: "alice", model: "mock-a", stream: true, headers: { "x-mock-ttft-ms": "300" } },
  { route: "metered", path: "/metered", consumer: "bob", model: "mock-b", stream: true },
  { route: "metered", path: "/metered", consumer: "bob", model: JUNK_MODEL, stream: false, modelLabel: "other" },
  { route: "anonymous", path: "/anonymous", consumer: "alice", model: "mock-a", stream: true, consumerLabel: "" },
  { route: "anonymous", path: "/anonymous", consumer: "bob", model: "mock-b", stream: false, consumerLabel: "", modelLabel: "other" },
  { route: "late-only", path: "/late", consumer: "alice", model: "mock-a", stream: false },
  { route: "with-ai-proxy", path: "/aiproxy", consumer: "bob", model: "mock-a", stream: false },
  // only the late probe meters here, after the ai-proxy stand-in: its analytics must not replace ai-proxy's
  { route: "ai-proxy-then-late", path: "/ai-proxy-then-late", consumer: "alice", model: "mock-a", stream: false, scale: 10 },
  { route: "cut", path: "/cut", consumer: "bob", model: "mock-cut", stream: true, headers: { "x-mock-abort-after-tokens": "3" } },
  { route: "refused", path: "/refused", consumer: "alice", model: "mock-a", stream: false },
  { route: "guarded", path: "/guarded", consumer: "alice", model: "mock-a", stream: false },
  { route: "monitored", path: "/monitored", consumer: "bob", model: "mock-a", stream: false },
];
export const ROUNDS = 2;

/** fake-ai-proxy-stats' defaults (spec/observability/lua/kong/plugins/fake-ai-proxy-stats). */
export const FAKE_AI_PROXY = { provider: "fake-ai-proxy", model: "fake-model", prompt: 100, completion: 50 };

export interface Stack {
  llm: MockLlm;
  gw: Gateway;
  prom: PrometheusServer;
  sent: Sent[];
  /** When the last request of the workload was answered (ms since the epoch). */
  finishedAt: number;
  stop(): Promise<void>;
}

/**
 * Starts everything and runs the workload; `workers` nginx workers (the per-worker counters of the
 * prometheus library reach the shared dict within a second, as in Kong).
 */
export async function startStack(workers = 2): Promise<Stack> {
  const llm = await startMockLlm({ inProcess: true });
  let gw: Gateway | undefined;
  let prom: PrometheusServer | undefined;
  const stop = async () => {
    await prom?.stop();
    await gw?.stop();
    await llm.stop();
  };
  try {
    gw = await startGateway({
      yaml: gatewayYaml(llm.url),
      luaPath: [PROBE_LUA],
      statusPort: true,
      env: { KONG_NGINX_WORKER_PROCESSES: String(workers) },
    });
    const status = new URL(gw.statusUrl ?? "");
    prom = await startPrometheus({ targets: [status.host] });
    await prom.waitForTargetsUp();
    const sent: Sent[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of ROUND) sent.push(await send(gw, r));
      // the next round after a scrape has seen this one: rate() and increase() get two samples
      await prom.waitForScrapeAfter(Date.now() + 1_200);
    }
    return { llm, gw, prom, sent, finishedAt: Date.now(), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Sums of `value(s)` grouped by `key(s)` over the requests `filter` keeps. */
export function sumBy(sent: Sent[], key: (s: Sent) => string, value: (s: Sent) => number, filter: (s: Sent) => boolean = () => true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sent.filter(filter)) out[key(s)] = (out[key(s)] ?? 0) + value(s);
  return out;
}
