// What a request costs against the limits: what access reserves for it (an upper bound when
// reserve_max_tokens is on), and what it is finally counted at from the tokens the upstream
// reported (or the shared estimate), weighted per tokens_count.

import { tokensOf, type TokenInputs, type Tokens } from "../ai-gateway-shared/tokens";

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

/**
 * Prompt tokens a request can cost at most, as far as its bytes tell: every token of a byte-level
 * tokenizer covers at least one byte of the text, and every message's JSON framing in the body
 * (`{"role":"user","content":""}`, 27 bytes and more) is longer than the chat template's tokens
 * for it. `overhead` covers what a template adds once (a default system prompt, headers) and what
 * the body does not show (an image given by URL, tool definitions expanded by the template).
 */
export function promptBound(bodyBytes: number, overhead: number): number {
  return Math.max(0, bodyBytes) + Math.max(0, overhead);
}

/** Units reserved in access: the worst case, the prompt bound plus the reservable completion. */
export function reservationOf(conf: CostConfig, promptTokens: number, maxTokens: number | undefined, cap: number): number {
  return costOf(conf, promptTokens, completionReservation(maxTokens, cap));
}

/**
 * What settlement adds to each window the request was admitted in: the real cost minus what
 * access already reserved there (negative when the response was smaller than the worst case).
 */
export function settlementDelta(realCost: number, reserved: number): number {
  return realCost - reserved;
}

export interface Counted extends Tokens {
  /** Units charged against the limits (per tokens_count). */
  cost: number;
}

/**
 * What a finished request costs: the tokens the shared rule counts (the upstream's own usage
 * when it reported it, else the documented estimate; zero for responses that generated
 * nothing), weighted per tokens_count.
 */
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
