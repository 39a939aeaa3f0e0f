// Whose budget a request spends: the `limit_by` entity, falling back to the client IP when
// that entity is absent (as Kong's rate-limiting does).

export type LimitBy = "consumer" | "credential" | "consumer_group" | "ip" | "header" | "path" | "service" | "route";

export interface IdentifierConfig {
  limit_by: LimitBy;
  header_name?: string | null;
  path?: string | null;
}

/** What the request offers to identify it; each getter is only called when limit_by needs it. */
export interface RequestFacts {
  consumerId(this: void): string | undefined;
  credentialId(this: void): string | undefined;
  /** Consumer group names; undefined where the node has no consumer groups (Kong OSS). */
  consumerGroups(this: void): string[] | undefined;
  forwardedIp(this: void): string;
  header(this: void, name: string): string | undefined;
  path(this: void): string;
  serviceId(this: void): string | undefined;
  routeId(this: void): string | undefined;
}

function present(value: string | undefined | null): value is string {
  return typeof value === "string" && value !== "";
}

/**
 * The counter identity, prefixed by its kind so a header value can never collide with another
 * client's IP. `consumer_group` uses the sorted group names where Kong has consumer groups
 * (Enterprise), otherwise the consumer, like `consumer`.
 */
export function identifierOf(conf: IdentifierConfig, facts: RequestFacts): string {
  const by = conf.limit_by;
  let id: string | undefined;
  if (by === "consumer") {
    id = facts.consumerId() ?? facts.credentialId();
    if (present(id)) return `consumer:${id}`;
  } else if (by === "credential") {
    id = facts.credentialId();
    if (present(id)) return `credential:${id}`;
  } else if (by === "consumer_group") {
    const groups = facts.consumerGroups();
    if (groups !== undefined && groups.length > 0) {
      const names = [...groups];
      names.sort();
      return `group:${names.join(",")}`;
    }
    id = facts.consumerId() ?? facts.credentialId();
    if (present(id)) return `consumer:${id}`;
  } else if (by === "header") {
    if (present(conf.header_name)) {
      id = facts.header(conf.header_name);
      if (present(id)) return `header:${id}`;
    }
  } else if (by === "path") {
    // Kong's meaning: the limit applies to requests for exactly this path; others by IP.
    id = facts.path();
    if (present(conf.path) && id === conf.path) return `path:${id}`;
  } else if (by === "service") {
    id = facts.serviceId();
    if (present(id)) return `service:${id}`;
  } else if (by === "route") {
    id = facts.routeId();
    if (present(id)) return `route:${id}`;
  }
  return `ip:${facts.forwardedIp()}`;
}
