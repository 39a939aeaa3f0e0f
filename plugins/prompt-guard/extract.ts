/**
 * Which texts of a decoded request body the guard checks, for every request format it knows:
 *
 * - OpenAI chat (and vLLM, SGLang, Ollama /v1, Ollama /api/chat): `messages[].content` as a
 *   string, null, or an array of parts; a part counts when it carries a string `text`.
 * - Legacy completions (and Ollama /api/generate): `prompt` as a string or an array of strings.
 * - Anthropic messages: top-level `system` (string or text blocks) and `messages[].content`
 *   blocks, including the text inside `tool_result` blocks and text `document` sources.
 *
 * One item per message: the text parts of a message are joined with "\n", so a pattern sees
 * what the model sees and an allow pattern judges the message, not each fragment of it.
 * Pure: no kong, no ngx.
 */
import * as cjson from "cjson.safe";
import { asArray, asObject, type JsonObject } from "../ai-gateway-shared/json";

export type MatchScope = "last_user" | "all_user" | "all";

export interface PromptText {
  text: string;
  /** 0-based index in `messages` or in a `prompt` array; undefined for `system` and a single prompt string. */
  message_index?: number;
  role: string;
}

export type ExtractProblemReason = "invalid_request_body" | "unsupported_prompt";

export interface ExtractProblem {
  reason: ExtractProblemReason;
  /** Says which member is wrong (a JSON path such as `messages[2].content`), never its text. */
  message: string;
}

export interface Extraction {
  /** The non-empty texts in scope, in body order (system, messages, prompt). */
  items: PromptText[];
  /** Entries of `messages` plus prompts (a `prompt` string is one, an array one per element). */
  message_count: number;
  /** Set when the body's shape is wrong: then items are incomplete and must not be trusted. */
  problem?: ExtractProblem;
}


/** Part and block types whose `text` must be a string (a part of another type may lack it). */
const TEXT_PART_TYPES: { [type: string]: boolean } = { text: true, input_text: true, output_text: true };

function isAbsent(v: unknown): boolean {
  return v === undefined || v === cjson.null;
}


function problem(reason: ExtractProblemReason, message: string): ExtractProblem {
  return { reason, message };
}

/** Nested content is read at most this deep (a tool_result's content blocks are level 2). */
const MAX_CONTENT_DEPTH = 2;

/**
 * Appends the texts of content parts / blocks to `out`; returns a problem for a part whose
 * shape a client must not send (a part that is not an object, a text part without text).
 */
function collectParts(parts: unknown[], where: string, out: string[], depth: number): ExtractProblem | undefined {
  for (let i = 0; i < parts.length; i++) {
    const part = asObject(parts[i]);
    const at = `${where}[${i}]`;
    if (part === undefined) return problem("invalid_request_body", `'${at}' must be an object`);
    const text = part.text;
    const partType = part.type;
    if (typeof text === "string") {
      out.push(text);
    } else if (typeof partType === "string" && TEXT_PART_TYPES[partType] === true) {
      return problem("invalid_request_body", `'${at}.text' must be a string`);
    }
    if (partType === "tool_result" && !isAbsent(part.content)) {
      // Tool output reaches the model like user text: injected instructions hide there too.
      if (depth >= MAX_CONTENT_DEPTH) return problem("invalid_request_body", `'${at}.content' is nested too deeply`);
      const err = collectContent(part.content, `${at}.content`, out, depth + 1);
      if (err !== undefined) return err;
    } else if (partType === "document") {
      const source = asObject(part.source);
      if (source !== undefined && source.type === "text" && typeof source.data === "string") out.push(source.data);
    }
  }
  return undefined;
}

/** Appends the text of a content value (string, null, or parts) to `out`. */
function collectContent(content: unknown, where: string, out: string[], depth: number): ExtractProblem | undefined {
  if (isAbsent(content)) return undefined;
  if (typeof content === "string") {
    out.push(content);
    return undefined;
  }
  const parts = asArray(content);
  if (parts === undefined) {
    return problem("invalid_request_body", `'${where}' must be a string, an array of content parts or null`);
  }
  return collectParts(parts, where, out, depth);
}

function joined(texts: string[]): string {
  return texts.length === 1 ? texts[0] : table.concat(texts, "\n");
}

/** Pushes one item for the texts of one message (nothing when it has no text). */
function pushItem(items: PromptText[], texts: string[], role: string, index: number | undefined): void {
  if (texts.length === 0) return;
  const text = joined(texts);
  if (text !== "") items.push({ text, message_index: index, role });
}

function extractSystem(body: JsonObject, scope: MatchScope, items: PromptText[]): ExtractProblem | undefined {
  const system = body.system;
  if (isAbsent(system)) return undefined;
  const texts: string[] = [];
  if (typeof system === "string") texts.push(system);
  else {
    const blocks = asArray(system);
    if (blocks === undefined) return problem("invalid_request_body", "'system' must be a string or an array of content blocks");
    const err = collectParts(blocks, "system", texts, 1);
    if (err !== undefined) return err;
  }
  if (scope === "all") pushItem(items, texts, "system", undefined);
  return undefined;
}

/** Validates every message (a malformed one out of scope is still malformed) and keeps those in scope. */
function extractMessages(messages: unknown[], scope: MatchScope, items: PromptText[]): ExtractProblem | undefined {
  let lastUserTexts: string[] | undefined;
  let lastUserIndex = -1;
  for (let i = 0; i < messages.length; i++) {
    const message = asObject(messages[i]);
    if (message === undefined) return problem("invalid_request_body", `'messages[${i}]' must be an object`);
    const role = message.role;
    if (typeof role !== "string") return problem("invalid_request_body", `'messages[${i}].role' must be a string`);
    const texts: string[] = [];
    const err = collectContent(message.content, `messages[${i}].content`, texts, 1);
    if (err !== undefined) return err;
    if (scope === "all" || (scope === "all_user" && role === "user")) pushItem(items, texts, role, i);
    else if (role === "user") {
      lastUserTexts = texts;
      lastUserIndex = i;
    }
  }
  if (scope === "last_user" && lastUserTexts !== undefined) pushItem(items, lastUserTexts, "user", lastUserIndex);
  return undefined;
}

function tokenIdsProblem(): ExtractProblem {
  return problem("unsupported_prompt", "'prompt' given as token ids cannot be checked by the prompt guard");
}

/** Legacy completions: every prompt is the user's, whatever the scope. Returns [problem, count]. */
function extractPrompt(prompt: unknown, items: PromptText[]): LuaMultiReturn<[ExtractProblem | undefined, number]> {
  if (typeof prompt === "string") {
    pushItem(items, [prompt], "user", undefined);
    return $multi(undefined, 1);
  }
  const list = asArray(prompt);
  if (list === undefined) return $multi(problem("invalid_request_body", "'prompt' must be a string or an array of strings"), 0);
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    if (typeof entry === "string") pushItem(items, [entry], "user", i);
    // Token ids (numbers, or arrays of them) are text the guard cannot read: refusing them keeps
    // them from being a way around the patterns.
    else if (typeof entry === "number" || type(entry) === "table") return $multi(tokenIdsProblem(), list.length);
    else return $multi(problem("invalid_request_body", `'prompt[${i}]' must be a string`), list.length);
  }
  return $multi(undefined, list.length);
}

/** The texts the guard checks in `body` (a decoded JSON object) for `scope`. */
export function extractPrompts(body: JsonObject, scope: MatchScope): Extraction {
  const items: PromptText[] = [];
  let count = 0;
  const systemProblem = extractSystem(body, scope, items);
  if (systemProblem !== undefined) return { items, message_count: count, problem: systemProblem };
  if (!isAbsent(body.messages)) {
    const messages = asArray(body.messages);
    if (messages === undefined) {
      return { items, message_count: count, problem: problem("invalid_request_body", "'messages' must be an array") };
    }
    count += messages.length;
    const err = extractMessages(messages, scope, items);
    if (err !== undefined) return { items, message_count: count, problem: err };
  }
  if (!isAbsent(body.prompt)) {
    const [err, prompts] = extractPrompt(body.prompt, items);
    count += prompts;
    if (err !== undefined) return { items, message_count: count, problem: err };
  }
  return { items, message_count: count };
}
