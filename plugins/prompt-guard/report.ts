/**
 * What the guard tells the logs: the value of the log serializer key `prompt_guard` (so that
 * http-log, file-log and friends carry it) and the error.log line of monitor mode. The prompt
 * text appears only in the serializer value, and only with log_prompt.
 */
import { utf8Prefix } from "../ai-gateway-shared/utf8";
import type { PromptText } from "./extract";
import type { Reason, Violation } from "./guard";

export const SERIALIZER_KEY = "prompt_guard";

/** At most this many characters of prompt text go into one log entry. */
export const PROMPT_LOG_MAX_CHARS = 4096;

export type Action = "allowed" | "blocked" | "monitored";

export interface GuardLogEntry {
  action: Action;
  /** Why the request was (or in monitor mode would have been) refused. */
  reason?: Reason;
  /** The rule's name (a named rule) or config path ("deny_patterns.2"). */
  rule?: string;
  /** 0-based index in `messages` (or `prompt`) of the offending text. */
  message_index?: number;
  role?: string;
  /** How many texts were checked. */
  checked: number;
  /** ngx.re's error for reason pattern_error. */
  error?: string;
  /** Only with log_prompt: the offending text, or the checked texts of an allowed request. */
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

/** The error.log line for a refused (or, in monitor mode, would-be refused) request: no prompt text. */
export function logLine(action: Action, violation: Violation): string {
  const parts: string[] = [action === "monitored" ? "would block (monitor mode):" : "blocked:", `reason=${violation.reason}`];
  if (violation.rule !== undefined) parts.push(`rule=${violation.rule}`);
  if (violation.message_index !== undefined) parts.push(`message_index=${violation.message_index}`);
  if (violation.role !== undefined) parts.push(`role=${violation.role}`);
  if (violation.error !== undefined) parts.push(`error=${violation.error}`);
  return table.concat(parts, " ");
}
