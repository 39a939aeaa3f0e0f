// Which budgets a request spends: the limits that apply to it, and whose budget it is (falling
// back to the client IP when the `limit_by` entity is absent, as Kong's rate-limiting does).

import { ALL_MODELS, PERIODS, type Period } from "./windows";

export interface PeriodLimits {
  readonly second?: number | null;
  readonly minute?: number | null;
  readonly hour?: number | null;
  readonly day?: number | null;
  readonly month?: number | null;
}

export interface ModelLimit extends PeriodLimits {
  readonly model: string;
}

export interface LimitsConfig extends PeriodLimits {
  readonly model_limits?: readonly ModelLimit[] | null;
}

export interface Limit {
  /** ALL_MODELS for the plugin-wide limits. */
  model: string;
  period: Period;
  tokens: number;
}

// An unset field may reach conf as nil or as ngx.null.
function isSet(value: number | null | undefined): value is number {
  return typeof value === "number";
}

function addPeriods(limits: Limit[], periodLimits: PeriodLimits, model: string): void {
  for (const period of PERIODS) {
    const limit = periodLimits[period];
    if (isSet(limit)) limits.push({ model, period, tokens: limit });
  }
}

export function limitsFor(conf: LimitsConfig, model: string | undefined): Limit[] {
  const limits: Limit[] = [];
  addPeriods(limits, conf, ALL_MODELS);
  if (model !== undefined && conf.model_limits !== undefined && conf.model_limits !== null) {
    for (const entry of conf.model_limits) {
      if (entry.model === model) addPeriods(limits, entry, model);
    }
  }
  return limits;
}

export function hasModelLimits(conf: LimitsConfig): boolean {
  return conf.model_limits !== undefined && conf.model_limits !== null && conf.model_limits.length > 0;
}

export function hasAnyLimit(conf: LimitsConfig): boolean {
  for (const period of PERIODS) if (isSet(conf[period])) return true;
  if (conf.model_limits !== undefined && conf.model_limits !== null) {
    for (const entry of conf.model_limits) {
      for (const period of PERIODS) if (isSet(entry[period])) return true;
    }
  }
  return false;
}

export type LimitBy = "consumer" | "credential" | "consumer_group" | "ip" | "header" | "path" | "service" | "route";

export interface IdentifierConfig {
  readonly limit_by: LimitBy;
  readonly header_name?: string | null;
  readonly path?: string | null;
}

/** Each getter is only called when limit_by needs it. */
export interface IdentitySources {
  consumerId(this: void): string | undefined;
  credentialId(this: void): string | undefined;
  /** Undefined where Kong has no consumer groups (OSS). */
  consumerGroups(this: void): string[] | undefined;
  forwardedIp(this: void): string;
  header(this: void, name: string): string | undefined;
  path(this: void): string;
  serviceId(this: void): string | undefined;
  routeId(this: void): string | undefined;
}

function present(value: string | undefined | null): value is string {
  return typeof value === "string" && value !== "";
}

/** Prefixed by its kind, so that a header value can never collide with another client's IP. */
export function identifierOf(conf: IdentifierConfig, from: IdentitySources): string {
  const by = conf.limit_by;
  let id: string | undefined;
  if (by === "consumer") {
    id = from.consumerId() ?? from.credentialId();
    if (present(id)) return `consumer:${id}`;
  } else if (by === "credential") {
    id = from.credentialId();
    if (present(id)) return `credential:${id}`;
  } else if (by === "consumer_group") {
    const groups = from.consumerGroups();
    if (groups !== undefined && groups.length > 0) {
      const names = [...groups];
      names.sort();
      return `group:${names.join(",")}`;
    }
    id = from.consumerId() ?? from.credentialId();
    if (present(id)) return `consumer:${id}`;
  } else if (by === "header") {
    if (present(conf.header_name)) {
      id = from.header(conf.header_name);
      if (present(id)) return `header:${id}`;
    }
  } else if (by === "path") {
    // Kong's meaning: the limit applies to requests for exactly this path; others by IP.
    id = from.path();
    if (present(conf.path) && id === conf.path) return `path:${id}`;
  } else if (by === "service") {
    id = from.serviceId();
    if (present(id)) return `service:${id}`;
  } else if (by === "route") {
    id = from.routeId();
    if (present(id)) return `route:${id}`;
  }
  return `ip:${from.forwardedIp()}`;
}
