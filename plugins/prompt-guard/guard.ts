/**
 * The guard's decision over a decoded request body, stopping at the first violation. The pattern
 * reasons all answer "prompt_blocked" with the configured message, so a client cannot probe rules.
 */
import { extractPrompts, type ExtractProblemReason, type MatchScope, type PromptText } from "./extract";
import { checkMessageCount, checkPromptLength, type LimitReason, type LimitViolation } from "./limits";
import { isAscii, isValidUtf8, matchPrompts, ruleSetFor, type MatchOutcome, type RuleConfig } from "./matcher";
import type { JsonObject } from "../ai-gateway-shared/json";

export type PatternReason = "deny_pattern" | "allow_pattern_missing" | "pattern_error";
export type BodyReason = "body_too_large" | "body_unreadable" | "invalid_json";
export type Reason = PatternReason | LimitReason | ExtractProblemReason | BodyReason | "invalid_utf8";

export const BLOCKED_CODE = "prompt_blocked";

export interface Violation {
  reason: Reason;
  status: number;
  code: string;
  /** Never contains prompt text. */
  message: string;
  rule?: string;
  message_index?: number;
  role?: string;
  /** Logged only with log_prompt. */
  text?: string;
  error?: string;
}

export interface GuardConfig extends RuleConfig {
  readonly match_scope: MatchScope;
  readonly max_messages?: number | null;
  readonly max_prompt_length?: number | null;
  readonly error_message: string;
}

export interface Verdict {
  violation?: Violation;
  items: PromptText[];
}


export function requestViolation(reason: Exclude<Reason, PatternReason>, message: string, status = 400): Violation {
  return { reason, status, code: reason, message };
}

function limitViolation(v: LimitViolation): Violation {
  return requestViolation(v.reason, v.message);
}

function patternViolation(outcome: MatchOutcome, errorMessage: string): Violation {
  const item = outcome.item;
  const reason: PatternReason = outcome.kind === "deny" ? "deny_pattern" : outcome.kind === "no_allow" ? "allow_pattern_missing" : "pattern_error";
  return {
    reason,
    status: 400,
    code: BLOCKED_CODE,
    message: errorMessage,
    rule: outcome.kind === "no_allow" ? undefined : outcome.rule,
    message_index: item.message_index,
    role: item.role,
    text: item.text,
    error: outcome.kind === "error" ? outcome.error : undefined,
  };
}

/** Most prompts are ASCII, whose length needs no counting. */
function scanTexts(items: readonly PromptText[]): LuaMultiReturn<[boolean[], PromptText | undefined]> {
  const ascii: boolean[] = [];
  for (const item of items) {
    const plain = isAscii(item.text);
    if (!plain && !isValidUtf8(item.text)) return $multi(ascii, item);
    ascii.push(plain);
  }
  return $multi(ascii, undefined);
}

function where(item: PromptText): string {
  return item.message_index === undefined ? `the ${item.role} text` : `message ${item.message_index}`;
}

export function evaluate(conf: GuardConfig, body: JsonObject): Verdict {
  const extraction = extractPrompts(body, conf.match_scope);
  const items = extraction.items;
  if (extraction.problem !== undefined) {
    return { violation: requestViolation(extraction.problem.reason, extraction.problem.message), items: [] };
  }
  const tooMany = checkMessageCount(extraction.message_count, conf.max_messages);
  if (tooMany !== undefined) return { violation: limitViolation(tooMany), items };
  const [ascii, invalid] = scanTexts(items);
  if (invalid !== undefined) {
    const violation = requestViolation("invalid_utf8", `${where(invalid)} is not valid UTF-8`);
    violation.message_index = invalid.message_index;
    violation.role = invalid.role;
    return { violation, items };
  }
  const tooLong = checkPromptLength(items, conf.max_prompt_length, ascii);
  if (tooLong !== undefined) return { violation: limitViolation(tooLong), items };
  const outcome = matchPrompts(ruleSetFor(conf), items);
  if (outcome !== undefined) return { violation: patternViolation(outcome, conf.error_message), items };
  return { items };
}
