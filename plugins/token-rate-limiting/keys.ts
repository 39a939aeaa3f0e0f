// Counter names, shared by the local dict and Redis. Like Kong's rate-limiting they are scoped
// by the plugin instance's route and service (a global instance shares one budget across
// routes), then identifier, model scope, period and window start.

import type { Period } from "./windows";

export const KEY_PREFIX = "token_rate_limiting";
const EMPTY_UUID = "00000000-0000-0000-0000-000000000000";
/** Model scope of the plugin-wide limits. */
export const ALL_MODELS = "*";

// Identifiers come from clients (header values, paths): long ones are hashed so a client
// cannot make counter names arbitrarily large.
const MAX_PART_LENGTH = 128;

export interface KeyScope {
  route_id?: string | null;
  service_id?: string | null;
}

const ESCAPES: Record<string, string> = { "%": "%25", ":": "%3A", "{": "%7B", "}": "%7D" };

/**
 * `:` separates key parts and `{}` delimit the Redis Cluster hash tag, so they are escaped
 * inside a part (and `%`, the escape itself).
 */
export function escapePart(part: string): string {
  const [escaped] = string.gsub(part, "[%%:{}]", ESCAPES);
  return escaped;
}

function boundedPart(part: string, hash: (this: void, s: string) => string): string {
  if (part.length <= MAX_PART_LENGTH) return escapePart(part);
  return `#${hash(part)}`;
}

function idOrEmpty(id: string | null | undefined): string {
  return typeof id !== "string" || id === "" ? EMPTY_UUID : id;
}

/**
 * `token_rate_limiting:{<route>:<service>:<identifier>}:<model or *>:<period>:<window start>`.
 * The braces are a Redis Cluster hash tag: every counter one request touches lives in the same
 * slot, so one script can update them all.
 */
export function counterKey(
  scope: KeyScope,
  identifier: string,
  model: string,
  period: Period,
  windowStart: number,
  hash: (this: void, s: string) => string,
): string {
  return [
    KEY_PREFIX,
    `{${idOrEmpty(scope.route_id)}`,
    idOrEmpty(scope.service_id),
    `${boundedPart(identifier, hash)}}`,
    model === ALL_MODELS ? ALL_MODELS : boundedPart(model, hash),
    period,
    string.format("%d", windowStart),
  ].join(":");
}
