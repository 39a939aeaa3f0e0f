/**
 * What the guard tells the logs: the serializer value for Kong's log plugins and the error.log
 * line. Prompt text appears only in the serializer value, and only with log_prompt.
 */
import { utf8Prefix } from "../ai-gateway-shared/utf8";
import type { PromptText } from "./extract";
import type { Reason, Violation } from "./guard";

export const SERIALIZER_KEY = "prompt_guard";

export const PROMPT_LOG_MAX_CHARS = 4096;

export type Action = "allowed" | "blocked" | "monitored";

export interface GuardLogEntry {
  action: Action;
  reason?: Reason;
  rule?: string;
  message_index?: number;
  role?: string;
  /** How many texts were checked. */
  checked: number;
  error?: string;
  /** Only with log_prompt. */
  prompt?: string;
  prompt_truncated?: boolean;
}

export function actionFor(violation: Violation | undefined, mode: "block" | "monitor"): Action {
  if (violation === undefined) return "allowed";
  return mode === "monitor" ? "monitored" : "blocked";
}

function promptText(violation: Violation | undefined, items: readonly PromptText[]): string | undefined {
  if (violation !== undefined) return violation.text;
  if (items.length === 0) return undefined;
  const texts: string[] = [];
  for (const item of items) texts.push(item.text);
  return table.concat(texts, "\n");
}

export function logEntry(
  action: Action,
  violation: Violation | undefined,
  items: readonly PromptText[],
  logPrompt: boolean,
): GuardLogEntry {
  const entry: GuardLogEntry = { action, checked: items.length };
  if (violation !== undefined) {
    entry.reason = violation.reason;
    entry.rule = violation.rule;
    entry.message_index = violation.message_index;
    entry.role = violation.role;
    entry.error = violation.error;
  }
  if (logPrompt) {
    const text = promptText(violation, items);
    if (text !== undefined) {
      const cut = utf8Prefix(text, PROMPT_LOG_MAX_CHARS);
      entry.prompt = cut;
      if (cut.length < text.length) entry.prompt_truncated = true;
    }
  }
  return entry;
}

/** Never prompt text. */
export function logLine(action: Action, violation: Violation): string {
  const parts: string[] = [action === "monitored" ? "would block (monitor mode):" : "blocked:", `reason=${violation.reason}`];
  if (violation.rule !== undefined) parts.push(`rule=${violation.rule}`);
  if (violation.message_index !== undefined) parts.push(`message_index=${violation.message_index}`);
  if (violation.role !== undefined) parts.push(`role=${violation.role}`);
  if (violation.error !== undefined) parts.push(`error=${violation.error}`);
  return table.concat(parts, " ");
}
