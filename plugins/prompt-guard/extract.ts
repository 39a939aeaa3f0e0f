/**
 * Which texts of a decoded request body the guard checks (OpenAI chat `messages`, legacy
 * `prompt`, Anthropic `system` and content blocks). A message's text parts are joined with "\n",
 * so an allow pattern judges the message the model sees, not each fragment.
 */
import * as cjson from "cjson.safe";
import { asArray, asObject, type JsonObject } from "../ai-gateway-shared/json";

export type MatchScope = "last_user" | "all_user" | "all";

export interface PromptText {
  text: string;
  /** 0-based; undefined for `system` and a single prompt string. */
  message_index?: number;
  role: string;
}

export type ExtractProblemReason = "invalid_request_body" | "unsupported_prompt";

export interface ExtractProblem {
  reason: ExtractProblemReason;
  /** A JSON path such as `messages[2].content`, never the text. */
  message: string;
}

export interface Extraction {
  items: PromptText[];
  message_count: number;
  /** Then items are incomplete and must not be trusted. */
  problem?: ExtractProblem;
}


/** A part of another type may lack `text`. */
const TEXT_PART_TYPES: { [type: string]: boolean } = { text: true, input_text: true, output_text: true };

function isAbsent(v: unknown): boolean {
  return v === undefined || v === cjson.null;
}


function problem(reason: ExtractProblemReason, message: string): ExtractProblem {
  return { reason, message };
}

/** A tool_result's content blocks are level 2. */
const MAX_CONTENT_DEPTH = 2;

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

/** Validates every message: a malformed one out of scope is still malformed. */
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

/** Every prompt is the user's, whatever the scope. */
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
    // Token ids are text the guard cannot read: refused, or they would bypass the patterns.
    else if (typeof entry === "number" || type(entry) === "table") return $multi(tokenIdsProblem(), list.length);
    else return $multi(problem("invalid_request_body", `'prompt[${i}]' must be a string`), list.length);
  }
  return $multi(undefined, list.length);
}

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
