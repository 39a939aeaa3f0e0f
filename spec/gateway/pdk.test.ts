// The PDK as plugins see it through the real gateway (probe-pdk and probe-buffered fixtures).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { request } from "./http.ts";
import { startEchoUpstream, startSseUpstream, type Echo, type Upstream } from "./upstreams.ts";
import { logTrace } from "./trace.ts";

let echo: Upstream;
let other: Upstream;
let sse: Upstream;
let gw: Gateway;

beforeAll(async () => {
  echo = await startEchoUpstream();
  other = await startEchoUpstream();
  sse = await startSseUpstream(100, 1500);
  gw = await startProbeGateway(`
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}/svc
    routes:
      - name: getters
        paths: ["/getters"]
        plugins:
          - name: probe-pdk
      - name: setters
        paths: ["/setters"]
        plugins:
          - name: probe-pdk
            config: { set_path: /new/path, set_query: true, set_method: PUT, set_body: replaced body }
      - name: target
        paths: ["/target"]
        plugins:
          - name: probe-pdk
            config: { set_target: "localhost:${other.port}", read_timeout: 5000 }
      - name: upper
        paths: ["/upper"]
        plugins:
          - name: probe-pdk
            config: { upper_body: true }
      - name: buffered
        paths: ["/buffered"]
        plugins:
          - name: probe-buffered
  - name: sse
    url: ${sse.url}
    routes:
      - name: unbuffered
        paths: ["/unbuffered"]
        response_buffering: false
        request_buffering: false
plugins:
  - name: probe-a
`);
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([echo?.close(), other?.close(), sse?.close()]);
});

describe("kong.request and friends in access", () => {
  it("returns Kong's values", async () => {
    const res = await request(`${gw.url}/getters/a%2Fb//%63?q=1&q=2&flag`, { headers: { "x-test": "hello" } });
    expect(res.status).toBe(200);
    const seen = JSON.parse(String(res.headers["x-pdk-request"]));
    expect(seen).toMatchObject({
      scheme: "http",
      host: "127.0.0.1",
      port: gw.port,
      method: "GET",
      raw_path: "/getters/a%2Fb//%63",
      path: "/getters/a%2Fb/c",
      path_with_query: "/getters/a%2Fb//%63?q=1&q=2&flag",
      raw_query: "q=1&q=2&flag",
      q: "1",
      header: "hello",
      http_version: 1.1,
      forwarded_ip: "127.0.0.1",
      service: "echo",
      route: "getters",
      start_time_ok: true,
      version: "3.9.1",
    });
    expect(seen.plugin_id).toBe(seen.conf_plugin_id);
    expect(seen.route_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.node_id).toMatch(/^[0-9a-f-]{36}$/);
    // response headers set in access are kept on the proxied response
    expect(res.headers["x-access-set"]).toBe("yes");
    expect(res.headers["x-pdk-service-status"]).toBe("200");
    expect(res.headers["x-pdk-service-header"]).toBe("echo");
    expect(res.headers["x-pdk-status"]).toBe("200");
    expect(res.headers["x-pdk-cjson"]).toBe('{"a":[]}');
  });
});

describe("kong.service.request setters", () => {
  it("change what the upstream receives", async () => {
    const res = await request(`${gw.url}/setters/orig?q=1`, {
      method: "POST",
      headers: { "x-remove-me": "1", "x-multi": "0", "content-type": "text/plain" },
      body: "original",
    });
    expect(res.status).toBe(200);
    const e = res.json<Echo>();
    expect(e.method).toBe("PUT");
    expect(e.url).toBe("/new/path?a=1&a=x%20y&b=2&flag");
    expect(e.body).toBe("replaced body");
    expect(e.headers["content-length"]).toBe(String("replaced body".length));
    expect(e.headers["x-added"]).toBe("1");
    expect(e.headers["x-multi"]).toBe("0, a, b");
    expect(e.headers["x-remove-me"]).toBeUndefined();
  });
});

describe("kong.service.set_target", () => {
  it("sends the request to another host and port, with that Host header", async () => {
    const before = echo.requests.length;
    const res = await request(`${gw.url}/target/t`);
    expect(res.status).toBe(200);
    expect(other.requests.at(-1)?.url).toBe("/svc/t");
    expect(other.requests.at(-1)?.headers.host).toBe(`localhost:${other.port}`);
    expect(echo.requests.length).toBe(before);
  });
});

describe("kong.log.serialize", () => {
  it("builds Kong's basic log table with set_serialize_value applied", async () => {
    const res = await request(`${gw.url}/getters/ser?x=1`, { headers: { "x-test": "t", authorization: "Bearer secret" } });
    const rid = String(res.headers["x-kong-request-id"]);
    // probe-pdk's log handler (PRIORITY 100) writes the file after the response was sent
    const file = join(gw.prefix, "logs", `serialize-${rid}.json`);
    for (let i = 0; i < 60 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
    const json = JSON.parse(readFileSync(file, "utf8"));
    expect(json.request).toMatchObject({ method: "GET", uri: "/getters/ser?x=1", querystring: { x: "1" }, id: rid });
    expect(json.request.url).toBe(`http://127.0.0.1:${gw.port}/getters/ser?x=1`);
    expect(json.request.headers["x-test"]).toBe("overridden");
    expect(json.request.headers.authorization).toBe("REDACTED");
    expect(json.response.status).toBe(200);
    expect(json.upstream_uri).toBe("/svc/ser?x=1");
    expect(json.route.name).toBe("getters");
    expect(json.service.name).toBe("echo");
    expect(json.client_ip).toBe("127.0.0.1");
    expect(json.custom).toEqual({ field: "v" });
    expect(json.source).toBe("service");
    expect(json.tries[0]).toMatchObject({ ip: "127.0.0.1", port: echo.port });
    expect(typeof json.latencies.request).toBe("number");
    expect(typeof json.started_at).toBe("number");
  });
});

describe("kong.response.get_raw_body / set_raw_body in body_filter", () => {
  it("replaces the whole body once the last chunk arrived", async () => {
    const res = await request(`${gw.url}/upper/abc`);
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBeUndefined();
    const body = JSON.parse(res.body.toLowerCase()) as Echo;
    expect(res.body).toBe(res.body.toUpperCase());
    expect(body.url).toBe("/svc/abc");
  });
});

describe("buffered proxying", () => {
  it("runs the response phase with the whole upstream body", async () => {
    const res = await request(`${gw.url}/buffered/x`);
    expect(res.status).toBe(200);
    expect(res.headers["x-buffered-len"]).toBe(String(res.body.length));
    expect(res.headers["x-buffered-status"]).toBe("200");
    expect(res.json<Echo>().url).toBe("/svc/x");
  });
});

describe("unbuffered routes", () => {
  it("streams through Kong's @unbuffered location and still runs every phase", async () => {
    const res = await request(`${gw.url}/unbuffered`);
    expect(res.status).toBe(200);
    expect(res.body).toContain("data: first");
    expect(res.firstByteAt).toBeLessThan(1000);
    expect(res.headers["x-probe-trace"]).toBe("probe-a:rewrite:default,probe-a:access:default,probe-a:header_filter:default");
    const { trace } = await logTrace(gw, String(res.headers["x-kong-request-id"]), "probe-a:log");
    expect(trace).toContain("probe-a:body_filter:default");
  });
});
