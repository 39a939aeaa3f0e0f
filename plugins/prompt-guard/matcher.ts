/**
 * Allow and deny patterns over the extracted texts; deny wins. A match that ngx.re reports as an
 * error (match limit, JIT stack limit) fails closed: a prompt never passes because its pattern
 * could not be run. A plain pattern is named by its config path, 1-based as Kong's ("deny_patterns.2").
 */
import type { PromptText } from "./extract";

export interface Rule {
  name: string;
  pattern: string;
}

export interface RuleSet {
  deny: Rule[];
  allow: Rule[];
  options: string;
}

export interface NamedRule {
  readonly name: string;
  readonly pattern: string;
}

/** Unset arrays may be nil or ngx.null. */
export interface RuleConfig {
  readonly allow_patterns?: readonly string[] | null;
  readonly deny_patterns?: readonly string[] | null;
  readonly allow_rules?: readonly NamedRule[] | null;
  readonly deny_rules?: readonly NamedRule[] | null;
  readonly case_insensitive?: boolean;
}

export type MatchOutcome =
  | { kind: "deny"; rule: string; item: PromptText }
  | { kind: "no_allow"; item: PromptText }
  | { kind: "error"; rule: string; item: PromptText; error: string };

// "jo": JIT, compiled once per worker. "U": characters, not bytes; needs the texts checked as valid UTF-8 first.
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

// Kong hands a plugin instance the same conf table until the configuration changes: weak keys
// let an old configuration's rules go.
const ruleSets = new LuaTable<RuleConfig, RuleSet>();
setmetatable(ruleSets, { __mode: "k" });

export function ruleSetFor(conf: RuleConfig): RuleSet {
  let set = ruleSets.get(conf);
  if (set === undefined) {
    set = buildRuleSet(conf);
    ruleSets.set(conf, set);
  }
  return set;
}

/** One JIT-compiled scan in C: a Lua pattern takes ten times as long on 100 KB. */
export function isAscii(text: string): boolean {
  const [from, , err] = ngx.re.find(text, "[\\x80-\\xff]", "jo");
  return from === undefined && err === undefined;
}

/** PCRE checks the whole subject in "u" mode before matching; this lets the patterns skip the check ("U"). */
export function isValidUtf8(text: string): boolean {
  const [from, , err] = ngx.re.find(text, "^", "jou");
  return from !== undefined && err === undefined;
}

function matches(text: string, rule: Rule, options: string): LuaMultiReturn<[boolean, string | undefined]> {
  const [from, , err] = ngx.re.find(text, rule.pattern, options);
  if (from !== undefined) return $multi(true, undefined);
  return $multi(false, err);
}

/** Deny rules are tried on every text first, so a denied text wins over one that only missed the allow list. */
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
