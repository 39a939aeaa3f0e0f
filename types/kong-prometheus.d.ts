// The metrics registry of Kong's bundled prometheus plugin, as other plugins reach it:
// `require("kong.plugins.prometheus.exporter").get_prometheus()` (Kong 3.9,
// kong/plugins/prometheus/exporter.lua and prometheus.lua). The registry and its metrics are Lua
// objects called with a colon (`prometheus:counter(...)`, `metric:inc(...)`), hence the `this`
// parameters. Kong adds the prefix `kong_` to every name when it writes the scrape.

/** What a label value may be: numbers are written with tostring. */
type KongPrometheusLabelValue = string | number;

/** A counter: `inc` adds (never a negative value). */
interface KongPrometheusCounter {
  /** Adds `value` (1 when omitted) to the sample of these label values, in declaration order. */
  inc(this: KongPrometheusCounter, value: number | undefined, labelValues?: readonly KongPrometheusLabelValue[]): void;
  /** Removes one sample. */
  del(this: KongPrometheusCounter, labelValues?: readonly KongPrometheusLabelValue[]): void;
  /** Removes every sample of the metric. */
  reset(this: KongPrometheusCounter): void;
}

/** A gauge: `set` replaces, `inc` adds (may be negative). */
interface KongPrometheusGauge {
  set(this: KongPrometheusGauge, value: number, labelValues?: readonly KongPrometheusLabelValue[]): void;
  inc(this: KongPrometheusGauge, value: number | undefined, labelValues?: readonly KongPrometheusLabelValue[]): void;
  del(this: KongPrometheusGauge, labelValues?: readonly KongPrometheusLabelValue[]): void;
  reset(this: KongPrometheusGauge): void;
}

/** A histogram: `observe` counts one value into `_count`, `_sum` and every bucket it fits. */
interface KongPrometheusHistogram {
  observe(this: KongPrometheusHistogram, value: number, labelValues?: readonly KongPrometheusLabelValue[]): void;
  reset(this: KongPrometheusHistogram): void;
}

/**
 * The registry. Registering a name twice, an invalid name or the label name `le` logs an error,
 * counts it in `kong_nginx_metric_errors_total` and returns nil.
 */
interface KongPrometheus {
  counter(this: KongPrometheus, name: string, help: string, labelNames?: readonly string[]): KongPrometheusCounter | undefined;
  /** `localStorage` (Kong's `prometheus.LOCAL_STORAGE`): kept in the worker, not the shared dict. */
  gauge(this: KongPrometheus, name: string, help: string, labelNames?: readonly string[], localStorage?: boolean): KongPrometheusGauge | undefined;
  /** `buckets`: upper bounds, ascending (the library's default: 5 ms to 10 s, in seconds). */
  histogram(this: KongPrometheus, name: string, help: string, labelNames?: readonly string[], buckets?: readonly number[]): KongPrometheusHistogram | undefined;
}

/**
 * The module `kong.plugins.prometheus.exporter` (only the part other plugins use).
 * @noSelf
 */
interface KongPrometheusExporter {
  /** The registry, or nil with an error logged when the prometheus plugin is not initialised. */
  get_prometheus(): KongPrometheus | undefined;
}
