/**
 * The tokens a finished request counts, from what the usage reader saw: the upstream's own
 * usage when it reported it, else the documented estimate (estimate.ts). token-rate-limiting
 * charges these and upstream-disconnect-log logs them, so both tell the same story:
 *
 * - A gateway exit (a plugin answered): nothing was generated → 0, source "not_proxied".
 * - A WebSocket tunnel (101): its frames bypass the body filters, nothing to read → 0, "websocket".
 * - Usage reported: as reported. A missing count is derived from the total, else estimated.
 *   A stream that did not reach its end counts at least the text it visibly streamed
 *   (Anthropic's message_start says output_tokens 1 before any text) → "partial_usage" when
 *   anything was estimated, else "usage".
 * - The upstream answered 4xx without usage: it refused the request → 0, "upstream_error".
 * - No usage (upstream without it, client abort, upstream abort, timeout, 5xx): prompt
 *   estimate plus the estimate of the text streamed so far → "estimate".
 */
import { estimateCompletionTokens } from "./estimate";
import type { UsageReport } from "./stream_usage";

export type TokenSource = "usage" | "partial_usage" | "estimate" | "upstream_error" | "not_proxied" | "websocket";

export interface Tokens {
  prompt: number;
  completion: number;
  total: number;
  /** At least one count is an estimate. */
  estimated: boolean;
  source: TokenSource;
}

export interface TokenInputs {
  /** The response came from the gateway (a plugin's exit), not the upstream. */
  exited: boolean;
  /** The response is a WebSocket tunnel (status 101). */
  websocket?: boolean;
  /** Status the upstream answered with; undefined when it never answered. */
  upstreamStatus: number | undefined;
  /** The usage reader's report; undefined when no body reached the plugin. */
  report: UsageReport | undefined;
  /** The prompt estimate (estimate.ts), or a function computing it, called only when needed. */
  promptEstimate: number | ((this: void) => number);
}

/**
 * The `kong.ctx.shared` key under which token-rate-limiting (PRIORITY 905) publishes, in its log
 * phase, the tokens it counted for the request (what it charged, read from the upstream's bytes
 * before it removed the usage chunk it had injected). Lower-priority plugins that report tokens
 * (upstream-disconnect-log, 15) prefer it to their own reading of the client's bytes, which lack
 * that chunk. Absent when token-rate-limiting is not on the request or did not get to count.
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
