/** The guard's size limits: message count, and prompt length in UTF-8 characters, not bytes. */
import { utf8Length } from "../ai-gateway-shared/utf8";
import type { PromptText } from "./extract";

export type LimitReason = "too_many_messages" | "prompt_too_long";

export interface LimitViolation {
  reason: LimitReason;
  message: string;
  actual: number;
  limit: number;
}

/** An unset optional field reaches conf as nil or ngx.null. */
export function isLimit(value: number | null | undefined): value is number {
  return typeof value === "number";
}

export function checkMessageCount(count: number, max: number | null | undefined): LimitViolation | undefined {
  if (!isLimit(max) || count <= max) return undefined;
  return { reason: "too_many_messages", message: `too many messages: ${count}, at most ${max} allowed`, actual: count, limit: max };
}

/** `ascii[i]`: the caller found text i ASCII, so its characters are its bytes. */
export function promptLength(items: readonly PromptText[], ascii?: readonly boolean[]): number {
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    const text = items[i].text;
    total += ascii !== undefined && ascii[i] ? text.length : utf8Length(text);
  }
  return total;
}

export function checkPromptLength(items: readonly PromptText[], max: number | null | undefined, ascii?: readonly boolean[]): LimitViolation | undefined {
  if (!isLimit(max)) return undefined;
  const length = promptLength(items, ascii);
  if (length <= max) return undefined;
  return { reason: "prompt_too_long", message: `prompt too long: ${length} characters, at most ${max} allowed`, actual: length, limit: max };
}
