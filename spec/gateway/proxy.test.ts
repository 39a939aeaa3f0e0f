// Routing and proxying through the real gateway: Kong's route selection, upstream URI and headers,
// upstream errors (502/504), streaming and WebSocket pass-through.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";
import { request } from "./http.ts";
import { startEchoUpstream, startSilentUpstream, startSseUpstream, type Echo, type Upstream } from "./upstreams.ts";
import { logTrace } from "./trace.ts";

let echo: Upstream;
let sse: Upstream;
let silent: Upstream;
let wsServer: Server;
let wss: WebSocketServer;
let closedPort: number;
let gw: Gateway;

beforeAll(async () => {
  echo = await startEchoUpstream();
  sse = await startSseUpstream(100, 2000);
  silent = await startSilentUpstream();
  closedPort = await freePort();
  wsServer = createServer((_req, res) => res.end("not a websocket"));
  wss = new WebSocketServer({ server: wsServer, path: "/ws" });
  wss.on("connection", (socket) => socket.on("message", (m) => socket.send(`echo:${m.toString()}`)));
  await new Promise<void>((resolve) => wsServer.listen(0, "127.0.0.1", resolve));
  const wsPort = (wsServer.address() as AddressInfo).port;

  gw = await startProbeGateway(`
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}/base
    routes:
      - { name: strip, paths: ["/api"] }
      - { name: nostrip, paths: ["/keep"], strip_path: false }
      - { name: short, paths: ["/p"], strip_path: false }
      - { name: long, paths: ["/p/longer"], strip_path: false, tags: [long] }
      - { name: regex-low, paths: ["~/items/\\\\d+$"], regex_priority: 1, strip_path: false }
      - { name: regex-high, paths: ["~/items/(?<id>\\\\d+)$"], regex_priority: 5, strip_path: false }
      - { name: regex-strip, paths: ["~/v(\\\\d+)/users"] }
      - { name: post-only, paths: ["/m"], methods: [POST], strip_path: false }
      - { name: any-method, paths: ["/m"], strip_path: false, tags: [any] }
      - { name: host-exact, hosts: ["example.test"], paths: ["/h"], strip_path: false }
      - { name: host-wild, hosts: ["*.wild.test"], paths: ["/h"], strip_path: false }
      - { name: path-only, paths: ["/h"], strip_path: false }
      - { name: header-route, paths: ["/hd"], headers: { x-version: ["v2"] }, strip_path: false }
      - { name: preserve, paths: ["/preserve"], preserve_host: true }
      - name: body
        paths: ["/body"]
        plugins:
          - name: probe-b
            config: { read_body: -1 }
      - name: body-file
        paths: ["/body-file"]
        plugins:
          - name: probe-b
            config: { read_body: 0 }
      - name: body-small-max
        paths: ["/body-max"]
        plugins:
          - name: probe-b
            config: { read_body: 100 }
      - name: wrong-phase
        paths: ["/wrong-phase"]
        plugins:
          - name: probe-b
            config: { call_in_access: kong.response.get_status }
  - name: sse
    url: ${sse.url}
    routes:
      - { name: sse, paths: ["/sse"] }
  - name: slow
    url: ${silent.url}
    read_timeout: 300
    routes:
      - { name: slow, paths: ["/slow"] }
  - name: closed
    url: http://127.0.0.1:${closedPort}
    retries: 1
    routes:
      - { name: closed, paths: ["/closed"] }
  - name: ws
    url: http://localhost:${wsPort}
    routes:
      - { name: ws, paths: ["/ws"], strip_path: false }
routes:
  - { name: no-service, paths: ["/no-service"] }
plugins:
  - name: probe-a
`);
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([echo?.close(), sse?.close(), silent?.close()]);
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await new Promise<void>((resolve) => (wsServer ? wsServer.close(() => resolve()) : resolve()));
});

async function echoOf(path: string, opts: Parameters<typeof request>[1] = {}): Promise<Echo> {
  const res = await request(`${gw.url}${path}`, opts);
  expect(res.status, res.body).toBe(200);
  expect(res.headers["x-upstream"]).toBe("echo");
  return res.json<Echo>();
}

describe("upstream URI", () => {
  it("strips the matched prefix and prepends the service path (strip_path default true)", async () => {
    expect((await echoOf("/api/x/y?q=1&r")).url).toBe("/base/x/y?q=1&r");
    expect((await echoOf("/api")).url).toBe("/base");
    expect((await echoOf("/api/")).url).toBe("/base/");
  });

  it("keeps the path with strip_path false", async () => {
    expect((await echoOf("/keep/x")).url).toBe("/base/keep/x");
  });

  it("strips the regex match of a regex path", async () => {
    expect((await echoOf("/v2/users/7")).url).toBe("/base/7");
  });
});

describe("route selection (traditional_compatible)", () => {
  it("prefers the longest prefix", async () => {
    const long = await request(`${gw.url}/p/longer/x`);
    expect(long.headers["x-probe-route"]).toBe("long");
    expect(long.json<Echo>().url).toBe("/base/p/longer/x");
    expect((await request(`${gw.url}/p/other`)).headers["x-probe-route"]).toBe("short");
  });

  it("tries regex paths before prefixes, by regex_priority, and exposes the captures", async () => {
    const res = await request(`${gw.url}/items/42`);
    expect(res.status).toBe(200);
    expect(res.headers["x-probe-route"]).toBe("regex-high");
    expect(res.headers["x-probe-captures"]).toBe("1=42;id=42");
    expect((await request(`${gw.url}/items/42/x`)).status).toBe(404);
  });

  it("matches methods", async () => {
    expect((await request(`${gw.url}/m`, { method: "POST", body: "x" })).headers["x-probe-route"]).toBe("post-only");
    expect((await request(`${gw.url}/m`)).headers["x-probe-route"]).toBe("any-method");
    expect((await request(`${gw.url}/m`, { method: "DELETE" })).headers["x-probe-route"]).toBe("any-method");
  });

  it("prefers exact hosts to wildcard hosts to path-only routes, and 404s what matches nothing", async () => {
    expect((await request(`${gw.url}/h`, { headers: { host: "example.test" } })).headers["x-probe-route"]).toBe("host-exact");
    expect((await request(`${gw.url}/h`, { headers: { host: "a.wild.test:1234" } })).headers["x-probe-route"]).toBe("host-wild");
    expect((await request(`${gw.url}/h`, { headers: { host: "other.test" } })).headers["x-probe-route"]).toBe("path-only");
    const nothing = await request(`${gw.url}/zzz`, { headers: { host: "example.test" } });
    expect(nothing.status).toBe(404);
    expect(nothing.json()).toEqual({ message: "no Route matched with those values", request_id: nothing.headers["x-kong-request-id"] });
  });

  it("matches header routes only when the header has one of the values", async () => {
    expect((await request(`${gw.url}/hd`, { headers: { "x-version": "V2" } })).headers["x-probe-route"]).toBe("header-route");
    // "/h" is a plain string prefix of "/hd" (Kong prefixes are not segment-aware)
    expect((await request(`${gw.url}/hd`, { headers: { "x-version": "v1" } })).headers["x-probe-route"]).toBe("path-only");
  });

  it("answers 503 for a route without a service", async () => {
    const res = await request(`${gw.url}/no-service`);
    expect(res.status).toBe(503);
    expect(res.json().message).toBe("no Service found with those values");
  });
});

describe("upstream request headers", () => {
  it("sends Kong's X-Forwarded-*, X-Real-IP, X-Kong-Request-Id and the service Host", async () => {
    const res = await request(`${gw.url}/api/h?x=1`);
    const e = res.json<Echo>();
    expect(e.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(e.headers["x-real-ip"]).toBe("127.0.0.1");
    expect(e.headers["x-forwarded-proto"]).toBe("http");
    expect(e.headers["x-forwarded-host"]).toBe("127.0.0.1");
    expect(e.headers["x-forwarded-port"]).toBe(String(gw.port));
    expect(e.headers["x-forwarded-path"]).toBe("/api/h");
    expect(e.headers["x-forwarded-prefix"]).toBe("/api");
    expect(e.headers["x-kong-request-id"]).toBe(res.headers["x-kong-request-id"]);
    expect(e.headers.host).toBe(`127.0.0.1:${echo.port}`);
  });

  it("keeps the client's Host with preserve_host", async () => {
    const e = await echoOf("/preserve", { headers: { host: "client.example:9999" } });
    expect(e.headers.host).toBe("client.example:9999");
  });
});

describe("response headers", () => {
  it("adds Kong's latency, Via and request id headers to proxied responses", async () => {
    const res = await request(`${gw.url}/api/lat`);
    expect(res.headers["x-kong-upstream-latency"]).toMatch(/^\d+$/);
    expect(res.headers["x-kong-proxy-latency"]).toMatch(/^\d+$/);
    expect(res.headers.via).toBe("1.1 kong/3.9.1");
    expect(res.headers["x-kong-request-id"]).toMatch(/^[0-9a-f]{32}$/);
    expect(res.headers["x-kong-response-latency"]).toBeUndefined();
  });
});

describe("upstream failures", () => {
  it("answers 502 with Kong's body when the upstream refuses the connection", async () => {
    const res = await request(`${gw.url}/closed`, { headers: { accept: "application/json" } });
    expect(res.status).toBe(502);
    expect(res.json()).toEqual({
      message: "An invalid response was received from the upstream server",
      request_id: res.headers["x-kong-request-id"],
    });
    const { source } = await logTrace(gw, String(res.headers["x-kong-request-id"]), "probe-a:log");
    expect(source).toBe("error");
  });

  it("formats the error body by Accept, falling back to Kong's error_default_type text/plain", async () => {
    const plain = await request(`${gw.url}/closed`);
    expect(plain.status).toBe(502);
    expect(plain.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(plain.body).toBe(`An invalid response was received from the upstream server\nrequest_id: ${plain.headers["x-kong-request-id"]}\n`);
    const html = await request(`${gw.url}/closed`, { headers: { accept: "text/html" } });
    expect(html.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(html.body).toContain("<p>An invalid response was received from the upstream server.</p>");
  });

  it("answers 504 when the upstream does not answer within read_timeout", async () => {
    const t0 = Date.now();
    const res = await request(`${gw.url}/slow`, { headers: { accept: "application/json" } });
    expect(res.status).toBe(504);
    expect(res.json().message).toBe("The upstream server is timing out");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(5000);
    // header_filter of the plugins still ran on the error response
    expect(res.headers["x-probe-trace"]).toContain("probe-a:header_filter");
  });
});

describe("streaming", () => {
  it("passes a slow SSE stream through event by event (first byte long before the stream ends)", async () => {
    const res = await request(`${gw.url}/sse`);
    expect(res.status).toBe(200);
    expect(res.body).toBe("data: first\n\ndata: second\n\ndata: [DONE]\n\n");
    // upstream: first event at 100 ms, the rest at 2000 ms
    expect(res.firstByteAt).toBeGreaterThanOrEqual(90);
    expect(res.firstByteAt).toBeLessThan(1000);
  });

  it("proxies a WebSocket upgrade", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once("open", () => ws.send("hello"));
      ws.once("message", (m) => resolve(m.toString()));
      ws.once("error", reject);
      setTimeout(() => reject(new Error("no websocket reply")), 5000);
    });
    ws.close();
    expect(reply).toBe("echo:hello");
  });
});

describe("request body (Kong's client_body_buffer_size 8k)", () => {
  const big = "x".repeat(20_000);

  it("refuses a body that went to a temp file unless max_allowed_file_size is given", async () => {
    const small = await request(`${gw.url}/body`, { method: "POST", body: "hello" });
    expect(small.headers["x-probe-body"]).toBe("5");
    const res = await request(`${gw.url}/body`, { method: "POST", body: big });
    expect(res.headers["x-probe-body"]).toBe(
      "nil: request body did not fit into client body buffer, consider raising 'client_body_buffer_size'",
    );
    // the upstream still receives the whole body
    expect(res.json<Echo>().body.length).toBe(20_000);
  });

  it("reads the temp file with max_allowed_file_size (0 = no limit) and refuses files above it", async () => {
    const all = await request(`${gw.url}/body-file`, { method: "POST", body: big });
    expect(all.headers["x-probe-body"]).toBe("20000");
    const capped = await request(`${gw.url}/body-max`, { method: "POST", body: big });
    expect(capped.headers["x-probe-body"]).toMatch(/^nil: request body file too big/);
  });
});

describe("PDK phase checks", () => {
  it("raises Kong's phase error for a function called outside its phases", async () => {
    const res = await request(`${gw.url}/wrong-phase`);
    expect(res.headers["x-probe-call"]).toBe(
      "function cannot be called in access phase (only in: response, header_filter, body_filter, log, error, admin_api)",
    );
  });
});
