// The access decision from counter values, and the response headers that tell the client.
// The Redis script runs the same rule to reserve atomically.

import type { Limit } from "./limits";
import {
  PERIOD_TITLES,
  PERIODS,
  type CounterValues,
  type CounterWindow,
  type Period,
  isExhausted,
  remainingTokens,
  secondsToWindowEnd,
  secondsUntilAdmitted,
  usedEstimate,
  type WindowPosition,
  type WindowType,
} from "./windows";

export interface WindowCount {
  limit: Limit;
  pos: WindowPosition;
  current: number;
  /** Sliding only. */
  previous: number;
}

export interface WindowStatus {
  limit: Limit;
  /** Before this request. */
  used: number;
  /** After this request's reservation. */
  remaining: number;
  exhausted: boolean;
  /** Exhausted: until it admits again. */
  reset: number;
}

export interface Admission {
  admitted: boolean;
  windows: WindowStatus[];
  retryAfter: number;
}

export function countsOf(windows: readonly CounterWindow[], values: readonly CounterValues[]): WindowCount[] {
  const counts: WindowCount[] = [];
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    counts.push({ limit: w.limit, pos: w.pos, current: values[i].current, previous: values[i].previous });
  }
  return counts;
}

export function admit(windowType: WindowType, counts: WindowCount[], reserved: number): Admission {
  const windows: WindowStatus[] = [];
  let admitted = true;
  let retryAfter = 0;
  for (const count of counts) {
    const used = usedEstimate(windowType, count.pos, count.current, count.previous);
    const exhausted = isExhausted(count.limit.tokens, used);
    let reset: number;
    if (exhausted) {
      admitted = false;
      reset = secondsUntilAdmitted(windowType, count.limit.tokens, count.pos, count.current, count.previous);
      retryAfter = Math.max(retryAfter, reset);
    } else {
      reset = secondsToWindowEnd(count.pos);
    }
    windows.push({ limit: count.limit, used, remaining: 0, exhausted, reset });
  }
  for (const w of windows) {
    w.remaining = w.exhausted ? 0 : remainingTokens(w.limit.tokens, w.used + (admitted ? reserved : 0));
  }
  return { admitted, windows, retryAfter };
}

// The IETF RateLimit-* trio shows the most restrictive window.
function int(value: number): string {
  return string.format("%d", value);
}

function moreRestrictive(a: WindowStatus, b: WindowStatus | undefined): boolean {
  if (b === undefined) return true;
  if (a.remaining !== b.remaining) return a.remaining < b.remaining;
  return a.reset > b.reset;
}

const LIMIT_HEADERS = {} as { [P in Period]: string };
const REMAINING_HEADERS = {} as { [P in Period]: string };
for (const period of PERIODS) {
  LIMIT_HEADERS[period] = `X-RateLimit-Limit-Tokens-${PERIOD_TITLES[period]}`;
  REMAINING_HEADERS[period] = `X-RateLimit-Remaining-Tokens-${PERIOD_TITLES[period]}`;
}

export function rateLimitHeaders(admission: Admission): Record<string, string> {
  const headers: Record<string, string> = {};
  let overall: WindowStatus | undefined;
  for (const period of PERIODS) {
    let chosen: WindowStatus | undefined;
    for (const w of admission.windows) {
      if (w.limit.period === period && moreRestrictive(w, chosen)) chosen = w;
    }
    if (chosen === undefined) continue;
    headers[LIMIT_HEADERS[period]] = int(chosen.limit.tokens);
    headers[REMAINING_HEADERS[period]] = int(chosen.remaining);
    if (moreRestrictive(chosen, overall)) overall = chosen;
  }
  if (overall !== undefined) {
    headers["RateLimit-Limit"] = int(overall.limit.tokens);
    headers["RateLimit-Remaining"] = int(overall.remaining);
    headers["RateLimit-Reset"] = int(overall.reset);
  }
  if (!admission.admitted) headers["Retry-After"] = int(admission.retryAfter);
  return headers;
}
