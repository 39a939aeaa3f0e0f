// Response headers that tell a client its token budget: one Limit/Remaining pair per period,
// the IETF RateLimit-* trio for the most restrictive window, and Retry-After on 429.

import type { Admission, WindowStatus } from "./admission";
import { PERIOD_TITLES, PERIODS, type Period } from "./windows";

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
      if (w.spec.period === period && moreRestrictive(w, chosen)) chosen = w;
    }
    if (chosen === undefined) continue;
    headers[LIMIT_HEADERS[period]] = int(chosen.spec.limit);
    headers[REMAINING_HEADERS[period]] = int(chosen.remaining);
    if (moreRestrictive(chosen, overall)) overall = chosen;
  }
  if (overall !== undefined) {
    headers["RateLimit-Limit"] = int(overall.spec.limit);
    headers["RateLimit-Remaining"] = int(overall.remaining);
    headers["RateLimit-Reset"] = int(overall.reset);
  }
  if (!admission.admitted) headers["Retry-After"] = int(admission.retryAfter);
  return headers;
}
