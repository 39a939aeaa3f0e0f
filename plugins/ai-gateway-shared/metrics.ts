/**
 * The gateway's Prometheus metrics, registered on the registry of Kong's bundled prometheus plugin
 * so that Kong's /metrics serves them (with its `kong_` prefix); without that plugin every record
 * function is a no-op. Label values carry only names, fixed words and numbers, never prompt text.
 */

export const METRIC_PREFIX = "ai_gateway_";
export const TOKENS_METRIC = "ai_gateway_tokens_total";
export const REFUSALS_METRIC = "ai_gateway_token_limit_refusals_total";
export const GUARD_METRIC = "ai_gateway_prompt_guard_decisions_total";
export const STREAM_ENDINGS_METRIC = "ai_gateway_stream_endings_total";
export const TTFT_METRIC = "ai_gateway_time_to_first_token_ms";

/** Milliseconds, as Kong's own histograms. */
export const TTFT_BUCKETS_MS: readonly number[] = [
  25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000,
];

export const MODEL_UNKNOWN = "unknown";
export const MODEL_OTHER = "other";
/** Model names come from the client: bounds the label's cardinality when no `models` list is set. */
export const MAX_MODELS_PER_WORKER = 64;
export const MAX_LABEL_BYTES = 128;

/** Anything else is counted as "other". */
export const STREAM_OUTCOMES: readonly string[] = [
  "completed", "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit",
];
export const GUARD_ACTIONS: readonly string[] = ["allowed", "blocked", "monitored"];

export interface MetricsConf {
  readonly enabled: boolean;
  readonly per_consumer: boolean;
  readonly models: readonly string[];
  readonly ai_analytics: boolean;
}

/** Shared so that the three plugins spell the field the same way. */
export const METRICS_FIELD = {
  metrics: {
    type: "record",
    required: true,
    description: "Prometheus metrics and Kong AI analytics of this plugin.",
    fields: [
      {
        enabled: {
          type: "boolean",
          required: true,
          default: true,
          description: "Count into the kong_ai_gateway_* metrics (needs Kong's prometheus plugin; without it nothing is counted).",
        },
      },
      {
        per_consumer: {
          type: "boolean",
          required: true,
          default: true,
          description: "Fill the consumer label (username, else custom_id, else id); off: the label is empty.",
        },
      },
      {
        models: {
          type: "array",
          required: true,
          default: [],
          elements: { type: "string", len_min: 1, len_max: 128 },
          description: "Model names that get their own label value; others are counted as `other`. Empty: any model-like name, at most 64 per worker.",
        },
      },
      {
        ai_analytics: {
          type: "boolean",
          required: true,
          default: true,
          description: "Fill the log serializer's `ai.proxy` namespace as Kong's ai-proxy does (prometheus ai_metrics, file-log, http-log), unless ai-proxy fills it.",
        },
      },
    ],
  },
} as const satisfies KongFieldEntry;

export interface ConsumerLike {
  readonly id?: string;
  readonly username?: string;
  readonly custom_id?: string;
}

export interface RouteLike {
  readonly id?: string;
  readonly name?: string;
}

/** Control characters removed, cut to MAX_LABEL_BYTES on a UTF-8 character boundary. */
export function labelText(value: unknown): string {
  if (typeof value === "number") return tostring(value);
  if (typeof value !== "string") return "";
  let text = string.gsub(value, "%c", "")[0];
  if (text.length > MAX_LABEL_BYTES) {
    let cut = MAX_LABEL_BYTES;
    while (cut > 0) {
      const following = string.byte(text, cut + 1);
      if (following < 0x80 || following > 0xbf) break;
      cut -= 1;
    }
    text = string.sub(text, 1, cut);
  }
  return text;
}

export function consumerLabel(consumer: ConsumerLike | undefined, perConsumer: boolean): string {
  if (!perConsumer || consumer === undefined) return "";
  return labelText(consumer.username ?? consumer.custom_id ?? consumer.id);
}

/** Name, else id, as Kong's exporter does. */
export function routeLabel(route: RouteLike | undefined): string {
  if (route === undefined) return "";
  return labelText(route.name ?? route.id);
}

// gpt-4o-2024-08-06, Qwen/Qwen2.5-0.5B-Instruct, llama3.1:8b, claude-3-5-sonnet@20240620.
const MODEL_PATTERN = "^[%w][%w%.%-_:/@+]*$";

let seenModels: { [model: string]: true | undefined } = {};
let seenModelCount = 0;

/** A listed name, else (no list) a model-like name among the first MAX_MODELS_PER_WORKER this worker saw, else "other". */
export function modelLabel(model: unknown, known: readonly string[]): string {
  if (typeof model !== "string" || model === "") return MODEL_UNKNOWN;
  if (known.length > 0) {
    for (const name of known) {
      if (name === model) return labelText(model);
    }
    return MODEL_OTHER;
  }
  if (model.length > MAX_LABEL_BYTES || string.find(model, MODEL_PATTERN)[0] === undefined) return MODEL_OTHER;
  if (seenModels[model] === true) return model;
  if (seenModelCount >= MAX_MODELS_PER_WORKER) return MODEL_OTHER;
  seenModels[model] = true;
  seenModelCount += 1;
  return model;
}

/** For tests. */
export function resetModelLabels(): void {
  seenModels = {};
  seenModelCount = 0;
}

function oneOf(value: string, allowed: readonly string[]): string {
  for (const a of allowed) {
    if (a === value) return value;
  }
  return "other";
}

interface Registered {
  tokens: KongPrometheusCounter | undefined;
  refusals: KongPrometheusCounter | undefined;
  guard: KongPrometheusCounter | undefined;
  streams: KongPrometheusCounter | undefined;
  ttft: KongPrometheusHistogram | undefined;
}

const PROMETHEUS_HANDLER = "kong.plugins.prometheus.handler";
const PROMETHEUS_EXPORTER = "kong.plugins.prometheus.exporter";

let registered: Registered | undefined;
let unavailable = false;

function isExporter(value: unknown): value is KongPrometheusExporter {
  return typeof value === "object" && value !== null && "get_prometheus" in value && typeof value.get_prometheus === "function";
}

/**
 * Undefined unless the prometheus plugin's handler is loaded: it initialises the exporter, without
 * which get_prometheus() logs an error at every call.
 */
export function prometheusRegistry(): KongPrometheus | undefined {
  if (_G.package.loaded[PROMETHEUS_HANDLER] === undefined) return undefined;
  const [ok, mod] = pcall(require, PROMETHEUS_EXPORTER);
  const exporter: unknown = mod;
  if (!ok || !isExporter(exporter)) return undefined;
  return exporter.get_prometheus();
}

function register(prometheus: KongPrometheus): Registered {
  return {
    tokens: prometheus.counter(
      TOKENS_METRIC,
      "LLM tokens per consumer, route and model; kind prompt|completion, source reported (all counts from the upstream's usage) or estimated",
      ["consumer", "route", "model", "kind", "source"],
    ),
    refusals: prometheus.counter(REFUSALS_METRIC, "Requests refused by token-rate-limiting per consumer and route", ["consumer", "route"]),
    guard: prometheus.counter(GUARD_METRIC, "prompt-guard decisions per route, rule and action (allowed, blocked, monitored)", ["route", "rule", "action"]),
    streams: prometheus.counter(STREAM_ENDINGS_METRIC, "Responses by how they ended, per route (upstream-disconnect-log outcomes)", ["route", "outcome"]),
    ttft: prometheus.histogram(TTFT_METRIC, "Time from the request to the first generated token, per route and model (ms)", ["route", "model"], TTFT_BUCKETS_MS),
  };
}

function metrics(): Registered | undefined {
  if (registered !== undefined) return registered;
  if (unavailable) return undefined;
  // Not every plugin handler is loaded yet in the init phase.
  if (ngx.get_phase() === "init") return undefined;
  const prometheus = prometheusRegistry();
  if (prometheus === undefined) {
    unavailable = true;
    return undefined;
  }
  registered = register(prometheus);
  return registered;
}

/** Call from init_worker. Once per worker: Kong's registry counts a second registration as an error. */
export function init(): boolean {
  return metrics() !== undefined;
}

/** Lets a plugin look up the consumer and route only when they will be counted. */
export function counting(conf: MetricsConf): boolean {
  return conf.enabled && metrics() !== undefined;
}

/** kong.ctx.shared keys: one plugin records per request. */
export const TOKENS_RECORDED_KEY = "ai_gateway_metrics_tokens";
export const TTFT_RECORDED_KEY = "ai_gateway_metrics_ttft";

declare global {
  interface KongSharedCtx {
    [TOKENS_RECORDED_KEY]?: boolean;
    [TTFT_RECORDED_KEY]?: boolean;
  }
}

export interface TokenCounts {
  readonly prompt: number;
  readonly completion: number;
  readonly estimated: boolean;
  /** "not_proxied" and "websocket" are not counted. */
  readonly source?: string;
}

/** Once per request: the first plugin (highest PRIORITY) to call it counts. */
export function recordTokens(
  conf: MetricsConf,
  consumer: ConsumerLike | undefined,
  route: RouteLike | undefined,
  model: unknown,
  tokens: TokenCounts,
): boolean {
  if (!conf.enabled || tokens.source === "not_proxied" || tokens.source === "websocket") return false;
  const shared = kong.ctx.shared;
  if (shared[TOKENS_RECORDED_KEY] === true) return false;
  const counter = metrics()?.tokens;
  if (counter === undefined) return false;
  shared[TOKENS_RECORDED_KEY] = true;
  const labels = [
    consumerLabel(consumer, conf.per_consumer),
    routeLabel(route),
    modelLabel(model, conf.models),
    "prompt",
    tokens.estimated ? "estimated" : "reported",
  ];
  if (tokens.prompt > 0) counter.inc(tokens.prompt, labels);
  labels[3] = "completion";
  if (tokens.completion > 0) counter.inc(tokens.completion, labels);
  return true;
}

export function recordRefusal(conf: MetricsConf, consumer: ConsumerLike | undefined, route: RouteLike | undefined): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.refusals;
  if (counter === undefined) return false;
  counter.inc(1, [consumerLabel(consumer, conf.per_consumer), routeLabel(route)]);
  return true;
}

export function recordGuardDecision(conf: MetricsConf, route: RouteLike | undefined, rule: string | undefined, action: string): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.guard;
  if (counter === undefined) return false;
  counter.inc(1, [routeLabel(route), labelText(rule), oneOf(action, GUARD_ACTIONS)]);
  return true;
}

export function recordStreamEnd(conf: MetricsConf, route: RouteLike | undefined, outcome: string): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.streams;
  if (counter === undefined) return false;
  counter.inc(1, [routeLabel(route), oneOf(outcome, STREAM_OUTCOMES)]);
  return true;
}

/** Once per request. */
export function recordTimeToFirstToken(conf: MetricsConf, route: RouteLike | undefined, model: unknown, ms: number): boolean {
  // NaN (ms !== ms), negative and infinite durations are measurement errors
  if (!conf.enabled || ms !== ms || ms < 0 || ms === math.huge) return false;
  const shared = kong.ctx.shared;
  if (shared[TTFT_RECORDED_KEY] === true) return false;
  const histogram = metrics()?.ttft;
  if (histogram === undefined) return false;
  shared[TTFT_RECORDED_KEY] = true;
  histogram.observe(ms, [routeLabel(route), modelLabel(model, conf.models)]);
  return true;
}
