import type { CompletionPlan } from "../generate.ts";

export const FLAVOR_NAMES = ["openai", "vllm", "sglang", "anthropic", "ollama"] as const;
export type FlavorName = (typeof FLAVOR_NAMES)[number];

export function isFlavorName(value: string): value is FlavorName {
  return (FLAVOR_NAMES as readonly string[]).includes(value);
}

/** Which request schema the path speaks; the flavor then decides the response's shape. */
export type Api = "chat" | "completions" | "messages" | "ollama_chat";

export interface ResponseContext {
  api: Api;
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  plan: CompletionPlan;
  promptTokens: number;
  includeUsage: boolean;
  continuousUsage: boolean;
  /** Anthropic only: extra prompt tokens reported apart from input_tokens when set. */
  cacheReadInputTokens?: number | undefined;
  cacheCreationInputTokens?: number | undefined;
}

/** One response stream's events, each a complete SSE event (or NDJSON line) ending in "\n". */
export interface StreamFraming {
  contentType: string;
  /** True for SSE (keep-alive comments allowed between events); false for NDJSON. */
  sse: boolean;
  /** Events sent before the first token (role chunk, message_start, ...). */
  open(): string[];
  /** Events carrying token `index` (0-based) whose text is `piece`; `tokensSoFar` counts it. */
  token(index: number, piece: string, tokensSoFar: number): string[];
  /** Events after the last token: finish, usage, terminator. */
  close(): string[];
  /** Whether close() carries the final usage (to the record's `usage_sent`). */
  closeCarriesUsage: boolean;
}

export interface ErrorResponse {
  contentType: string;
  body: unknown;
}

export interface Flavor {
  name: FlavorName;
  stream(ctx: ResponseContext): StreamFraming;
  body(ctx: ResponseContext): unknown;
  error(status: number, message: string): ErrorResponse;
}

export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";
export const JSON_CONTENT_TYPE = "application/json";

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseEvent(name: string, payload: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
}

export const SSE_DONE = "data: [DONE]\n\n";

export function isLastPiece(ctx: ResponseContext, index: number): boolean {
  return index === ctx.plan.pieces.length - 1;
}

/**
 * The exception class name vLLM and SGLang put in an error body's `type`, by status; `extra`
 * holds one server's own additions.
 */
export function pythonErrorType(status: number, extra: Readonly<Record<number, string>> = {}): string {
  const own = extra[status];
  if (own !== undefined) return own;
  if (status === 400) return "BadRequestError";
  if (status === 404) return "NotFoundError";
  if (status === 429) return "TooManyRequestsError";
  if (status === 503) return "ServiceUnavailableError";
  if (status >= 500) return "InternalServerError";
  return "BadRequestError";
}
