/**
 * Deterministic completions: the same prompt always gets the same text, and a longer max_tokens only
 * extends it (the text for n tokens is a prefix of the text for n + 1).
 *
 * The text is drawn from WORDS by a PRNG seeded with a hash of the prompt key. WORDS holds a few
 * non-ASCII entries (accented Latin, Chinese, one emoji) so that every stream carries multi-byte UTF-8
 * characters that a reader can get split across TCP reads.
 */
import { createHash } from "node:crypto";
import { countTokens, tokenPieces, truncateToTokens } from "./tokenizer.ts";

/** Every entry is exactly one token (a test pins this). */
export const WORDS: readonly string[] = [
  "the", "model", "gateway", "token", "stream", "request", "answer", "quick", "brown", "fox",
  "jumps", "over", "lazy", "dog", "kong", "plugin", "upstream", "latency", "limit", "window",
  "prompt", "guard", "usage", "count", "budget", "cache", "route", "service", "consumer", "header",
  "chunk", "event", "buffer", "socket", "server", "client", "mock", "data", "value", "result",
  "simple", "deterministic", "reply", "text", "words", "signal", "river", "mountain", "light", "shadow",
  "café", "naïve", "déjà", "über", "niño", "façade",
  "你好", "世界", "模型", "令牌",
  "🚀", "🙂",
];

const PUNCTUATION: readonly string[] = [",", ".", ",", ".", ";", "!"];

/** A 32-bit seed from the first bytes of the SHA-256 of the key. */
export function seedOf(key: string): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0);
}

/** mulberry32: small, fast, good enough for picking words. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Natural completion length when the request sets no max_tokens: 16..48 tokens, from the prompt. */
export function defaultCompletionTokens(promptKey: string): number {
  return 16 + (seedOf("length:" + promptKey) % 33);
}

/** Exactly `tokens` tokens of text for this prompt. */
export function generateText(promptKey: string, tokens: number): string {
  const next = prng(seedOf(promptKey));
  const parts: string[] = [];
  let count = 0;
  let lastWasPunctuation = true;
  while (count < tokens) {
    // Punctuation follows a word with probability 1/6 and never starts the text or repeats.
    if (!lastWasPunctuation && next() < 1 / 6) {
      parts.push(PUNCTUATION[Math.floor(next() * PUNCTUATION.length)]);
      lastWasPunctuation = true;
    } else {
      const word = WORDS[Math.floor(next() * WORDS.length)];
      parts.push(count === 0 ? word : " " + word);
      lastWasPunctuation = false;
    }
    count++;
  }
  return parts.join("");
}

export type FinishKind = "stop" | "length";

export interface CompletionPlan {
  text: string;
  /** One token per piece (whitespace-only text is one piece of 0 tokens); pieces.join("") === text. */
  pieces: string[];
  completionTokens: number;
  /** "length" when max_tokens cut the text, "stop" when it ended on its own or at a stop sequence. */
  finish: FinishKind;
  /** The stop sequence the text ended at, if any (vLLM `stop_reason`, SGLang `matched_stop`, Anthropic `stop_sequence`). */
  matchedStop: string | null;
}

export interface PlanInput {
  /** What the text is derived from (see promptKey in api.ts): same key, same text. */
  promptKey: string;
  /** The request's max_tokens (or max_completion_tokens, num_predict), if any. */
  maxTokens?: number | undefined;
  /**
   * "target" (OpenAI-compatible and Ollama): with max_tokens the model writes exactly max_tokens tokens
   * and finishes with "length". "cap" (Anthropic, where max_tokens is mandatory): the natural length,
   * cut at max_tokens.
   */
  maxTokensMode: "target" | "cap";
  stop?: readonly string[] | undefined;
  /** Forced completion text (mock option `text`): taken as the model's whole answer. */
  forcedText?: string | undefined;
}

export function planCompletion(input: PlanInput): CompletionPlan {
  let text: string;
  let finish: FinishKind;
  if (input.forcedText !== undefined) {
    text = input.forcedText;
    finish = "stop";
    if (input.maxTokens !== undefined && countTokens(text) > input.maxTokens) {
      text = truncateToTokens(text, input.maxTokens);
      finish = "length";
    }
  } else if (input.maxTokens !== undefined && input.maxTokensMode === "target") {
    text = generateText(input.promptKey, input.maxTokens);
    finish = "length";
  } else {
    const natural = defaultCompletionTokens(input.promptKey);
    if (input.maxTokens !== undefined && input.maxTokens < natural) {
      text = generateText(input.promptKey, input.maxTokens);
      finish = "length";
    } else {
      text = generateText(input.promptKey, natural);
      finish = "stop";
    }
  }

  let matchedStop: string | null = null;
  let cut = -1;
  for (const stop of input.stop ?? []) {
    if (stop.length === 0) continue;
    const at = text.indexOf(stop);
    if (at >= 0 && (cut < 0 || at < cut)) {
      cut = at;
      matchedStop = stop;
    }
  }
  if (cut >= 0) {
    text = text.slice(0, cut);
    finish = "stop";
  }

  return { text, pieces: tokenPieces(text), completionTokens: countTokens(text), finish, matchedStop };
}
