// The declarative config normalisation (gateway/config.ts): pure, no nginx.
import { describe, expect, it } from "vitest";
import { DeclarativeConfigError, parseDeclarative, stableId } from "../../gateway/config.ts";
import { injectedDirectives, mergeSharedDicts, parseSharedDictEnv } from "../../gateway/nginx-conf.ts";

describe("normalisation", () => {
  const cfg = parseDeclarative(`
_format_version: "3.0"
services:
  - name: a
    url: http://localhost:9000/base
    retries: 2
    routes:
      - name: ra
        paths: [/a]
        plugins:
          - name: p1
    plugins:
      - name: p2
  - name: b
    protocol: https
    host: example.test
routes:
  - name: rb
    service: b
    hosts: [x.test]
  - name: rb2
    service: { name: b }
    methods: [GET]
consumers:
  - username: alice
    plugins:
      - name: p3
    keyauth_credentials:
      - key: k1
  - custom_id: c2
keyauth_credentials:
  - key: k2
    consumer: c2
plugins:
  - name: p4
  - name: p5
    route: rb
    service: a
    consumer: alice
    enabled: false
`);

  it("fills Kong's service defaults and parses url", () => {
    const [a, b] = cfg.services;
    expect(a).toMatchObject({ name: "a", protocol: "http", host: "localhost", port: 9000, path: "/base", retries: 2, connect_timeout: 60000, read_timeout: 60000, write_timeout: 60000 });
    expect(b).toMatchObject({ protocol: "https", host: "example.test", port: 443, path: null, retries: 5 });
  });

  it("flattens nested routes and resolves service references by name", () => {
    expect(cfg.routes.map((r) => [r.name, r.service?.id])).toEqual([
      ["ra", cfg.services[0].id],
      ["rb", cfg.services[1].id],
      ["rb2", cfg.services[1].id],
    ]);
    expect(cfg.routes[0]).toMatchObject({ strip_path: true, preserve_host: false, regex_priority: 0, path_handling: "v0", protocols: ["http", "https"] });
  });

  it("scopes nested plugins and resolves top-level foreign keys", () => {
    const byName = Object.fromEntries(cfg.plugins.map((p) => [p.name, p]));
    expect(byName.p1.route?.id).toBe(cfg.routes[0].id);
    expect(byName.p2.service?.id).toBe(cfg.services[0].id);
    expect(byName.p3.consumer?.id).toBe(cfg.consumers[0].id);
    expect(byName.p4).toMatchObject({ route: null, service: null, consumer: null, enabled: true });
    expect(byName.p5).toMatchObject({ route: { id: cfg.routes[1].id }, service: { id: cfg.services[0].id }, consumer: { id: cfg.consumers[0].id }, enabled: false });
  });

  it("attaches key-auth credentials to their consumers", () => {
    expect(cfg.keyauth_credentials.map((k) => [k.key, k.consumer.id])).toEqual([
      ["k1", cfg.consumers[0].id],
      ["k2", cfg.consumers[1].id],
    ]);
  });

  it("gives stable ids derived from kind and name", () => {
    expect(cfg.services[0].id).toBe(stableId("services", "a"));
    expect(parseDeclarative(`_format_version: "3.0"\nservices: [{ name: a, url: "http://h" }]`).services[0].id).toBe(cfg.services[0].id);
    expect(stableId("services", "a")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableId("routes", "a")).not.toBe(stableId("services", "a"));
  });

  it("keeps ids given in the file", () => {
    const c = parseDeclarative(`_format_version: "3.0"\nconsumers: [{ username: u, id: 0AC34DFC-B212-48F4-A342-B1365D794EFC }]`);
    expect(c.consumers[0].id).toBe("0ac34dfc-b212-48f4-a342-b1365d794efc");
  });
});

describe("errors", () => {
  const bad = (yaml: string) => () => parseDeclarative(yaml);
  it.each([
    [`services: []`, "in '_format_version': required field missing"],
    [`_format_version: "4.0"`, "expected one of: 1.1, 2.1, 3.0"],
    [`_format_version: "3.0"\nfoo: 1`, "in 'foo': unknown field"],
    [`_format_version: "3.0"\nroutes: [{ name: r, paths: [/a], service: nope }]`, "could not find service 'nope'"],
    [`_format_version: "3.0"\nroutes: [{ name: r, paths: [a] }]`, "should start with: /"],
    [`_format_version: "3.0"\nroutes: [{ name: r }]`, "must set one of 'methods', 'hosts', 'headers', 'paths'"],
    [`_format_version: "3.0"\nservices: [{ name: s }]`, "in 'services[0].host': required field missing"],
    [`_format_version: "3.0"\nservices: [{ name: s, url: "http://h", retries: -1 }]`, "value should be between 0 and 32767"],
    [`_format_version: "3.0"\nplugins: [{ name: p, consumer: ghost }]`, "could not find consumer 'ghost'"],
    [`_format_version: "3.0"\nplugins: [{ name: p }, { name: p }]`, "uniqueness violation"],
    [`_format_version: "3.0"\nconsumers: [{ username: u }, { username: u }]`, "uniqueness violation"],
    [`_format_version: "3.0"\nconsumers: [{ username: u, keyauth_credentials: [{ key: a }, { key: a }] }]`, "uniqueness violation"],
    [`_format_version: "3.0"\nplugins: [{ name: p, config: [] }]`, "in 'plugins[0].config': expected a record"],
    [`_format_version: "3.0"\nservices: [`, "failed parsing declarative configuration"],
  ])("%s -> %s", (yaml, message) => {
    expect(bad(yaml)).toThrow(DeclarativeConfigError);
    expect(bad(yaml)).toThrow(message);
  });
});

describe("nginx injection", () => {
  it("parses KONG_NGINX_HTTP_LUA_SHARED_DICT entries and merges them with Kong's dicts", () => {
    expect(parseSharedDictEnv("a 1m; b 12k")).toEqual([{ name: "a", size: "1m" }, { name: "b", size: "12k" }]);
    expect(() => parseSharedDictEnv("a")).toThrow(/expected '<name> <size>'/);
    const merged = mergeSharedDicts([{ name: "kong", size: "10m" }, { name: "x", size: "1m" }]);
    expect(merged.find((d) => d.name === "kong")?.size).toBe("10m");
    expect(merged.find((d) => d.name === "kong_locks")?.size).toBe("8m");
    expect(merged.find((d) => d.name === "x")).toBeDefined();
  });

  it("maps KONG_NGINX_HTTP_* variables to directives", () => {
    expect(injectedDirectives({ KONG_NGINX_HTTP_LUA_SOCKET_POOL_SIZE: "10", KONG_NGINX_HTTP_LUA_SHARED_DICT: "x 1m", OTHER: "1" }, "KONG_NGINX_HTTP_")).toEqual([
      "lua_socket_pool_size 10;",
    ]);
  });
});
