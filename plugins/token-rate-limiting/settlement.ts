// What a finished request costs: the upstream's own usage when it reported it, else the
// documented estimate (shared estimate module), and the rules for responses that generated
// nothing.

import { estimateCompletionTokens } from "../ai-gateway-shared/estimate";
import type { UsageReport } from "../ai-gateway-shared/stream_usage";
import { costOf, type CostConfig } from "./cost";

export interface Counted {
  prompt: number;
  completion: number;
  total: number;
  /** Units charged against the limits (per tokens_count). */
  cost: number;
  /** At least one count is an estimate. */
  estimated: boolean;
  /** usage | estimate | partial_usage | upstream_error | not_proxied */
  source: string;
}

export interface Outcome {
  /** The response was produced by the gateway (a plugin's exit), not the upstream. */
  exited: boolean;
  /** Status the upstream answered with; undefined when it never answered (timeout, refused, abort before headers). */
  upstreamStatus: number | undefined;
  /** What the meter read; undefined when no body reached the plugin. */
  report: UsageReport | undefined;
  promptEstimate: number;
}

function zero(source: string): Counted {
  return { prompt: 0, completion: 0, total: 0, cost: 0, estimated: false, source };
}

function finite(value: number | undefined): value is number {
  return value !== undefined && value >= 0;
}

/**
 * - A gateway exit (this plugin's 429, another plugin's refusal): nothing was generated.
 * - The upstream answered 4xx without usage: it refused the request, nothing was generated.
 * - Usage reported: counts as reported. A stream that did not reach its end counts at least
 *   the text it visibly streamed (Anthropic's message_start says output_tokens 1 before any
 *   text), marked estimated when the estimate is the larger.
 * - No usage (upstream without it, client abort, upstream abort, timeout, 5xx): prompt
 *   estimate plus the estimate of the text streamed so far, marked estimated.
 */
export function countTokens(conf: CostConfig, outcome: Outcome): Counted {
  if (outcome.exited) return zero("not_proxied");
  const report = outcome.report;
  const streamedEstimate = report === undefined ? 0 : estimateCompletionTokens(report.content_chars);
  const status = outcome.upstreamStatus;

  if (report !== undefined && report.reported) {
    let estimated = false;
    let prompt = report.prompt_tokens;
    let completion = report.completion_tokens;
    const total = report.total_tokens;
    if (!finite(prompt)) {
      prompt = finite(total) && finite(completion) ? Math.max(0, total - completion) : outcome.promptEstimate;
      estimated = !(finite(total) && finite(completion));
    }
    if (!finite(completion)) {
      completion = finite(total) ? Math.max(0, total - prompt) : streamedEstimate;
      estimated = estimated || !finite(total);
    }
    if (!report.terminated && streamedEstimate > completion) {
      completion = streamedEstimate;
      estimated = true;
    }
    return {
      prompt,
      completion,
      total: prompt + completion,
      cost: costOf(conf, prompt, completion),
      estimated,
      source: estimated ? "partial_usage" : "usage",
    };
  }

  if (status !== undefined && status >= 400 && status < 500) return zero("upstream_error");

  const prompt = outcome.promptEstimate;
  const completion = streamedEstimate;
  return {
    prompt,
    completion,
    total: prompt + completion,
    cost: costOf(conf, prompt, completion),
    estimated: true,
    source: "estimate",
  };
}
