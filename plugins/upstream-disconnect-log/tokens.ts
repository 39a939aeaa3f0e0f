// The tokens a record reports: the upstream's own usage when the shared usage reader saw it,
// else the shared estimate rule (ai-gateway-shared/estimate), combined the way
// token-rate-limiting settles a request (its settlement.countTokens, without the cost), so both
// plugins tell the same story about the same request.
//
// This combination belongs in ai-gateway-shared (a `tokensOf(report, promptEstimate)` both
// plugins call); until it moves there, this thin wrapper mirrors it.

import { estimateCompletionTokens } from "../ai-gateway-shared/estimate";
import type { UsageReport } from "../ai-gateway-shared/stream_usage";

export interface Tokens {
  prompt: number;
  completion: number;
  total: number;
  /** At least one count is the estimate rather than the upstream's usage. */
  estimated: boolean;
}

export interface TokenFacts {
  /** A plugin answered (nothing reached the model) or the response is a WebSocket tunnel: nothing to count. */
  uncounted: boolean;
  /** Status of the upstream's response, when it sent one. */
  upstreamStatus: number | undefined;
  /** What the usage reader read; undefined when no body reached the plugin. */
  report: UsageReport | undefined;
  /** The prompt estimate of the request body; called only when the upstream reported no prompt count. */
  promptEstimate: (this: void) => number;
}

function finite(value: number | undefined): value is number {
  return value !== undefined && value >= 0;
}

/**
 * - A gateway exit or a WebSocket tunnel: zero, not estimated.
 * - Usage reported: as reported; a missing count is derived from the total or estimated. A
 *   stream that did not reach its end counts at least the text it visibly streamed (Anthropic's
 *   message_start says output_tokens 1 before any text), marked estimated when that is larger.
 * - The upstream refused (4xx) without usage: zero.
 * - No usage (abort, timeout, 5xx, upstream without usage): prompt estimate plus the estimate
 *   of the text streamed so far, marked estimated.
 */
export function tokensOf(f: TokenFacts): Tokens {
  if (f.uncounted) return { prompt: 0, completion: 0, total: 0, estimated: false };
  const report = f.report;
  const streamed = report === undefined ? 0 : estimateCompletionTokens(report.content_chars);

  if (report !== undefined && report.reported) {
    let estimated = false;
    let prompt = report.prompt_tokens;
    let completion = report.completion_tokens;
    const total = report.total_tokens;
    if (!finite(prompt)) {
      const derivable = finite(total) && finite(completion);
      prompt = derivable ? math.max(0, (total as number) - (completion as number)) : f.promptEstimate();
      estimated = !derivable;
    }
    if (!finite(completion)) {
      completion = finite(total) ? math.max(0, total - prompt) : streamed;
      estimated = estimated || !finite(total);
    }
    if (!report.terminated && streamed > completion) {
      completion = streamed;
      estimated = true;
    }
    return { prompt, completion, total: prompt + completion, estimated };
  }

  const status = f.upstreamStatus;
  if (status !== undefined && status >= 400 && status < 500) return { prompt: 0, completion: 0, total: 0, estimated: false };

  const prompt = f.promptEstimate();
  return { prompt, completion: streamed, total: prompt + streamed, estimated: true };
}
