// What a request costs against the limits: reserved in access, settled in log.

import { tokensOf, type TokenInputs, type Tokens } from "../ai-gateway-shared/tokens";

export type TokensCount = "total" | "prompt" | "completion" | "cost";

export interface CostConfig {
  tokens_count: TokensCount;
  prompt_weight: number;
  completion_weight: number;
}

// Whole units keep counters exact (INCRBY in Redis, comparisons at the boundary). The epsilon
// absorbs binary fractions: 0.1 * 30 must cost 3, not 4.
const ROUNDING_SLACK = 1e-9;

function whole(value: number): number {
  if (value <= 0) return 0;
  return Math.ceil(value - ROUNDING_SLACK);
}

export function costOf(conf: CostConfig, prompt: number, completion: number): number {
  const p = Math.max(0, prompt);
  const c = Math.max(0, completion);
  if (conf.tokens_count === "prompt") return whole(p);
  if (conf.tokens_count === "completion") return whole(c);
  if (conf.tokens_count === "cost") return whole(p * conf.prompt_weight + c * conf.completion_weight);
  return whole(p + c);
}

export function completionReservation(maxTokens: number | undefined, cap: number): number {
  if (maxTokens === undefined || maxTokens <= 0) return cap;
  return Math.min(Math.floor(maxTokens), cap);
}

/**
 * A byte-level tokenizer's token covers at least one byte, and a message's JSON framing is longer
 * than its template tokens. `overhead` covers what the body does not show (template, tools, images).
 */
export function promptBound(bodyBytes: number, overhead: number): number {
  return Math.max(0, bodyBytes) + Math.max(0, overhead);
}

export function reservationOf(conf: CostConfig, promptTokens: number, maxTokens: number | undefined, cap: number): number {
  return costOf(conf, promptTokens, completionReservation(maxTokens, cap));
}

export function settlementDelta(realCost: number, reserved: number): number {
  return realCost - reserved;
}

export interface Counted extends Tokens {
  /** Per tokens_count. */
  cost: number;
}

export function countTokens(conf: CostConfig, inputs: TokenInputs): Counted {
  const t = tokensOf(inputs);
  return {
    prompt: t.prompt,
    completion: t.completion,
    total: t.total,
    cost: costOf(conf, t.prompt, t.completion),
    estimated: t.estimated,
    source: t.source,
  };
}
