// Configuration of prompt-guard. allow_patterns / deny_patterns are plain strings as in Kong's
// ai-prompt-guard, so its configs carry over; the *_rules add a name for the logs.

import * as typedefs from "kong.db.schema.typedefs";
import { METRICS_FIELD } from "../ai-gateway-shared/metrics";

/** The run-time options ("joU") check the same syntax. */
const VALIDATE_OPTIONS = "jou";

function validateRegex(this: void, pattern: string): KongValidatorResult {
  const [, , err] = ngx.re.find("", pattern, VALIDATE_OPTIONS);
  if (err !== undefined) return $multi(undefined, `invalid regex '${pattern}': ${err}`);
  return true;
}

// A fresh table per use: Kong's schema library annotates field definitions in place.
function patternField(description: string) {
  return { type: "string", required: true, len_min: 1, len_max: 2000, custom_validator: validateRegex, description } as const;
}

function plainPatterns(description: string) {
  return { type: "array", elements: patternField("A PCRE pattern (ngx.re syntax)."), description } as const;
}

function namedRules(description: string) {
  return {
    type: "array",
    description,
    elements: {
      type: "record",
      fields: [
        { name: { type: "string", required: true, len_min: 1, len_max: 128, description: "The name the logs report when this rule decides." } },
        { pattern: patternField("A PCRE pattern (ngx.re syntax).") },
      ],
    },
  } as const;
}

const schema = {
  name: "prompt-guard",
  fields: [
    { protocols: typedefs.protocols_http },
    {
      config: {
        type: "record",
        fields: [
          { allow_patterns: plainPatterns("When set, every checked prompt must match at least one allow pattern or rule.") },
          { deny_patterns: plainPatterns("A prompt that matches any deny pattern or rule is refused (deny wins over allow).") },
          { allow_rules: namedRules("Named allow patterns, checked together with allow_patterns.") },
          { deny_rules: namedRules("Named deny patterns, checked together with deny_patterns.") },
          { case_insensitive: { type: "boolean", required: true, default: false, description: "Match every pattern case-insensitively." } },
          {
            match_scope: {
              type: "string",
              required: true,
              default: "last_user",
              one_of: ["last_user", "all_user", "all"],
              description: "Which messages are checked: the last user message, every user message, or every message of any role (system included).",
            },
          },
          { max_messages: { type: "integer", between: [1, 1000000], description: "Most messages a request may carry (entries of `messages`, or prompts of a `prompt` array)." } },
          {
            max_prompt_length: {
              type: "integer",
              between: [1, 2147483647],
              description: "Most characters (UTF-8 characters, not bytes) of the checked prompt text, all checked messages together.",
            },
          },
          {
            max_body_size: {
              type: "integer",
              required: true,
              default: 1048576,
              between: [1, 1073741824],
              description: "Largest request body, in bytes, the guard reads; a larger body is refused with 413.",
            },
          },
          {
            mode: {
              type: "string",
              required: true,
              default: "block",
              one_of: ["block", "monitor"],
              description: "block: refuse violating requests. monitor: let them through and log what would have been refused.",
            },
          },
          {
            error_message: {
              type: "string",
              required: true,
              default: "prompt blocked by a guard rule",
              len_min: 1,
              len_max: 1000,
              description: "The error message a request refused by a pattern gets (the rule is not named to the client).",
            },
          },
          { log_prompt: { type: "boolean", required: true, default: false, description: "Add the prompt text to the log serializer value (off: logs never carry prompts)." } },
          METRICS_FIELD,
        ],
        entity_checks: [{ at_least_one_of: ["allow_patterns", "deny_patterns", "allow_rules", "deny_rules", "max_messages", "max_prompt_length"] }],
      },
    },
  ],
} as const satisfies KongPluginSchema;

export = schema;
