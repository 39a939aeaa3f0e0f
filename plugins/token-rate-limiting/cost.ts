// Which tokens a request costs, and what the access phase reserves for it.

export type TokensCount = "total" | "prompt" | "completion" | "cost";

export interface CostConfig {
  tokens_count: TokensCount;
  prompt_weight: number;
  completion_weight: number;
}

// Weighted costs are rounded up to whole units per request, so counters stay integers
// (exact INCRBY in Redis, exact comparisons at the boundary). The epsilon absorbs binary
// fractions: 0.1 * 30 must cost 3, not 4.
const ROUNDING_SLACK = 1e-9;

function whole(value: number): number {
  if (value <= 0) return 0;
  return Math.ceil(value - ROUNDING_SLACK);
}

/** Units a request costs against the limits, from its prompt and completion token counts. */
export function costOf(conf: CostConfig, prompt: number, completion: number): number {
  const p = Math.max(0, prompt);
  const c = Math.max(0, completion);
  if (conf.tokens_count === "prompt") return whole(p);
  if (conf.tokens_count === "completion") return whole(c);
  if (conf.tokens_count === "cost") return whole(p * conf.prompt_weight + c * conf.completion_weight);
  return whole(p + c);
}

/**
 * Completion tokens a request may still produce, as far as the gateway can tell: its
 * max_tokens, capped by the configured cap; the cap when it set none.
 */
export function completionReservation(maxTokens: number | undefined, cap: number): number {
  if (maxTokens === undefined || maxTokens <= 0) return cap;
  return Math.min(Math.floor(maxTokens), cap);
}

/** Units reserved in access: the worst case, prompt estimate plus the reservable completion. */
export function reservationOf(conf: CostConfig, promptEstimate: number, maxTokens: number | undefined, cap: number): number {
  return costOf(conf, promptEstimate, completionReservation(maxTokens, cap));
}

/**
 * What settlement adds to each window the request was admitted in: the real cost minus what
 * access already reserved there (negative when the response was smaller than the worst case).
 */
export function settlementDelta(realCost: number, reserved: number): number {
  return realCost - reserved;
}
