// Configuration of token-rate-limiting. Field names follow Kong's rate-limiting where the
// meaning is the same.

import * as typedefs from "kong.db.schema.typedefs";
import { METRICS_FIELD } from "../ai-gateway-shared/metrics";

const LIMIT_MAX = 1e15;

// A fresh table per use: Kong's schema library annotates field definitions in place.
function tokenLimit(description: string) {
  return { type: "integer", between: [0, LIMIT_MAX], description } as const;
}

const PERIOD_NAMES = ["second", "minute", "hour", "day", "month"] as const;

function requiredWhen<const F extends string, const V extends string, const T extends string>(ifField: F, value: V, thenField: T) {
  return { conditional: { if_field: ifField, if_match: { eq: value }, then_field: thenField, then_match: { required: true } } } as const;
}

const schema = {
  name: "token-rate-limiting",
  fields: [
    { protocols: typedefs.protocols_http },
    {
      config: {
        type: "record",
        fields: [
          { second: tokenLimit("Tokens that may be spent per second.") },
          { minute: tokenLimit("Tokens that may be spent per minute.") },
          { hour: tokenLimit("Tokens that may be spent per hour.") },
          { day: tokenLimit("Tokens that may be spent per day.") },
          { month: tokenLimit("Tokens that may be spent per calendar month (UTC).") },
          {
            model_limits: {
              type: "array",
              description: "Extra limits for requests whose JSON body names this `model`; they apply on top of the plugin-wide limits, with their own counters.",
              elements: {
                type: "record",
                fields: [
                  { model: { type: "string", required: true, len_min: 1, not_one_of: ["*"], description: "The request's `model`, matched exactly." } },
                  { second: tokenLimit("Tokens that may be spent per second.") },
                  { minute: tokenLimit("Tokens that may be spent per minute.") },
                  { hour: tokenLimit("Tokens that may be spent per hour.") },
                  { day: tokenLimit("Tokens that may be spent per day.") },
                  { month: tokenLimit("Tokens that may be spent per calendar month (UTC).") },
                ],
                entity_checks: [{ at_least_one_of: PERIOD_NAMES }],
              },
            },
          },
          {
            limit_by: {
              type: "string",
              default: "consumer",
              one_of: ["consumer", "credential", "consumer_group", "ip", "header", "path", "service", "route"],
              description: "Whose budget a request spends; when that entity is absent the client IP is used.",
            },
          },
          { header_name: typedefs.header_name({ description: "The header whose value identifies the client when `limit_by` is `header`." }) },
          { path: typedefs.path({ description: "The request path that is limited when `limit_by` is `path` (other paths are limited by IP)." }) },
          {
            tokens_count: {
              type: "string",
              default: "total",
              one_of: ["total", "prompt", "completion", "cost"],
              description: "Which tokens count: all, prompt only, completion only, or a weighted cost.",
            },
          },
          { prompt_weight: { type: "number", default: 1, between: [0, 1e6], description: "Cost of one prompt token when `tokens_count` is `cost`." } },
          { completion_weight: { type: "number", default: 1, between: [0, 1e6], description: "Cost of one completion token when `tokens_count` is `cost`." } },
          {
            window_type: {
              type: "string",
              default: "fixed",
              one_of: ["fixed", "sliding"],
              description: "fixed: counters reset at each window boundary; sliding: the previous window counts in proportion to its overlap.",
            },
          },
          {
            inject_stream_usage: {
              type: "boolean",
              default: true,
              description: "Ask OpenAI-style upstreams for a usage chunk on streams whose client did not, and remove it from the client's stream.",
            },
          },
          {
            reserve_max_tokens: {
              type: "boolean",
              default: false,
              description: "Reserve the most a request can cost (its body bytes plus reserve_prompt_overhead, plus max_tokens) in access and settle the real count later, so concurrent requests cannot overshoot together.",
            },
          },
          {
            reserve_prompt_overhead: {
              type: "integer",
              default: 64,
              between: [0, 1e9],
              description: "Prompt tokens reserved on top of the request body's bytes: what a chat template adds once (default system prompt, headers) and what the body does not show (images by URL).",
            },
          },
          {
            reserve_tokens_cap: {
              type: "integer",
              default: 4096,
              between: [1, 1e9],
              description: "Completion tokens reserved for a request without max_tokens, and the most reserved for one with a larger max_tokens.",
            },
          },
          {
            llm_format: {
              type: "string",
              default: "auto",
              one_of: ["auto", "openai", "anthropic", "ollama"],
              description: "The upstream's API format; auto recognises it from the request and the response itself.",
            },
          },
          { policy: { type: "string", default: "local", one_of: ["local", "redis"], description: "Where counters live: this node's shared memory, or Redis for a cluster of nodes." } },
          {
            redis: {
              type: "record",
              required: true,
              fields: [
                { host: typedefs.host({ description: "Redis host." }) },
                { port: typedefs.port({ default: 6379 }) },
                { username: { type: "string", referenceable: true, description: "Redis ACL user (Redis 6+), with `password`." } },
                { password: { type: "string", encrypted: true, referenceable: true, len_min: 0, description: "Redis password (AUTH)." } },
                { database: { type: "integer", default: 0, between: [0, 1024], description: "Redis database number." } },
                { ssl: { type: "boolean", default: false, description: "Connect to Redis over TLS." } },
                { ssl_verify: { type: "boolean", default: false, description: "Verify the Redis server's TLS certificate." } },
                { server_name: typedefs.host({ description: "SNI and certificate name for TLS to Redis." }) },
                { timeout: typedefs.timeout({ default: 2000 }) },
                { keepalive_pool_size: { type: "integer", default: 256, between: [1, 65535], description: "Idle Redis connections kept per worker." } },
              ],
            },
          },
          { fault_tolerant: { type: "boolean", default: true, description: "When Redis fails, let requests through uncounted (true) or refuse them with 503 (false)." } },
          { hide_client_headers: { type: "boolean", default: false, description: "Do not send the X-RateLimit-* and RateLimit-* headers." } },
          { error_code: { type: "number", default: 429, between: [400, 599], description: "Status of the response when a limit is exhausted." } },
          { error_message: { type: "string", default: "Token rate limit exceeded", description: "Message of the error body when a limit is exhausted." } },
          METRICS_FIELD,
        ],
      },
    },
  ],
  entity_checks: [
    {
      at_least_one_of: ["config.second", "config.minute", "config.hour", "config.day", "config.month", "config.model_limits"],
    },
    requiredWhen("config.policy", "redis", "config.redis.host"),
    requiredWhen("config.limit_by", "header", "config.header_name"),
    requiredWhen("config.limit_by", "path", "config.path"),
  ],
} as const satisfies KongPluginSchema;

export = schema;
