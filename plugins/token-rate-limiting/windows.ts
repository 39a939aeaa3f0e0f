// The counter windows of token limits: boundaries, usage, retry times and counter names. Pure
// functions of the time they are given, so the boundaries can be tested without nginx.

import type { Limit } from "./limits";

export type Period = "second" | "minute" | "hour" | "day" | "month";
export type WindowType = "fixed" | "sliding";

/** Shortest first. */
export const PERIODS: Period[] = ["second", "minute", "hour", "day", "month"];

export const PERIOD_TITLES: { [P in Period]: string } = {
  second: "Second",
  minute: "Minute",
  hour: "Hour",
  day: "Day",
  month: "Month",
};

const FIXED_LENGTHS: { [P in Period]: number } = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  // Calendar months (UTC) as in Kong's rate-limiting; this upper bound only serves key expiry.
  month: 31 * 86400,
};

const DAY = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return [year, month, day];
}

function monthStart(now: number): number {
  const [year, month] = civilFromDays(Math.floor(now / DAY));
  return daysFromCivil(year, month, 1) * DAY;
}

export function windowStart(now: number, period: Period): number {
  if (period === "month") return monthStart(now);
  const length = FIXED_LENGTHS[period];
  return Math.floor(now / length) * length;
}

export function windowLength(start: number, period: Period): number {
  if (period !== "month") return FIXED_LENGTHS[period];
  const [year, month] = civilFromDays(Math.floor(start / DAY));
  const nextYear = month === 12 ? year + 1 : year;
  const nextMonth = month === 12 ? 1 : month + 1;
  return daysFromCivil(nextYear, nextMonth, 1) * DAY - start;
}

export function previousWindowStart(start: number, period: Period): number {
  if (period !== "month") return start - FIXED_LENGTHS[period];
  return monthStart(start - 1);
}

/**
 * A sliding window is also read as the previous one, so it outlives the next. One extra window
 * (at least a minute) lets a long stream settle into its window after that window ended.
 */
export function counterTtl(period: Period, windowType: WindowType): number {
  const length = FIXED_LENGTHS[period];
  const windows = windowType === "sliding" ? 2 : 1;
  return windows * length + Math.max(length, 60);
}

/** Computed once in access, reused by settlement. */
export interface WindowPosition {
  period: Period;
  start: number;
  length: number;
  previousStart: number;
  elapsed: number;
}

export function windowPosition(now: number, period: Period): WindowPosition {
  const start = windowStart(now, period);
  return {
    period,
    start,
    length: windowLength(start, period),
    previousStart: previousWindowStart(start, period),
    elapsed: now - start,
  };
}

/** Sliding: the previous window's count weighted by how much of it still overlaps, plus the current. */
export function usedEstimate(windowType: WindowType, pos: WindowPosition, current: number, previous: number): number {
  if (windowType === "fixed" || previous <= 0) return current;
  const overlap = (pos.length - pos.elapsed) / pos.length;
  return current + previous * Math.max(0, Math.min(1, overlap));
}

/** A fractional sliding estimate is rounded against the client. */
export function remainingTokens(limit: number, used: number): number {
  return Math.max(0, Math.floor(limit - used));
}

/** At least 1, as Kong's RateLimit-Reset. */
export function secondsToWindowEnd(pos: WindowPosition): number {
  return Math.max(1, Math.ceil(pos.length - pos.elapsed));
}

export function isExhausted(limit: number, used: number): boolean {
  return remainingTokens(limit, used) <= 0;
}

/**
 * Until the used estimate drops to `limit - 1`. Sliding: when the current count alone fills the
 * limit, the next window must decay it in turn.
 */
export function secondsUntilAdmitted(
  windowType: WindowType,
  limit: number,
  pos: WindowPosition,
  current: number,
  previous: number,
): number {
  const toEnd = pos.length - pos.elapsed;
  const budget = limit - 1;
  if (windowType === "fixed" || budget < 0) return Math.max(1, Math.ceil(toEnd));
  if (current <= budget) {
    if (previous <= 0) return 1;
    // current + previous * (length - t) / length <= budget
    //   <=>  t >= length * (1 - (budget - current) / previous)
    const at = pos.length * (1 - (budget - current) / previous);
    return Math.max(1, Math.ceil(at - pos.elapsed));
  }
  // In the next window (its own length, for months): current * (nextLength - t) / nextLength <= budget.
  const nextLength = pos.period === "month" ? windowLength(pos.start + pos.length, "month") : pos.length;
  const intoNext = nextLength * (1 - budget / current);
  return Math.max(1, Math.ceil(toEnd + intoNext));
}

// Counter names, shared by the local dict and Redis. As in Kong's rate-limiting, a global
// instance shares one budget across routes.

export const KEY_PREFIX = "token_rate_limiting";
const EMPTY_UUID = "00000000-0000-0000-0000-000000000000";
export const ALL_MODELS = "*";

// Identifiers come from clients: long ones are hashed to bound counter names.
const MAX_PART_LENGTH = 128;

export interface KeyScope {
  route_id?: string | null;
  service_id?: string | null;
}

const ESCAPES: Record<string, string> = { "%": "%25", ":": "%3A", "{": "%7B", "}": "%7D" };

/** `:` separates key parts and `{}` delimit the Redis Cluster hash tag. */
export function escapePart(part: string): string {
  if (string.find(part, "[%%:{}]")[0] === undefined) return part;
  const [escaped] = string.gsub(part, "[%%:{}]", ESCAPES);
  return escaped;
}

function boundedPart(part: string, hash: (this: void, s: string) => string): string {
  if (part.length <= MAX_PART_LENGTH) return escapePart(part);
  return `#${hash(part)}`;
}

function idOrEmpty(id: string | null | undefined): string {
  return typeof id !== "string" || id === "" ? EMPTY_UUID : id;
}

/**
 * `token_rate_limiting:{<route>:<service>:<identifier>}:<model or *>:<period>:<start>`. The hash
 * tag keeps one request's counters in one Redis Cluster slot, so one script updates them all.
 */
export function counterKey(
  scope: KeyScope,
  identifier: string,
  model: string,
  period: Period,
  start: number,
  hash: (this: void, s: string) => string,
): string {
  return [
    KEY_PREFIX,
    `{${idOrEmpty(scope.route_id)}`,
    idOrEmpty(scope.service_id),
    `${boundedPart(identifier, hash)}}`,
    model === ALL_MODELS ? ALL_MODELS : boundedPart(model, hash),
    period,
    string.format("%d", start),
  ].join(":");
}

/** Reused by settlement, so a request that races a window boundary settles where it was admitted. */
export interface CounterWindow {
  limit: Limit;
  pos: WindowPosition;
  key: string;
  /** Sliding windows only. */
  prevKey?: string;
  /** 0 for fixed windows. */
  overlap: number;
  ttl: number;
}

/** Before this request's reservation. */
export interface CounterValues {
  current: number;
  previous: number;
}

export interface Adjustment {
  key: string;
  delta: number;
  ttl: number;
}

export function counterWindows(
  limits: Limit[],
  windowType: WindowType,
  now: number,
  scope: KeyScope,
  identifier: string,
  hash: (this: void, s: string) => string,
): CounterWindow[] {
  const out: CounterWindow[] = [];
  for (const limit of limits) {
    const pos = windowPosition(now, limit.period);
    const sliding = windowType === "sliding";
    out.push({
      limit,
      pos,
      key: counterKey(scope, identifier, limit.model, limit.period, pos.start, hash),
      prevKey: sliding ? counterKey(scope, identifier, limit.model, limit.period, pos.previousStart, hash) : undefined,
      overlap: sliding ? Math.max(0, Math.min(1, (pos.length - pos.elapsed) / pos.length)) : 0,
      ttl: counterTtl(limit.period, windowType),
    });
  }
  return out;
}

export function adjustments(windows: CounterWindow[], delta: number): Adjustment[] {
  const out: Adjustment[] = [];
  if (delta === 0) return out;
  for (const w of windows) out.push({ key: w.key, delta, ttl: w.ttl });
  return out;
}
