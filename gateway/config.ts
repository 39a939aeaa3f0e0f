// Kong's declarative configuration (`_format_version: "3.0"`) normalised into the flat JSON the
// Lua runtime loads: every entity gets an id, foreign keys become `{ id }`, nested entities are
// flattened, and Kong's entity defaults are filled in. Plugin `config` is left untouched: the Lua
// side validates it against the plugin's own schema (as Kong does) and fills its defaults.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

export interface ForeignKey {
  id: string;
}

export interface ServiceEntity {
  id: string;
  name: string | null;
  protocol: string;
  host: string;
  port: number;
  path: string | null;
  retries: number;
  connect_timeout: number;
  write_timeout: number;
  read_timeout: number;
  enabled: boolean;
  tags: string[] | null;
}

export interface RouteEntity {
  id: string;
  name: string | null;
  service: ForeignKey | null;
  protocols: string[];
  methods: string[] | null;
  hosts: string[] | null;
  paths: string[] | null;
  headers: Record<string, string[]> | null;
  strip_path: boolean;
  preserve_host: boolean;
  regex_priority: number;
  path_handling: "v0" | "v1";
  https_redirect_status_code: number;
  request_buffering: boolean;
  response_buffering: boolean;
  tags: string[] | null;
}

export interface ConsumerEntity {
  id: string;
  username: string | null;
  custom_id: string | null;
  tags: string[] | null;
}

export interface KeyauthCredentialEntity {
  id: string;
  key: string;
  consumer: ForeignKey;
  ttl: number | null;
  tags: string[] | null;
}

export interface PluginEntity {
  id: string;
  name: string;
  instance_name: string | null;
  config: Record<string, unknown> | null;
  protocols: string[] | null;
  enabled: boolean;
  route: ForeignKey | null;
  service: ForeignKey | null;
  consumer: ForeignKey | null;
  tags: string[] | null;
  /** Where the entry came from, for error messages: "plugins[2]", "services[0].routes[1].plugins[0]", ... */
  _origin: string;
}

export interface NormalizedConfig {
  _format_version: string;
  services: ServiceEntity[];
  routes: RouteEntity[];
  consumers: ConsumerEntity[];
  keyauth_credentials: KeyauthCredentialEntity[];
  plugins: PluginEntity[];
}

export class DeclarativeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeclarativeConfigError";
  }
}

type Obj = Record<string, unknown>;

const FORMAT_VERSIONS = ["1.1", "2.1", "3.0"];
const TOP_LEVEL_KEYS = new Set([
  "_format_version", "_transform", "_comment", "_ignore", "_workspace", "_info",
  "services", "routes", "consumers", "plugins", "keyauth_credentials",
  // Entities Kong knows but this gateway does not run; accepted so the same file works in Kong.
  "upstreams", "targets", "certificates", "ca_certificates", "snis", "vaults",
  "basicauth_credentials", "hmacauth_credentials", "jwt_secrets", "acls", "oauth2_credentials",
]);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HTTP_METHOD_RE = /^[A-Z]+$/;
const NAMESPACE = "6f1c3c8e-6a0e-4c55-9d5e-2b7a4c1d9e01";

/** A name-based UUID (version 5 layout) so that entities without an `id` keep the same id across runs. */
export function stableId(kind: string, key: string): string {
  const hash = createHash("sha1").update(NAMESPACE).update(`${kind}:${key}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(where: string, message: string): never {
  throw new DeclarativeConfigError(`in '${where}': ${message}`);
}

function optString(o: Obj, key: string, where: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") fail(`${where}.${key}`, "expected a string");
  return v;
}

function optBool(o: Obj, key: string, where: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") fail(`${where}.${key}`, "expected a boolean");
  return v;
}

function optInt(o: Obj, key: string, where: string, dflt: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v)) fail(`${where}.${key}`, "expected an integer");
  if (v < min || v > max) fail(`${where}.${key}`, `value should be between ${min} and ${max}`);
  return v;
}

function optStringArray(o: Obj, key: string, where: string): string[] | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) fail(`${where}.${key}`, "expected an array of strings");
  return v.length === 0 ? null : (v as string[]);
}

function entityId(o: Obj, where: string, kind: string, key: string): string {
  const id = o.id;
  if (id === undefined || id === null) return stableId(kind, key);
  if (typeof id !== "string" || !UUID_RE.test(id)) fail(`${where}.id`, "expected a valid UUID");
  return id.toLowerCase();
}

function arrayAt(o: Obj, key: string, where: string): Obj[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(`${where}${where ? "." : ""}${key}`, "expected an array");
  v.forEach((e, i) => {
    if (!isObj(e)) fail(`${where}${where ? "." : ""}${key}[${i}]`, "expected a record");
  });
  return v as Obj[];
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, grpc: 80, grpcs: 443, ws: 80, wss: 443 };
const SERVICE_PROTOCOLS = ["http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss"];

function normalizeService(o: Obj, where: string, index: number): ServiceEntity {
  const name = optString(o, "name", where);
  let protocol = optString(o, "protocol", where);
  let host = optString(o, "host", where);
  let port: number | null = o.port === undefined || o.port === null ? null : optInt(o, "port", where, 80, 0, 65535);
  let path = optString(o, "path", where);
  const url = optString(o, "url", where);
  if (url !== null) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      fail(`${where}.url`, `invalid url '${url}'`);
    }
    protocol = parsed.protocol.replace(/:$/, "");
    host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    port = parsed.port ? Number(parsed.port) : null;
    // "http://h:1" has no path (Kong stores null), "http://h:1/" has "/".
    path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "") === "" ? null : parsed.pathname;
  }
  protocol = protocol ?? "http";
  if (!SERVICE_PROTOCOLS.includes(protocol)) fail(`${where}.protocol`, `expected one of: ${SERVICE_PROTOCOLS.join(", ")}`);
  if (!host) fail(`${where}.host`, "required field missing");
  if (path !== null && !path.startsWith("/")) fail(`${where}.path`, "should start with: /");
  return {
    id: entityId(o, where, "services", name ?? `#${index}`),
    name,
    protocol,
    host,
    port: port ?? DEFAULT_PORTS[protocol] ?? 80,
    path,
    retries: optInt(o, "retries", where, 5, 0, 32767),
    connect_timeout: optInt(o, "connect_timeout", where, 60000, 1, 2 ** 31 - 2),
    write_timeout: optInt(o, "write_timeout", where, 60000, 1, 2 ** 31 - 2),
    read_timeout: optInt(o, "read_timeout", where, 60000, 1, 2 ** 31 - 2),
    enabled: optBool(o, "enabled", where, true),
    tags: optStringArray(o, "tags", where),
  };
}

function normalizeRoute(o: Obj, where: string, key: string, service: ForeignKey | null): RouteEntity {
  const name = optString(o, "name", where);
  const paths = optStringArray(o, "paths", where);
  for (const p of paths ?? []) {
    if (!p.startsWith("/") && !p.startsWith("~")) fail(`${where}.paths`, `should start with: / (fixed path) or ~/ (regex path)`);
  }
  const methods = optStringArray(o, "methods", where);
  for (const m of methods ?? []) {
    if (!HTTP_METHOD_RE.test(m)) fail(`${where}.methods`, `invalid value: ${m}`);
  }
  const hosts = optStringArray(o, "hosts", where);
  let headers: Record<string, string[]> | null = null;
  if (o.headers !== undefined && o.headers !== null) {
    if (!isObj(o.headers)) fail(`${where}.headers`, "expected a map");
    headers = {};
    for (const [h, vals] of Object.entries(o.headers)) {
      const list = Array.isArray(vals) ? vals : [vals];
      if (list.some((v) => typeof v !== "string")) fail(`${where}.headers.${h}`, "expected an array of strings");
      if (h.toLowerCase() === "host") fail(`${where}.headers`, "cannot contain 'host' header, which must be specified in the 'hosts' attribute");
      headers[h.toLowerCase()] = list as string[];
    }
    if (Object.keys(headers).length === 0) headers = null;
  }
  const protocols = optStringArray(o, "protocols", where) ?? ["http", "https"];
  if (!paths && !methods && !hosts && !headers) {
    fail(where, "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'");
  }
  const pathHandling = optString(o, "path_handling", where) ?? "v0";
  if (pathHandling !== "v0" && pathHandling !== "v1") fail(`${where}.path_handling`, "expected one of: v0, v1");
  return {
    id: entityId(o, where, "routes", name ?? key),
    name,
    service,
    protocols,
    methods,
    hosts,
    paths,
    headers,
    strip_path: optBool(o, "strip_path", where, true),
    preserve_host: optBool(o, "preserve_host", where, false),
    regex_priority: optInt(o, "regex_priority", where, 0, -(2 ** 31), 2 ** 31 - 1),
    path_handling: pathHandling,
    https_redirect_status_code: optInt(o, "https_redirect_status_code", where, 426, 300, 599),
    request_buffering: optBool(o, "request_buffering", where, true),
    response_buffering: optBool(o, "response_buffering", where, true),
    tags: optStringArray(o, "tags", where),
  };
}

function normalizeConsumer(o: Obj, where: string, index: number): ConsumerEntity {
  const username = optString(o, "username", where);
  const customId = optString(o, "custom_id", where);
  if (username === null && customId === null) fail(where, "at least one of these fields must be non-empty: 'custom_id', 'username'");
  return {
    id: entityId(o, where, "consumers", username ?? customId ?? `#${index}`),
    username,
    custom_id: customId,
    tags: optStringArray(o, "tags", where),
  };
}

interface RawPlugin {
  raw: Obj;
  where: string;
  route: string | null;
  service: string | null;
  consumer: string | null;
}

/**
 * Normalises a parsed declarative document. Throws DeclarativeConfigError with a message naming the
 * offending entry ("in 'routes[1].paths': ...").
 */
export function normalizeDeclarative(doc: unknown): NormalizedConfig {
  if (!isObj(doc)) throw new DeclarativeConfigError("expected an object at the top level of the declarative config");
  const fv = doc._format_version;
  if (fv === undefined) fail("_format_version", "required field missing");
  if (typeof fv !== "string" || !FORMAT_VERSIONS.includes(fv)) fail("_format_version", `expected one of: ${FORMAT_VERSIONS.join(", ")}`);
  for (const key of Object.keys(doc)) {
    if (!TOP_LEVEL_KEYS.has(key)) fail(key, "unknown field");
  }

  const services: ServiceEntity[] = [];
  const routes: RouteEntity[] = [];
  const consumers: ConsumerEntity[] = [];
  const credentials: { raw: Obj; where: string; consumer: string | null }[] = [];
  const rawPlugins: RawPlugin[] = [];
  const rawRoutes: { raw: Obj; where: string; key: string; service: string | null }[] = [];

  const collectPlugins = (parent: Obj, where: string, scope: Partial<Pick<RawPlugin, "route" | "service" | "consumer">>) => {
    arrayAt(parent, "plugins", where).forEach((p, i) => {
      rawPlugins.push({
        raw: p,
        where: `${where}.plugins[${i}]`,
        route: scope.route ?? null,
        service: scope.service ?? null,
        consumer: scope.consumer ?? null,
      });
    });
  };

  arrayAt(doc, "services", "").forEach((s, i) => {
    const where = `services[${i}]`;
    const svc = normalizeService(s, where, i);
    services.push(svc);
    arrayAt(s, "routes", where).forEach((r, j) => {
      rawRoutes.push({ raw: r, where: `${where}.routes[${j}]`, key: `${svc.id}#${j}`, service: svc.id });
    });
    collectPlugins(s, where, { service: svc.id });
  });
  arrayAt(doc, "routes", "").forEach((r, i) => {
    const svcRef = r.service;
    let ref: string | null = null;
    if (svcRef !== undefined && svcRef !== null) {
      ref = typeof svcRef === "string" ? svcRef : isObj(svcRef) && typeof (svcRef.id ?? svcRef.name) === "string" ? String(svcRef.id ?? svcRef.name) : fail(`routes[${i}].service`, "expected a name, an id or { id }");
    }
    rawRoutes.push({ raw: r, where: `routes[${i}]`, key: `#${i}`, service: ref });
  });

  const findBy = <T extends { id: string }>(list: T[], ref: string, names: (e: T) => (string | null)[]): T | undefined =>
    list.find((e) => e.id === ref.toLowerCase()) ?? list.find((e) => names(e).includes(ref));

  for (const rr of rawRoutes) {
    let service: ForeignKey | null = null;
    if (rr.service !== null) {
      const svc = findBy(services, rr.service, (s) => [s.name]);
      if (!svc) fail(`${rr.where}.service`, `could not find service '${rr.service}'`);
      service = { id: svc.id };
    }
    const route = normalizeRoute(rr.raw, rr.where, rr.key, service);
    routes.push(route);
    collectPlugins(rr.raw, rr.where, { route: route.id });
  }

  arrayAt(doc, "consumers", "").forEach((c, i) => {
    const where = `consumers[${i}]`;
    const consumer = normalizeConsumer(c, where, i);
    consumers.push(consumer);
    arrayAt(c, "keyauth_credentials", where).forEach((k, j) => {
      credentials.push({ raw: k, where: `${where}.keyauth_credentials[${j}]`, consumer: consumer.id });
    });
    collectPlugins(c, where, { consumer: consumer.id });
  });
  arrayAt(doc, "keyauth_credentials", "").forEach((k, i) => {
    const ref = k.consumer;
    const where = `keyauth_credentials[${i}]`;
    let consumerRef: string | null = null;
    if (typeof ref === "string") consumerRef = ref;
    else if (isObj(ref) && typeof (ref.id ?? ref.username) === "string") consumerRef = String(ref.id ?? ref.username);
    else fail(`${where}.consumer`, "required field missing");
    credentials.push({ raw: k, where, consumer: consumerRef });
  });
  arrayAt(doc, "plugins", "").forEach((p, i) => {
    rawPlugins.push({ raw: p, where: `plugins[${i}]`, route: null, service: null, consumer: null });
  });

  const keyauthCredentials: KeyauthCredentialEntity[] = credentials.map((c) => {
    const consumer = findBy(consumers, c.consumer ?? "", (e) => [e.username, e.custom_id]);
    if (!consumer) fail(`${c.where}.consumer`, `could not find consumer '${c.consumer}'`);
    const key = optString(c.raw, "key", c.where);
    if (key === null || key === "") fail(`${c.where}.key`, "required field missing (this gateway cannot generate keys: give each credential a key)");
    return {
      id: entityId(c.raw, c.where, "keyauth_credentials", key),
      key,
      consumer: { id: consumer.id },
      ttl: c.raw.ttl === undefined || c.raw.ttl === null ? null : optInt(c.raw, "ttl", c.where, 0, 0, 100000000),
      tags: optStringArray(c.raw, "tags", c.where),
    };
  });
  const seenKeys = new Map<string, string>();
  for (const [i, c] of keyauthCredentials.entries()) {
    const prev = seenKeys.get(c.key);
    if (prev) fail(credentials[i].where, `uniqueness violation: 'keyauth_credentials' entity with key set to '<redacted>' already declared in '${prev}'`);
    seenKeys.set(c.key, credentials[i].where);
  }

  const plugins: PluginEntity[] = rawPlugins.map((rp) => {
    const name = optString(rp.raw, "name", rp.where);
    if (!name) fail(`${rp.where}.name`, "required field missing");
    const resolve = (field: "route" | "service" | "consumer", nestedRef: string | null): ForeignKey | null => {
      const v = rp.raw[field];
      if (nestedRef !== null) {
        if (v !== undefined && v !== null) fail(`${rp.where}.${field}`, "value must be null (the plugin is nested under that entity)");
        return { id: nestedRef };
      }
      if (v === undefined || v === null) return null;
      const ref = typeof v === "string" ? v : isObj(v) && typeof (v.id ?? v.name ?? v.username) === "string" ? String(v.id ?? v.name ?? v.username) : fail(`${rp.where}.${field}`, "expected a name, an id or { id }");
      const found =
        field === "route" ? findBy(routes, ref, (e) => [e.name]) :
        field === "service" ? findBy(services, ref, (e) => [e.name]) :
        findBy(consumers, ref, (e) => [e.username, e.custom_id]);
      if (!found) fail(`${rp.where}.${field}`, `could not find ${field} '${ref}'`);
      return { id: found.id };
    };
    const route = resolve("route", rp.route);
    const service = resolve("service", rp.service);
    const consumer = resolve("consumer", rp.consumer);
    const config = rp.raw.config;
    if (config !== undefined && config !== null && !isObj(config)) fail(`${rp.where}.config`, "expected a record");
    const scopeKey = `${name}|${route?.id ?? ""}|${service?.id ?? ""}|${consumer?.id ?? ""}`;
    return {
      id: entityId(rp.raw, rp.where, "plugins", scopeKey),
      name,
      instance_name: optString(rp.raw, "instance_name", rp.where),
      config: (config as Obj | undefined) ?? null,
      protocols: optStringArray(rp.raw, "protocols", rp.where),
      enabled: optBool(rp.raw, "enabled", rp.where, true),
      route,
      service,
      consumer,
      tags: optStringArray(rp.raw, "tags", rp.where),
      _origin: rp.where,
    };
  });
  const seenScopes = new Map<string, string>();
  for (const p of plugins) {
    const key = `${p.name}|${p.route?.id ?? ""}|${p.service?.id ?? ""}|${p.consumer?.id ?? ""}`;
    const prev = seenScopes.get(key);
    if (prev) fail(p._origin, `uniqueness violation: 'plugins' entity with name '${p.name}' for the same route, service and consumer already declared in '${prev}'`);
    seenScopes.set(key, p._origin);
  }

  const checkUnique = <T>(list: T[], kind: string, field: keyof T) => {
    const seen = new Set<unknown>();
    for (const e of list) {
      const v = e[field];
      if (v === null || v === undefined) continue;
      if (seen.has(v)) fail(kind, `uniqueness violation: '${kind}' entity with ${String(field)} set to '${String(v)}' already declared`);
      seen.add(v);
    }
  };
  checkUnique(services, "services", "name");
  checkUnique(services, "services", "id");
  checkUnique(routes, "routes", "name");
  checkUnique(routes, "routes", "id");
  checkUnique(consumers, "consumers", "username");
  checkUnique(consumers, "consumers", "custom_id");
  checkUnique(consumers, "consumers", "id");

  return { _format_version: fv, services, routes, consumers, keyauth_credentials: keyauthCredentials, plugins };
}

/** Reads and normalises a declarative YAML (or JSON) file. */
export function loadDeclarativeFile(path: string): NormalizedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new DeclarativeConfigError(`cannot read declarative config file ${path}: ${(err as Error).message}`);
  }
  return parseDeclarative(text, path);
}

export function parseDeclarative(text: string, source = "<inline>"): NormalizedConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new DeclarativeConfigError(`failed parsing declarative configuration ${source}: ${(err as Error).message}`);
  }
  return normalizeDeclarative(doc);
}
