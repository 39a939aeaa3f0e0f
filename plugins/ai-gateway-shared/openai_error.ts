/** Error bodies in the format the client speaks (OpenAI's or Anthropic's), for kong.response.exit. */
import * as cjson from "cjson.safe";

export type ErrorStyle = "openai" | "anthropic";

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: unknown; code: unknown };
}

export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
}

export type ErrorBody = OpenAiErrorBody | AnthropicErrorBody;

export function errorStyleFor(path: string | undefined, anthropicVersion: string | undefined): ErrorStyle {
  if (anthropicVersion !== undefined && anthropicVersion !== "") return "anthropic";
  if (path !== undefined) {
    const [q] = string.find(path, "?", 1, true);
    const p = q === undefined ? path : string.sub(path, 1, q - 1);
    if (string.find(p, "/v1/messages/?$")[0] !== undefined) return "anthropic";
    if (string.find(p, "/v1/messages/count_tokens/?$")[0] !== undefined) return "anthropic";
  }
  return "openai";
}

export function openaiErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_exceeded";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export function anthropicErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 529 || status === 503) return "overloaded_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

export function openaiErrorBody(message: string, errorType: string, code?: string): OpenAiErrorBody {
  return { error: { message, type: errorType, param: cjson.null, code: code === undefined ? cjson.null : code } };
}

export function anthropicErrorBody(message: string, errorType: string): AnthropicErrorBody {
  return { type: "error", error: { type: errorType, message } };
}

export interface ErrorOptions {
  type?: string;
  /** Anthropic has none. */
  code?: string;
}

export function errorBody(style: ErrorStyle, status: number, message: string, opts?: ErrorOptions): ErrorBody {
  if (style === "anthropic") return anthropicErrorBody(message, (opts && opts.type) || anthropicErrorType(status));
  return openaiErrorBody(message, (opts && opts.type) || openaiErrorType(status), opts && opts.code);
}
