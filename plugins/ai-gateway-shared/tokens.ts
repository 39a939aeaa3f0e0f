/**
 * The tokens a finished request counts: the upstream's usage when reported, else the estimate.
 * One rule, so that token-rate-limiting charges what upstream-disconnect-log logs. A stream cut
 * short counts at least the text it visibly streamed (Anthropic's message_start says
 * output_tokens 1 before any text); a 4xx without usage was refused and counts 0.
 */
import { estimateCompletionTokens } from "./estimate";
import type { UsageReport } from "./stream_usage";

export type TokenSource = "usage" | "partial_usage" | "estimate" | "upstream_error" | "not_proxied" | "websocket";

export interface Tokens {
  prompt: number;
  completion: number;
  total: number;
  estimated: boolean;
  source: TokenSource;
}

export interface TokenInputs {
  /** A plugin's exit answered. */
  exited: boolean;
  /** Frames bypass the body filters: nothing to read. */
  websocket?: boolean;
  upstreamStatus: number | undefined;
  report: UsageReport | undefined;
  /** A function is called only when needed. */
  promptEstimate: number | ((this: void) => number);
}

/**
 * Where token-rate-limiting publishes what it counted in its log phase. Lower-priority plugins
 * prefer it to their own reading of the client's bytes, which lack the usage chunk it removed.
 */
export const COUNTED_TOKENS_KEY = "ai_gateway_tokens";

declare global {
  interface KongSharedCtx {
    [COUNTED_TOKENS_KEY]?: Tokens;
  }
}

function known(value: number | undefined): value is number {
  return value !== undefined && value >= 0;
}

function promptEstimateOf(f: TokenInputs): number {
  const p = f.promptEstimate;
  return typeof p === "function" ? p() : p;
}

export function tokensOf(f: TokenInputs): Tokens {
  if (f.exited) return { prompt: 0, completion: 0, total: 0, estimated: false, source: "not_proxied" };
  if (f.websocket === true) return { prompt: 0, completion: 0, total: 0, estimated: false, source: "websocket" };
  const report = f.report;
  const streamed = report === undefined ? 0 : estimateCompletionTokens(report.text_bytes);

  if (report !== undefined && report.reported) {
    let estimated = false;
    let prompt = report.prompt_tokens;
    let completion = report.completion_tokens;
    const total = report.total_tokens;
    if (!known(prompt)) {
      const derivable = known(total) && known(completion);
      prompt = derivable ? math.max(0, (total as number) - (completion as number)) : promptEstimateOf(f);
      estimated = !derivable;
    }
    if (!known(completion)) {
      completion = known(total) ? math.max(0, total - prompt) : streamed;
      estimated = estimated || !known(total);
    }
    if (!report.terminated && streamed > completion) {
      completion = streamed;
      estimated = true;
    }
    return { prompt, completion, total: prompt + completion, estimated, source: estimated ? "partial_usage" : "usage" };
  }

  const status = f.upstreamStatus;
  if (status !== undefined && status >= 400 && status < 500) {
    return { prompt: 0, completion: 0, total: 0, estimated: false, source: "upstream_error" };
  }
  const prompt = promptEstimateOf(f);
  return { prompt, completion: streamed, total: prompt + streamed, estimated: true, source: "estimate" };
}
