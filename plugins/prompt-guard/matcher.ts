/**
 * Allow and deny patterns over the extracted texts.
 *
 * - Deny wins: every text is checked against every deny rule before any allow rule.
 * - With allow rules set, every checked text must match at least one of them.
 * - Patterns are PCRE as ngx.re runs them, with the options "jo" (JIT, compiled once per worker
 *   and cached by ngx.re), "U" (UTF-8 mode, so `.` and `[...]` see characters, not bytes; the
 *   caller has checked that the texts are valid UTF-8, which "U" needs) and "i" when
 *   case_insensitive is set.
 * - A match that ngx.re reports as an error (the PCRE match limit, lua_regex_match_limit, or
 *   the JIT stack limit on a catastrophic-backtracking pattern) fails closed: it is an outcome
 *   of its own ("error"), which the handler blocks like a match. A worker is never stalled and
 *   a prompt never passes because its pattern could not be run.
 *
 * Rule names: a named rule (allow_rules / deny_rules) is reported by its name, a plain pattern
 * by its field path in the config, e.g. "deny_patterns.2" (1-based, as Kong names config paths).
 */
import type { PromptText } from "./extract";

export interface Rule {
  name: string;
  pattern: string;
}

export interface RuleSet {
  deny: Rule[];
  allow: Rule[];
  /** ngx.re options for every pattern of this set. */
  options: string;
}

export interface NamedRule {
  readonly name: string;
  readonly pattern: string;
}

/** The config fields the matcher reads (unset arrays may be nil or ngx.null). */
export interface RuleConfig {
  readonly allow_patterns?: readonly string[] | null;
  readonly deny_patterns?: readonly string[] | null;
  readonly allow_rules?: readonly NamedRule[] | null;
  readonly deny_rules?: readonly NamedRule[] | null;
  readonly case_insensitive?: boolean;
}

export type MatchOutcome =
  /** A deny rule matched `item`. */
  | { kind: "deny"; rule: string; item: PromptText }
  /** Allow rules are set and none matched `item`. */
  | { kind: "no_allow"; item: PromptText }
  /** ngx.re could not finish running `rule` over `item` (match limit, JIT stack limit). */
  | { kind: "error"; rule: string; item: PromptText; error: string };

export const BASE_OPTIONS = "joU";

function isList<T>(value: readonly T[] | null | undefined): value is readonly T[] {
  return typeof value === "object";
}

function addPlain(rules: Rule[], patterns: readonly string[] | null | undefined, field: string): void {
  if (!isList(patterns)) return;
  for (let i = 0; i < patterns.length; i++) rules.push({ name: `${field}.${i + 1}`, pattern: patterns[i] });
}

function addNamed(rules: Rule[], named: readonly NamedRule[] | null | undefined): void {
  if (!isList(named)) return;
  for (const rule of named) rules.push({ name: rule.name, pattern: rule.pattern });
}

export function buildRuleSet(conf: RuleConfig): RuleSet {
  const deny: Rule[] = [];
  const allow: Rule[] = [];
  addPlain(deny, conf.deny_patterns, "deny_patterns");
  addNamed(deny, conf.deny_rules);
  addPlain(allow, conf.allow_patterns, "allow_patterns");
  addNamed(allow, conf.allow_rules);
  return { deny, allow, options: conf.case_insensitive === true ? BASE_OPTIONS + "i" : BASE_OPTIONS };
}

// Kong hands every request of a plugin instance the same conf table until the configuration
// changes, so the conf itself is the cache key; weak keys let an old configuration's rules go.
const ruleSets = new LuaTable<RuleConfig, RuleSet>();
setmetatable(ruleSets, { __mode: "k" });

/** The rule set of a conf, built once per conf table. */
export function ruleSetFor(conf: RuleConfig): RuleSet {
  let set = ruleSets.get(conf);
  if (set === undefined) {
    set = buildRuleSet(conf);
    ruleSets.set(conf, set);
  }
  return set;
}

/**
 * True when text has no byte >= 0x80: then it is valid UTF-8 and has as many characters as
 * bytes. One JIT-compiled scan in C (a Lua pattern would take ten times as long on 100 KB).
 */
export function isAscii(text: string): boolean {
  const [from, , err] = ngx.re.find(text, "[\\x80-\\xff]", "jo");
  return from === undefined && err === undefined;
}

/**
 * True when text is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF). PCRE checks the whole subject in "u" mode before matching; an error means it
 * is not valid. This check is what lets the patterns run with "U" (no check per pattern).
 */
export function isValidUtf8(text: string): boolean {
  const [from, , err] = ngx.re.find(text, "^", "jou");
  return from !== undefined && err === undefined;
}

/** Whether `rule` matches `text`: [true] | [false] | [false, error]. */
function matches(text: string, rule: Rule, options: string): LuaMultiReturn<[boolean, string | undefined]> {
  const [from, , err] = ngx.re.find(text, rule.pattern, options);
  if (from !== undefined) return $multi(true, undefined);
  return $multi(false, err);
}

/**
 * The first reason to refuse `items` (all valid UTF-8), or undefined when they pass. Deny rules
 * are tried on every text first, so a denied text wins over an earlier text that only missed
 * the allow list.
 */
export function matchPrompts(set: RuleSet, items: readonly PromptText[]): MatchOutcome | undefined {
  const options = set.options;
  for (const item of items) {
    for (const rule of set.deny) {
      const [hit, err] = matches(item.text, rule, options);
      if (hit) return { kind: "deny", rule: rule.name, item };
      if (err !== undefined) return { kind: "error", rule: rule.name, item, error: err };
    }
  }
  if (set.allow.length === 0) return undefined;
  for (const item of items) {
    let failed: MatchOutcome | undefined;
    let allowed = false;
    for (const rule of set.allow) {
      const [hit, err] = matches(item.text, rule, options);
      if (hit) {
        allowed = true;
        break;
      }
      if (err !== undefined && failed === undefined) failed = { kind: "error", rule: rule.name, item, error: err };
    }
    if (!allowed) return failed ?? { kind: "no_allow", item };
  }
  return undefined;
}
