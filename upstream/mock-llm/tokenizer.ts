/**
 * The mock's tokenizer: simple enough to recompute by hand, exact enough that tests can assert token
 * counts through the gateway.
 *
 * A token is either
 *   - a run of letters, combining marks, digits and underscores (`hello`, `café`, `你好`, `42`, `snake_case`), or
 *   - one single non-space character that is none of those (`,`, `.`, `"`, `{`, one emoji code point).
 * Whitespace separates tokens and is never a token itself.
 *
 * Prompt tokens:
 *   - chat (`/v1/chat/completions`, `/api/chat`): for every message, MESSAGE_OVERHEAD_TOKENS plus the tokens
 *     of its text (a string content, or the `text` of each text part of an array content; other parts
 *     such as images count 0);
 *   - Anthropic (`/v1/messages`): the same, with a non-empty `system` (string or text blocks) counted as
 *     one more message;
 *   - completions (`/v1/completions`): the tokens of the prompt string, no overhead.
 * Completion tokens: the tokens of the completion text.
 */

export const MESSAGE_OVERHEAD_TOKENS = 4;

const TOKEN_RE = /[\p{L}\p{M}\p{N}_]+|[^\s\p{L}\p{M}\p{N}_]/gu;

export function tokenize(text: string): string[] {
  return text.match(TOKEN_RE) ?? [];
}

export function countTokens(text: string): number {
  let n = 0;
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.exec(text) !== null) n++;
  return n;
}

/**
 * Cuts text into consecutive pieces of exactly one token each, the whitespace before a token going with
 * it and trailing whitespace with the last piece, so that pieces.join("") === text. This is how the mock
 * streams: one piece per chunk. Whitespace-only text is one piece of zero tokens; empty text is none.
 */
export function tokenPieces(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  TOKEN_RE.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = TOKEN_RE.exec(text)) !== null) {
    const end = match.index + match[0].length;
    pieces.push(text.slice(start, end));
    start = end;
  }
  if (start < text.length) {
    if (pieces.length > 0) pieces[pieces.length - 1] += text.slice(start);
    else pieces.push(text.slice(start));
  }
  return pieces;
}

/** The text of the first `n` tokens of `text` (leading whitespace kept, whitespace after the n-th dropped). */
export function truncateToTokens(text: string, n: number): string {
  if (n <= 0) return "";
  let count = 0;
  TOKEN_RE.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = TOKEN_RE.exec(text)) !== null) {
    count++;
    if (count === n) return text.slice(0, match.index + match[0].length);
  }
  return text;
}

/** The text parts of an OpenAI/Anthropic message content: a string, or an array of parts/blocks. */
export function contentTexts(content: unknown): string[] {
  if (typeof content === "string") return [content];
  if (!Array.isArray(content)) return [];
  const texts: string[] = [];
  for (const part of content) {
    if (part !== null && typeof part === "object") {
      const p = part as { type?: unknown; text?: unknown };
      if ((p.type === "text" || p.type === undefined) && typeof p.text === "string") texts.push(p.text);
    }
  }
  return texts;
}

export function countContentTokens(content: unknown): number {
  let n = 0;
  for (const text of contentTexts(content)) n += countTokens(text);
  return n;
}

export interface MessageLike {
  role?: unknown;
  content?: unknown;
}

/** Prompt tokens of a chat request's messages (OpenAI chat, Ollama chat). */
export function countChatPromptTokens(messages: readonly MessageLike[]): number {
  let n = 0;
  for (const message of messages) n += MESSAGE_OVERHEAD_TOKENS + countContentTokens(message.content);
  return n;
}

/** Prompt tokens of an Anthropic Messages request: the system prompt counts as one more message. */
export function countAnthropicPromptTokens(system: unknown, messages: readonly MessageLike[]): number {
  const systemTexts = contentTexts(system);
  const systemTokens = systemTexts.length > 0 && systemTexts.some((t) => t.length > 0)
    ? MESSAGE_OVERHEAD_TOKENS + countContentTokens(system)
    : 0;
  return systemTokens + countChatPromptTokens(messages);
}

/** Prompt tokens of a legacy completions request (`prompt` is a string or an array of one string). */
export function countCompletionPromptTokens(prompt: string | readonly string[]): number {
  if (typeof prompt === "string") return countTokens(prompt);
  let n = 0;
  for (const p of prompt) n += countTokens(p);
  return n;
}
