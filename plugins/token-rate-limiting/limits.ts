// The limits that apply to one request: the plugin-wide ones, plus those of `model_limits`
// whose model is the request's model. Each has its own counters.

import { ALL_MODELS } from "./keys";
import { PERIODS, type Period } from "./windows";

export interface PeriodLimits {
  second?: number | null;
  minute?: number | null;
  hour?: number | null;
  day?: number | null;
  month?: number | null;
}

export interface ModelLimit extends PeriodLimits {
  model: string;
}

export interface LimitsConfig extends PeriodLimits {
  model_limits?: ModelLimit[] | null;
}

export interface LimitSpec {
  /** ALL_MODELS for the plugin-wide limits, else the model name. */
  model: string;
  period: Period;
  limit: number;
}

// A limit is set when it is a number: an unset field may reach conf as nil or as ngx.null.
function isSet(value: number | null | undefined): value is number {
  return typeof value === "number";
}

function addPeriods(specs: LimitSpec[], limits: PeriodLimits, model: string): void {
  for (const period of PERIODS) {
    const limit = limits[period];
    if (isSet(limit)) specs.push({ model, period, limit });
  }
}

export function limitsFor(conf: LimitsConfig, model: string | undefined): LimitSpec[] {
  const specs: LimitSpec[] = [];
  addPeriods(specs, conf, ALL_MODELS);
  if (model !== undefined && conf.model_limits !== undefined && conf.model_limits !== null) {
    for (const entry of conf.model_limits) {
      if (entry.model === model) addPeriods(specs, entry, model);
    }
  }
  return specs;
}

/** Whether the config has any limit at all (the schema requires one). */
export function hasAnyLimit(conf: LimitsConfig): boolean {
  for (const period of PERIODS) if (isSet(conf[period])) return true;
  if (conf.model_limits !== undefined && conf.model_limits !== null) {
    for (const entry of conf.model_limits) {
      for (const period of PERIODS) if (isSet(entry[period])) return true;
    }
  }
  return false;
}
