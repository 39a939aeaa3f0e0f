/**
 * Request schemas of the four APIs the mock serves, validated the way the real servers answer bad
 * input (OpenAI-style messages for /v1/chat/completions and /v1/completions, Anthropic's for
 * /v1/messages, Ollama's for /api/chat), and normalised into what the generator needs.
 */
import type { Api } from "./flavors/types.ts";
import type { MessageLike } from "./tokenizer.ts";
import {
  contentTexts,
  countAnthropicPromptTokens,
  countChatPromptTokens,
  countCompletionPromptTokens,
} from "./tokenizer.ts";

export const DEFAULT_MODEL = "mock-model";

export interface LlmRequest {
  api: Api;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  maxTokens: number | undefined;
  maxTokensMode: "target" | "cap";
  stop: string[];
  promptTokens: number;
  /** What the completion text is derived from: the prompt, not the sampling settings. */
  promptKey: string;
}

export class ValidationError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal number";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function invalidType(param: string, expected: string, value: unknown): ValidationError {
  return new ValidationError(`Invalid type for '${param}': expected ${expected}, but got ${jsonType(value)} instead.`, param, "invalid_type");
}

function optionalBoolean(body: Json, key: string, param = key): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalidType(param, "a boolean", value);
  return value;
}

function optionalPositiveInt(body: Json, key: string, param = key): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw invalidType(param, "an integer", value);
  if (value < 1) {
    throw new ValidationError(
      `Invalid '${param}': integer below minimum value. Expected a value >= 1, but got ${value} instead.`,
      param,
      "integer_below_min_value",
    );
  }
  return value;
}

function modelOf(body: Json): string {
  const model = body.model;
  if (model === undefined || model === null) return DEFAULT_MODEL;
  if (typeof model !== "string") throw invalidType("model", "a string", model);
  if (model.length === 0) throw new ValidationError("you must provide a model parameter", "model", null);
  return model;
}

function stopOf(value: unknown, param: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((s) => typeof s === "string")) return value as string[];
  throw invalidType(param, "a string or an array of strings", value);
}

function streamOptions(body: Json, stream: boolean): { includeUsage: boolean; continuousUsage: boolean } {
  const options = body.stream_options;
  if (options === undefined || options === null) return { includeUsage: false, continuousUsage: false };
  if (!isObject(options)) throw invalidType("stream_options", "an object", options);
  if (!stream) {
    throw new ValidationError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
  }
  return {
    includeUsage: optionalBoolean(options, "include_usage", "stream_options.include_usage") ?? false,
    continuousUsage: optionalBoolean(options, "continuous_usage_stats", "stream_options.continuous_usage_stats") ?? false,
  };
}

function requireBodyObject(body: unknown): Json {
  if (!isObject(body)) throw new ValidationError(`Invalid request body: expected a JSON object, but got ${jsonType(body)} instead.`, null, "invalid_type");
  return body;
}

function checkN(body: Json): void {
  const n = body.n;
  if (n !== undefined && n !== null && n !== 1) throw new ValidationError("The mock LLM serves n=1 only.", "n", "invalid_value");
}

const CHAT_ROLES = ["system", "developer", "user", "assistant", "tool", "function"];

function checkContent(content: unknown, param: string, required: boolean): void {
  if (content === undefined || content === null) {
    if (required) throw new ValidationError(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
    return;
  }
  if (typeof content === "string") return;
  if (!Array.isArray(content)) throw invalidType(param, "one of a string or array of objects", content);
  content.forEach((part, j) => {
    const partParam = `${param}[${j}]`;
    if (!isObject(part)) throw invalidType(partParam, "an object", part);
    if (typeof part.type !== "string") throw new ValidationError(`Missing required parameter: '${partParam}.type'.`, `${partParam}.type`, "missing_required_parameter");
    if (part.type === "text" && typeof part.text !== "string") throw invalidType(`${partParam}.text`, "a string", part.text);
  });
}

function chatMessages(body: Json): MessageLike[] {
  const messages = body.messages;
  if (messages === undefined || messages === null) {
    throw new ValidationError("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  }
  if (!Array.isArray(messages)) throw invalidType("messages", "an array of objects", messages);
  if (messages.length === 0) {
    throw new ValidationError("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array");
  }
  messages.forEach((message, i) => {
    const param = `messages[${i}]`;
    if (!isObject(message)) throw invalidType(param, "an object", message);
    const role = message.role;
    if (role === undefined) throw new ValidationError(`Missing required parameter: '${param}.role'.`, `${param}.role`, "missing_required_parameter");
    if (typeof role !== "string" || !CHAT_ROLES.includes(role)) {
      throw new ValidationError(
        `Invalid value: '${String(role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `${param}.role`,
        "invalid_value",
      );
    }
    checkContent(message.content, `${param}.content`, role !== "assistant");
  });
  return messages as MessageLike[];
}

function promptParts(messages: readonly MessageLike[]): [string, string[]][] {
  return messages.map((m) => [String(m.role), contentTexts(m.content)]);
}

function promptKeyOf(messages: readonly MessageLike[]): string {
  return JSON.stringify(promptParts(messages));
}

export function parseChatRequest(raw: unknown): LlmRequest {
  const body = requireBodyObject(raw);
  const model = modelOf(body);
  const messages = chatMessages(body);
  const stream = optionalBoolean(body, "stream") ?? false;
  const { includeUsage, continuousUsage } = streamOptions(body, stream);
  checkN(body);
  const maxTokens = optionalPositiveInt(body, "max_completion_tokens") ?? optionalPositiveInt(body, "max_tokens");
  return {
    api: "chat",
    model,
    stream,
    includeUsage,
    continuousUsage,
    maxTokens,
    maxTokensMode: "target",
    stop: stopOf(body.stop, "stop"),
    promptTokens: countChatPromptTokens(messages),
    promptKey: promptKeyOf(messages),
  };
}

export function parseCompletionsRequest(raw: unknown): LlmRequest {
  const body = requireBodyObject(raw);
  const model = modelOf(body);
  let prompt = body.prompt;
  if (prompt === undefined || prompt === null) {
    throw new ValidationError("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  }
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") prompt = prompt[0];
  if (typeof prompt !== "string") {
    throw new ValidationError("The mock LLM takes 'prompt' as a string (or an array of one string).", "prompt", "invalid_type");
  }
  const stream = optionalBoolean(body, "stream") ?? false;
  const { includeUsage, continuousUsage } = streamOptions(body, stream);
  checkN(body);
  return {
    api: "completions",
    model,
    stream,
    includeUsage,
    continuousUsage,
    maxTokens: optionalPositiveInt(body, "max_tokens"),
    maxTokensMode: "target",
    stop: stopOf(body.stop, "stop"),
    promptTokens: countCompletionPromptTokens(prompt),
    promptKey: JSON.stringify(["prompt", prompt]),
  };
}

/** Anthropic's validation messages name the field path with dots: `messages.0.role: ...`. */
export function parseMessagesRequest(raw: unknown): LlmRequest {
  if (!isObject(raw)) throw new ValidationError("Input should be a valid dictionary or object to extract fields from");
  const body = raw;
  if (body.model === undefined) throw new ValidationError("model: Field required", "model");
  if (typeof body.model !== "string" || body.model.length === 0) throw new ValidationError("model: Input should be a valid string", "model");
  if (body.max_tokens === undefined) throw new ValidationError("max_tokens: Field required", "max_tokens");
  if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens)) {
    throw new ValidationError("max_tokens: Input should be a valid integer", "max_tokens");
  }
  if (body.max_tokens < 1) throw new ValidationError("max_tokens: Input should be greater than or equal to 1", "max_tokens");
  const messages = body.messages;
  if (messages === undefined) throw new ValidationError("messages: Field required", "messages");
  if (!Array.isArray(messages)) throw new ValidationError("messages: Input should be a valid list", "messages");
  if (messages.length === 0) throw new ValidationError("messages: at least one message is required", "messages");
  messages.forEach((message, i) => {
    if (!isObject(message)) throw new ValidationError(`messages.${i}: Input should be a valid dictionary`, `messages.${i}`);
    if (message.role !== "user" && message.role !== "assistant") {
      throw new ValidationError(`messages.${i}.role: Input should be 'user' or 'assistant'`, `messages.${i}.role`);
    }
    const content = message.content;
    if (content === undefined) throw new ValidationError(`messages.${i}.content: Field required`, `messages.${i}.content`);
    if (typeof content !== "string" && !(Array.isArray(content) && content.every((b) => isObject(b) && typeof b.type === "string"))) {
      throw new ValidationError(`messages.${i}.content: Input should be a valid string or a list of content blocks`, `messages.${i}.content`);
    }
  });
  const system = body.system;
  if (system !== undefined && typeof system !== "string" && !Array.isArray(system)) {
    throw new ValidationError("system: Input should be a valid string or a list of text blocks", "system");
  }
  const stream = body.stream === undefined ? false : body.stream;
  if (typeof stream !== "boolean") throw new ValidationError("stream: Input should be a valid boolean", "stream");
  const stopSequences = body.stop_sequences;
  if (stopSequences !== undefined && !(Array.isArray(stopSequences) && stopSequences.every((s) => typeof s === "string"))) {
    throw new ValidationError("stop_sequences: Input should be a valid list of strings", "stop_sequences");
  }
  const typedMessages = messages as MessageLike[];
  return {
    api: "messages",
    model: body.model,
    stream,
    includeUsage: true,
    continuousUsage: false,
    maxTokens: body.max_tokens,
    maxTokensMode: "cap",
    stop: (stopSequences as string[] | undefined) ?? [],
    promptTokens: countAnthropicPromptTokens(system, typedMessages),
    promptKey: JSON.stringify([["system", contentTexts(system)], ...promptParts(typedMessages)]),
  };
}

const OLLAMA_ROLES = ["system", "user", "assistant", "tool"];

export function parseOllamaChatRequest(raw: unknown): LlmRequest {
  if (!isObject(raw)) throw new ValidationError("invalid request body: expected a JSON object");
  const body = raw;
  if (typeof body.model !== "string" || body.model.length === 0) throw new ValidationError("model is required", "model");
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new ValidationError("messages is required and must be a non-empty array", "messages");
  messages.forEach((message, i) => {
    if (!isObject(message)) throw new ValidationError(`messages[${i}] must be an object`, `messages[${i}]`);
    if (typeof message.role !== "string" || !OLLAMA_ROLES.includes(message.role)) {
      throw new ValidationError(`invalid role "${String(message.role)}" in messages[${i}]: expected system, user, assistant or tool`, `messages[${i}].role`);
    }
    if (message.content !== undefined && typeof message.content !== "string") {
      throw new ValidationError(`messages[${i}].content must be a string`, `messages[${i}].content`);
    }
  });
  const stream = body.stream === undefined || body.stream === null ? true : body.stream;
  if (typeof stream !== "boolean") throw new ValidationError("stream must be a boolean", "stream");
  let maxTokens: number | undefined;
  let stop: string[] = [];
  const options = body.options;
  if (options !== undefined && options !== null) {
    if (!isObject(options)) throw new ValidationError("options must be an object", "options");
    const numPredict = options.num_predict;
    if (numPredict !== undefined && numPredict !== null) {
      if (typeof numPredict !== "number" || !Number.isInteger(numPredict)) throw new ValidationError("options.num_predict must be an integer", "options.num_predict");
      // Ollama reads -1 (and 0 or less) as "no limit".
      if (numPredict > 0) maxTokens = numPredict;
    }
    stop = stopOf(options.stop, "options.stop");
  }
  const typedMessages = messages as MessageLike[];
  return {
    api: "ollama_chat",
    model: body.model,
    stream,
    includeUsage: true,
    continuousUsage: false,
    maxTokens,
    maxTokensMode: "target",
    stop,
    promptTokens: countChatPromptTokens(typedMessages),
    promptKey: promptKeyOf(typedMessages),
  };
}

export function parseRequest(api: Api, body: unknown): LlmRequest {
  switch (api) {
    case "chat": return parseChatRequest(body);
    case "completions": return parseCompletionsRequest(body);
    case "messages": return parseMessagesRequest(body);
    case "ollama_chat": return parseOllamaChatRequest(body);
  }
}
