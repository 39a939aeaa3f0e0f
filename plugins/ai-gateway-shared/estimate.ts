/**
 * The token estimate every plugin uses when the upstream reports no usage:
 *   completion ≈ ceil(T / 4)          T = bytes of generated text
 *   prompt     ≈ ceil(P / 4) + 4 × M  P = UTF-8 characters of the request's text, M = messages
 *   fallback   ≈ ceil(B / 4)          B = request body bytes, when the body is not JSON
 * Four characters per token is OpenAI's rule of thumb for English; bytes rather than characters
 * cost the reader nothing per event and come closer for CJK text.
 */
import * as cjson from "cjson.safe";
import { utf8Length } from "./utf8";
import { asArray, asObject, type JsonObject } from "./json";

export const CHARS_PER_TOKEN = 4;
export const TOKENS_PER_MESSAGE = 4;

export function tokensForChars(chars: number): number {
  if (chars <= 0) return 0;
  return math.ceil(chars / CHARS_PER_TOKEN);
}

export function estimateCompletionTokens(textBytes: number): number {
  return tokensForChars(textBytes);
}

function contentTextChars(content: unknown): number {
  if (typeof content === "string") return utf8Length(content);
  const parts = asArray(content);
  if (parts === undefined) return 0;
  let n = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (typeof part === "string") n += utf8Length(part);
    else {
      const p = asObject(part);
      if (p !== undefined) {
        if (typeof p.text === "string") n += utf8Length(p.text);
        // Anthropic tool results carry text in nested content.
        if (p.content !== undefined) n += contentTextChars(p.content);
      }
    }
  }
  return n;
}

export interface PromptText {
  chars: number;
  messages: number;
}

export function promptText(body: JsonObject): PromptText {
  let chars = 0;
  let messages = 0;
  const list = asArray(body.messages);
  if (list !== undefined) {
    for (let i = 0; i < list.length; i++) {
      const m = asObject(list[i]);
      if (m === undefined) continue;
      messages += 1;
      chars += contentTextChars(m.content);
    }
  }
  chars += contentTextChars(body.system); // Anthropic
  chars += contentTextChars(body.prompt); // completions, Ollama generate
  chars += contentTextChars(body.instructions); // Responses API
  const input = body.input; // embeddings, Responses API
  if (typeof input === "string") chars += utf8Length(input);
  else {
    const items = asArray(input);
    if (items !== undefined) {
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (typeof item === "string") chars += utf8Length(item);
        else {
          const it = asObject(item);
          if (it !== undefined) {
            messages += 1;
            chars += contentTextChars(it.content);
          }
        }
      }
    }
  }
  return { chars, messages };
}

export function estimatePromptTokens(body: unknown): number {
  const o = asObject(body);
  if (o === undefined) return 0;
  const t = promptText(o);
  return tokensForChars(t.chars) + TOKENS_PER_MESSAGE * t.messages;
}

export function estimatePromptTokensFromBody(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 0;
  const [body] = cjson.decode(raw);
  const o = asObject(body);
  if (o === undefined) return tokensForChars(raw.length);
  return estimatePromptTokens(o);
}
