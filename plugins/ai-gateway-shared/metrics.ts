/**
 * The gateway's own Prometheus metrics, registered on the registry of Kong's bundled prometheus
 * plugin, so that they come out of the /metrics Kong already serves (status listener or Admin API)
 * with Kong's `kong_` prefix:
 *
 *   kong_ai_gateway_tokens_total{consumer,route,model,kind,source}        counter
 *   kong_ai_gateway_token_limit_refusals_total{consumer,route}            counter
 *   kong_ai_gateway_prompt_guard_decisions_total{route,rule,action}       counter
 *   kong_ai_gateway_stream_endings_total{route,outcome}                   counter
 *   kong_ai_gateway_time_to_first_token_ms{route,model}                   histogram
 *
 * Registration never fails a plugin: when Kong's prometheus plugin is not loaded (not in
 * `plugins`), every record function is a no-op. The registry is per worker, so register from each
 * plugin's init_worker (init()); the record functions also register on first use.
 *
 * Label cardinality: the consumer label is "" unless the plugin's `metrics.per_consumer` is on;
 * route and consumer are operator-defined names; a model name comes from the client, so it passes
 * only when it is in `metrics.models` (when that list is set), else when it looks like a model name
 * and this worker has seen fewer than MAX_MODELS_PER_WORKER others; everything else is "other"
 * ("unknown" when the request named none). Label values never carry prompt text or credentials:
 * only names, fixed words and numbers reach them.
 */

/** Every metric here starts with this; Kong's exporter writes `kong_` before it. */
export const METRIC_PREFIX = "ai_gateway_";
export const TOKENS_METRIC = "ai_gateway_tokens_total";
export const REFUSALS_METRIC = "ai_gateway_token_limit_refusals_total";
export const GUARD_METRIC = "ai_gateway_prompt_guard_decisions_total";
export const STREAM_ENDINGS_METRIC = "ai_gateway_stream_endings_total";
export const TTFT_METRIC = "ai_gateway_time_to_first_token_ms";

/** Upper bounds of the time-to-first-token histogram, milliseconds (Kong's own histograms are in ms). */
export const TTFT_BUCKETS_MS: readonly number[] = [
  25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000,
];

export const MODEL_UNKNOWN = "unknown";
export const MODEL_OTHER = "other";
/** Distinct model label values one worker gives out when no `models` list is configured. */
export const MAX_MODELS_PER_WORKER = 64;
/** Longest label value kept (bytes), and longest model name accepted. */
export const MAX_LABEL_BYTES = 128;

/** Outcomes of upstream-disconnect-log; anything else is counted as "other". */
export const STREAM_OUTCOMES: readonly string[] = [
  "completed", "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit",
];
/** prompt-guard's actions; anything else is counted as "other". */
export const GUARD_ACTIONS: readonly string[] = ["allowed", "blocked", "monitored"];

/** The `metrics` record of a plugin's config (METRICS_FIELD). */
export interface MetricsConf {
  readonly enabled: boolean;
  readonly per_consumer: boolean;
  readonly models: readonly string[];
  readonly ai_analytics: boolean;
}

/**
 * The config field each plugin puts in its `config.fields` (`fields: [..., METRICS_FIELD]`), so
 * that the three plugins spell it the same way.
 */
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

// --------------------------------------------------------------------------------------------
// Labels (pure)

/** A consumer as the PDK gives it (kong.client.get_consumer()). */
export interface ConsumerLike {
  readonly id?: string;
  readonly username?: string;
  readonly custom_id?: string;
}

/** A route as the PDK gives it (kong.router.get_route()). */
export interface RouteLike {
  readonly id?: string;
  readonly name?: string;
}

/**
 * A label value from a name: control characters removed, at most MAX_LABEL_BYTES bytes (cut
 * before a UTF-8 continuation byte). Numbers are written as numbers; anything else is "".
 */
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

/** The route's name, else its id (Kong's exporter does the same). */
export function routeLabel(route: RouteLike | undefined): string {
  if (route === undefined) return "";
  return labelText(route.name ?? route.id);
}

// Model names as providers and servers write them: gpt-4o-2024-08-06, Qwen/Qwen2.5-0.5B-Instruct,
// llama3.1:8b, claude-3-5-sonnet@20240620. No spaces, quotes or other punctuation.
const MODEL_PATTERN = "^[%w][%w%.%-_:/@+]*$";

let seenModels: { [model: string]: true | undefined } = {};
let seenModelCount = 0;

/** The model label: see the module comment. Per worker (the count of names seen). */
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

/** Forgets the model names this worker has given out (tests). */
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

// --------------------------------------------------------------------------------------------
// Registration

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
 * Kong's prometheus registry, or undefined when the prometheus plugin is not loaded. Kong loads
 * the handler of every plugin in `plugins` at start, and that handler initialises the exporter;
 * without it get_prometheus() would log an error at every call, so it is not asked.
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
  // In the init phase not every plugin handler is loaded yet: decide in the worker.
  if (ngx.get_phase() === "init") return undefined;
  const prometheus = prometheusRegistry();
  if (prometheus === undefined) {
    unavailable = true;
    return undefined;
  }
  registered = register(prometheus);
  return registered;
}

/**
 * Registers the metrics in this worker (call it from each plugin's init_worker). True when Kong's
 * prometheus registry is there. Registers once per worker whoever calls it: Kong's registry would
 * refuse (and count as an error) a second registration of a name.
 */
export function init(): boolean {
  return metrics() !== undefined;
}

/**
 * Whether this plugin's metrics are counted on this request (enabled, and Kong's registry is
 * there): a plugin looks up the labels' consumer and route only then.
 */
export function counting(conf: MetricsConf): boolean {
  return conf.enabled && metrics() !== undefined;
}

// --------------------------------------------------------------------------------------------
// Recording (log phase)

/** kong.ctx.shared keys: what was already recorded for this request (one plugin records it). */
export const TOKENS_RECORDED_KEY = "ai_gateway_metrics_tokens";
export const TTFT_RECORDED_KEY = "ai_gateway_metrics_ttft";

declare global {
  interface KongSharedCtx {
    [TOKENS_RECORDED_KEY]?: boolean;
    [TTFT_RECORDED_KEY]?: boolean;
  }
}

/** The counts of a request (tokens.ts's Tokens fits). */
export interface TokenCounts {
  readonly prompt: number;
  readonly completion: number;
  readonly estimated: boolean;
  /** tokens.ts's source: "not_proxied" and "websocket" are not counted. */
  readonly source?: string;
}

/**
 * Counts a request's tokens, once per request: the first plugin (highest PRIORITY) with metrics
 * enabled that calls it counts, the others' calls return false.
 */
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

/** Counts one request refused for its token limit. */
export function recordRefusal(conf: MetricsConf, consumer: ConsumerLike | undefined, route: RouteLike | undefined): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.refusals;
  if (counter === undefined) return false;
  counter.inc(1, [consumerLabel(consumer, conf.per_consumer), routeLabel(route)]);
  return true;
}

/** Counts one prompt-guard decision; `rule` is the rule's configured name or path ("" when none). */
export function recordGuardDecision(conf: MetricsConf, route: RouteLike | undefined, rule: string | undefined, action: string): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.guard;
  if (counter === undefined) return false;
  counter.inc(1, [routeLabel(route), labelText(rule), oneOf(action, GUARD_ACTIONS)]);
  return true;
}

/** Counts how one response ended (upstream-disconnect-log's outcome). */
export function recordStreamEnd(conf: MetricsConf, route: RouteLike | undefined, outcome: string): boolean {
  if (!conf.enabled) return false;
  const counter = metrics()?.streams;
  if (counter === undefined) return false;
  counter.inc(1, [routeLabel(route), oneOf(outcome, STREAM_OUTCOMES)]);
  return true;
}

/** Observes the time to the first generated token (ms), once per request. */
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
