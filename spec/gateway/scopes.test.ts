// Which plugin instance runs for a request: Kong's scope precedence
// (consumer+route+service > consumer+route > consumer+service > route+service > consumer > route >
// service > global), chosen at the plugin's turn in access, plus the bundled key-auth.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { request } from "./http.ts";
import { startEchoUpstream, type Upstream } from "./upstreams.ts";
import { phaseEntries } from "./trace.ts";

let echo: Upstream;
let gw: Gateway;

beforeAll(async () => {
  echo = await startEchoUpstream();
  gw = await startProbeGateway(`
_format_version: "3.0"
services:
  - name: s1
    url: ${echo.url}
    routes:
      - { name: r1, paths: ["/r1"] }
      - { name: r2, paths: ["/r2"] }
  - name: s2
    url: ${echo.url}
    routes:
      - { name: r3, paths: ["/r3"] }
      - { name: r4, paths: ["/r4"] }
      - { name: r5, paths: ["/r5"] }
  - name: s3
    url: ${echo.url}
    routes:
      - { name: r6, paths: ["/r6"] }
  - name: protected
    url: ${echo.url}
    routes:
      - name: keyed
        paths: ["/keyed"]
        plugins:
          - name: key-auth
            config: { key_names: [apikey], hide_credentials: true }
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-secret
  - username: bob
plugins:
  - name: probe-auth
  # probe-a runs before the authentication plugin: its consumer instance can never be chosen
  - { name: probe-a, config: { tag: ga } }
  - { name: probe-a, consumer: alice, config: { tag: ca } }
  - { name: probe-b, consumer: alice, route: r1, service: s1, config: { tag: crs } }
  - { name: probe-b, consumer: alice, route: r2, config: { tag: cr } }
  - { name: probe-b, consumer: alice, route: r5, config: { tag: cr5 } }
  - { name: probe-b, consumer: alice, service: s2, config: { tag: cs } }
  - { name: probe-b, route: r1, service: s1, config: { tag: rs } }
  - { name: probe-b, consumer: bob, config: { tag: c } }
  - { name: probe-b, route: r2, config: { tag: r } }
  - { name: probe-b, service: s2, config: { tag: s } }
  - { name: probe-b, config: { tag: g } }
`);
});

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
});

async function chosen(path: string, consumer?: string): Promise<{ a: string; b: string; consumer?: string }> {
  const res = await request(`${gw.url}${path}`, { headers: consumer ? { "x-consumer": consumer } : {} });
  expect(res.status, res.body).toBe(200);
  const access = phaseEntries(String(res.headers["x-probe-trace"] ?? "").split(","), "access");
  const tag = (name: string) => access.find((e) => e.startsWith(`${name}:`))?.split(":")[1] ?? "none";
  return { a: tag("probe-a"), b: tag("probe-b"), consumer: res.headers["x-probe-consumer"] as string | undefined };
}

describe("scope precedence", () => {
  it.each<[string, string | undefined, string, string]>([
    ["/r1", "alice", "crs", "consumer+route+service beats route+service"],
    ["/r1", "bob", "rs", "route+service beats consumer"],
    ["/r1", undefined, "rs", "route+service"],
    ["/r2", "alice", "cr", "consumer+route beats route"],
    ["/r2", "bob", "c", "consumer beats route"],
    ["/r2", undefined, "r", "route"],
    ["/r5", "alice", "cr5", "consumer+route beats consumer+service"],
    ["/r3", "alice", "cs", "consumer+service beats service"],
    ["/r3", "bob", "c", "consumer beats service"],
    ["/r4", undefined, "s", "service beats global"],
    ["/r6", undefined, "g", "global"],
    ["/r6", "alice", "g", "global when no instance matches the consumer"],
  ])("%s as %s runs probe-b instance %s (%s)", async (path, consumer, expected) => {
    const { b } = await chosen(path, consumer);
    expect(b).toBe(expected);
  });

  it("never chooses a consumer instance of a plugin that runs before authentication", async () => {
    const res = await chosen("/r1", "alice");
    expect(res.a).toBe("ga");
    expect(res.b).toBe("crs");
    // the consumer is visible to the later plugin and in later phases
    expect(res.consumer).toBe("alice");
  });
});

describe("key-auth (bundled, emulated)", () => {
  it("rejects a request without a key with Kong's 401", async () => {
    const res = await request(`${gw.url}/keyed`, { headers: { accept: "application/json" } });
    expect(res.status).toBe(401);
    expect(res.json()).toEqual({ message: "No API key found in request", request_id: res.headers["x-kong-request-id"] });
    expect(res.headers["www-authenticate"]).toBe("Key");
  });

  it("rejects an unknown key", async () => {
    const res = await request(`${gw.url}/keyed`, { headers: { apikey: "nope" } });
    expect(res.status).toBe(401);
    expect(res.json().message).toBe("Unauthorized");
  });

  it("authenticates a valid key, hides it from the upstream and identifies the consumer", async () => {
    const res = await request(`${gw.url}/keyed?x=1`, { headers: { apikey: "alice-secret" } });
    expect(res.status).toBe(200);
    const upstreamReq = res.json<{ url: string; headers: Record<string, string> }>();
    expect(upstreamReq.headers.apikey).toBeUndefined();
    expect(upstreamReq.headers["x-consumer-username"]).toBe("alice");
    expect(upstreamReq.headers["x-consumer-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers["x-probe-consumer"]).toBe("alice");
    const key = await request(`${gw.url}/keyed?apikey=alice-secret`);
    expect(key.status).toBe(200);
    expect(key.json<{ url: string }>().url).toBe("/");
  });
});
