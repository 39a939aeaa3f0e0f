// The access decision from counter values: is any window exhausted, what remains in each, and
// when the client may retry; and the response headers that tell the client so. Both policies
// feed it the counts they read (Redis runs the same rule inside its script to reserve
// atomically).

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
  /** Current window's counter before this request. */
  current: number;
  /** Previous window's counter (sliding only; 0 otherwise). */
  previous: number;
}

export interface WindowStatus {
  limit: Limit;
  /** Used estimate before this request. */
  used: number;
  /** Whole tokens left after this request's reservation (0 when exhausted). */
  remaining: number;
  exhausted: boolean;
  /** Seconds until the window resets (exhausted: until it admits again). */
  reset: number;
}

export interface Admission {
  admitted: boolean;
  windows: WindowStatus[];
  /** Seconds until every exhausted window admits again; 0 when admitted. */
  retryAfter: number;
}

/** The counts of each window, as a policy read them. */
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

// Response headers that tell a client its token budget: one Limit/Remaining pair per period,
// the IETF RateLimit-* trio for the most restrictive window, and Retry-After on 429.

function int(value: number): string {
  return string.format("%d", value);
}

// Most restrictive: fewest tokens left; on a tie, the one that takes longer to reset.
function moreRestrictive(a: WindowStatus, b: WindowStatus | undefined): boolean {
  if (b === undefined) return true;
  if (a.remaining !== b.remaining) return a.remaining < b.remaining;
  return a.reset > b.reset;
}

// The header names, built once rather than on every response.
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
