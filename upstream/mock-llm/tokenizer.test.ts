import { describe, expect, it } from "vitest";
import { defaultCompletionTokens, generateText, planCompletion, WORDS } from "./generate.ts";
import {
  countAnthropicPromptTokens,
  countChatPromptTokens,
  countCompletionPromptTokens,
  countTokens,
  MESSAGE_OVERHEAD_TOKENS,
  tokenize,
  tokenPieces,
  truncateToTokens,
} from "./tokenizer.ts";

describe("tokenizer", () => {
  it("splits words and single punctuation marks, never whitespace", () => {
    expect(tokenize("Hello, world!")).toEqual(["Hello", ",", "world", "!"]);
    expect(tokenize('  {"usage": 12}\n')).toEqual(["{", '"', "usage", '"', ":", "12", "}"]);
    expect(tokenize("snake_case café 你好世界 🚀🙂")).toEqual(["snake_case", "café", "你好世界", "🚀", "🙂"]);
    expect(tokenize("")).toEqual([]);
    expect(tokenize(" \n\t ")).toEqual([]);
  });

  it("counts what it tokenizes", () => {
    for (const text of ["Hello, world!", "a  b\nc", "", "data: [DONE]", "naïve déjà-vu 🚀"]) {
      expect(countTokens(text)).toBe(tokenize(text).length);
    }
  });

  it("cuts text into one-token pieces that join back to the text", () => {
    const text = "  Hello, wörld 🚀!  ";
    const pieces = tokenPieces(text);
    expect(pieces).toEqual(["  Hello", ",", " wörld", " 🚀", "!  "]);
    expect(pieces.join("")).toBe(text);
    expect(pieces.map(countTokens)).toEqual([1, 1, 1, 1, 1]);
    expect(tokenPieces("   ")).toEqual(["   "]);
    expect(tokenPieces("")).toEqual([]);
  });

  it("truncates to the first n tokens", () => {
    expect(truncateToTokens("one, two three", 2)).toBe("one,");
    expect(truncateToTokens("one, two three", 3)).toBe("one, two");
    expect(truncateToTokens("one", 5)).toBe("one");
    expect(truncateToTokens("one", 0)).toBe("");
  });

  it("counts chat prompts as content tokens plus a fixed overhead per message", () => {
    expect(MESSAGE_OVERHEAD_TOKENS).toBe(4);
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "Hi there" }, { type: "image_url", image_url: { url: "x" } }, { type: "text", text: "!" }] },
      { role: "assistant", content: null },
    ];
    // 4 + 3 ("Be", "brief", ".") + 4 + 3 ("Hi", "there", "!") + 4 + 0
    expect(countChatPromptTokens(messages)).toBe(18);
  });

  it("counts an Anthropic system prompt as one more message and a completions prompt without overhead", () => {
    expect(countAnthropicPromptTokens("Be brief.", [{ role: "user", content: "Hi" }])).toBe(4 + 3 + 4 + 1);
    expect(countAnthropicPromptTokens([{ type: "text", text: "Be brief." }], [{ role: "user", content: "Hi" }])).toBe(12);
    expect(countAnthropicPromptTokens(undefined, [{ role: "user", content: "Hi" }])).toBe(5);
    expect(countCompletionPromptTokens("Once upon a time")).toBe(4);
    expect(countCompletionPromptTokens(["Once upon", "a time"])).toBe(4);
  });
});

describe("generator", () => {
  it("uses a word list of single tokens with some multi-byte UTF-8", () => {
    for (const word of WORDS) expect(countTokens(word), word).toBe(1);
    expect(WORDS.some((w) => Buffer.byteLength(w) === 4)).toBe(true); // an emoji
    expect(WORDS.some((w) => /[\u4e00-\u9fff]/.test(w))).toBe(true);
  });

  it("is deterministic and extends the same text for more tokens", () => {
    const a = generateText('[["user",["hello"]]]', 40);
    expect(generateText('[["user",["hello"]]]', 40)).toBe(a);
    expect(countTokens(a)).toBe(40);
    expect(a.startsWith(generateText('[["user",["hello"]]]', 25))).toBe(true);
    expect(generateText('[["user",["goodbye"]]]', 40)).not.toBe(a);
  });

  it("picks a natural length of 16 to 48 tokens from the prompt", () => {
    const lengths = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const n = defaultCompletionTokens(`prompt ${i}`);
      expect(n).toBeGreaterThanOrEqual(16);
      expect(n).toBeLessThanOrEqual(48);
      lengths.add(n);
    }
    expect(lengths.size).toBeGreaterThan(10);
  });

  it("writes exactly max_tokens tokens and finishes with length (OpenAI-compatible)", () => {
    const plan = planCompletion({ promptKey: "k", maxTokens: 7, maxTokensMode: "target" });
    expect(plan.completionTokens).toBe(7);
    expect(plan.pieces).toHaveLength(7);
    expect(plan.pieces.join("")).toBe(plan.text);
    expect(plan.finish).toBe("length");
  });

  it("stops on its own without max_tokens, and caps at max_tokens in cap mode (Anthropic)", () => {
    const natural = defaultCompletionTokens("k");
    const free = planCompletion({ promptKey: "k", maxTokensMode: "target" });
    expect(free.completionTokens).toBe(natural);
    expect(free.finish).toBe("stop");
    expect(planCompletion({ promptKey: "k", maxTokens: natural + 5, maxTokensMode: "cap" })).toMatchObject({ completionTokens: natural, finish: "stop" });
    expect(planCompletion({ promptKey: "k", maxTokens: 3, maxTokensMode: "cap" })).toMatchObject({ completionTokens: 3, finish: "length" });
  });

  it("honours stop sequences: the text ends before the earliest one", () => {
    const full = planCompletion({ promptKey: "k", maxTokens: 30, maxTokensMode: "target" }).text;
    const words = full.split(" ");
    const stop = " " + words[5];
    const plan = planCompletion({ promptKey: "k", maxTokens: 30, maxTokensMode: "target", stop: ["zzz-never", stop] });
    expect(plan.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(plan.finish).toBe("stop");
    expect(plan.matchedStop).toBe(stop);
    expect(plan.completionTokens).toBe(countTokens(plan.text));
  });

  it("takes forced text as the whole answer, cut by max_tokens", () => {
    const text = 'He said "usage": {"prompt_tokens": 3} 你好 🚀.';
    expect(planCompletion({ promptKey: "k", maxTokensMode: "target", forcedText: text })).toMatchObject({ text, finish: "stop", completionTokens: countTokens(text) });
    const cut = planCompletion({ promptKey: "k", maxTokens: 3, maxTokensMode: "target", forcedText: text });
    expect(cut).toMatchObject({ text: 'He said "', finish: "length", completionTokens: 3 });
  });
});
