// The proxy headers as Kong 3.9 sends them (kong/runloop/handler.lua access.before and
// header_filter.after, kong/templates/nginx_kong.lua): Via and X-Forwarded-* on the upstream
// request, Via and Server on the response, with and without trusted_ips.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { request, requestHttp10 } from "./http.ts";
import { startEchoUpstream, startUpstream, type Echo, type Upstream } from "./upstreams.ts";

let echo: Upstream;
let branded: Upstream;
let gw: Gateway;
let trustedGw: Gateway;

const yaml = (): string => `
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}/base
    routes:
      - { name: echo, paths: ["/echo"] }
      - { name: unbuffered, paths: ["/unbuffered"], request_buffering: false, response_buffering: false }
      - name: buffered
        paths: ["/buffered"]
        plugins:
          - name: probe-buffered
  - name: branded
    url: ${branded.url}
    routes:
      - { name: branded, paths: ["/branded"] }
      - name: branded-cleared
        paths: ["/branded-cleared"]
        plugins:
          - name: probe-headers
            config: { clear: [Via, Server, X-Kong-Proxy-Latency, X-Kong-Request-Id] }
  - name: bare
    url: ${echo.url}
    routes:
      - name: bare-cleared
        paths: ["/bare-cleared"]
        plugins:
          - name: probe-headers
            config: { clear: [Via] }
`;

beforeAll(async () => {
  echo = await startEchoUpstream();
  // an upstream that names itself and a proxy in front of it
  branded = await startUpstream((_req, res) => {
    res.writeHead(200, { server: "upstream-srv/2.0", via: "1.0 upstream-proxy", "content-type": "text/plain" });
    res.end("ok");
  });
  [gw, trustedGw] = await Promise.all([
    startProbeGateway(yaml()),
    startProbeGateway(yaml(), { KONG_TRUSTED_IPS: "127.0.0.1" }),
  ]);
});

afterAll(async () => {
  await Promise.all([gw?.stop(), trustedGw?.stop()]);
  await Promise.all([echo?.close(), branded?.close()]);
});

async function upstreamHeaders(g: Gateway, path: string, headers: Record<string, string | string[]> = {}): Promise<Echo["headers"]> {
  const res = await request(`${g.url}${path}`, { headers });
  expect(res.status, res.body).toBe(200);
  return res.json<Echo>().headers;
}

describe("Via on the upstream request", () => {
  it("names Kong with the client's HTTP version", async () => {
    expect((await upstreamHeaders(gw, "/echo/x")).via).toBe("1.1 kong/3.9.1");
  });

  it("is appended to the client's Via", async () => {
    expect((await upstreamHeaders(gw, "/echo/x", { via: "1.0 client-proxy" })).via).toBe("1.0 client-proxy, 1.1 kong/3.9.1");
  });

  it("takes the first of repeated Via headers", async () => {
    expect((await upstreamHeaders(gw, "/echo/x", { via: ["1.0 first", "1.0 second"] })).via).toBe("1.0 first, 1.1 kong/3.9.1");
  });

  it("uses the version as Lua prints the number for an HTTP/1.0 client", async () => {
    const res = await requestHttp10(gw.port, "/echo/x");
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as Echo).headers.via).toBe("1 kong/3.9.1");
  });

  it("is sent from the unbuffered locations and with buffered proxying too", async () => {
    for (const path of ["/unbuffered/x", "/buffered/x"]) {
      const h = await upstreamHeaders(gw, path, { via: "1.0 client-proxy", "x-forwarded-for": "10.0.0.1" });
      expect(h.via, path).toBe("1.0 client-proxy, 1.1 kong/3.9.1");
      expect(h["x-forwarded-for"], path).toBe("10.0.0.1, 127.0.0.1");
    }
  });
});

describe("X-Forwarded-* on the upstream request", () => {
  const forwarded = {
    "x-forwarded-for": "10.0.0.1",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "fwd.example",
    "x-forwarded-port": "8443",
    "x-forwarded-path": "/orig/path",
    "x-forwarded-prefix": "/orig",
  };

  it("appends the client to X-Forwarded-For and ignores the rest from an untrusted client", async () => {
    const h = await upstreamHeaders(gw, "/echo/x", forwarded);
    expect(h["x-forwarded-for"]).toBe("10.0.0.1, 127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("http");
    expect(h["x-forwarded-host"]).toBe("127.0.0.1");
    expect(h["x-forwarded-port"]).toBe(String(gw.port));
    expect(h["x-forwarded-path"]).toBe("/echo/x");
    expect(h["x-forwarded-prefix"]).toBe("/echo");
  });

  it("keeps a trusted client's values, and appends to X-Forwarded-For the same way", async () => {
    const h = await upstreamHeaders(trustedGw, "/echo/x", forwarded);
    expect(h["x-forwarded-for"]).toBe("10.0.0.1, 127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("https");
    expect(h["x-forwarded-host"]).toBe("fwd.example");
    expect(h["x-forwarded-port"]).toBe("8443");
    expect(h["x-forwarded-path"]).toBe("/orig/path");
    expect(h["x-forwarded-prefix"]).toBe("/orig");
  });

  it("takes the first of repeated headers", async () => {
    const h = await upstreamHeaders(trustedGw, "/echo/x", { "x-forwarded-for": ["10.0.0.1", "10.0.0.2"], "x-forwarded-proto": ["https", "http"] });
    expect(h["x-forwarded-for"]).toBe("10.0.0.1, 127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("https");
  });

  it("reports the port the client connected to, not the one in its Host header", async () => {
    const h = await upstreamHeaders(gw, "/echo/x", { host: "client.example:9999" });
    expect(h["x-forwarded-host"]).toBe("client.example");
    expect(h["x-forwarded-port"]).toBe(String(gw.port));
  });
});

describe("Via and Server on the response", () => {
  it("adds Server when the upstream sent none", async () => {
    const res = await request(`${gw.url}/echo/x`);
    expect(res.headers.via).toBe("1.1 kong/3.9.1");
    expect(res.headers.server).toBe("kong/3.9.1");
  });

  it("keeps the upstream's Server and appends Kong to its Via", async () => {
    const res = await request(`${gw.url}/branded`);
    expect(res.body).toBe("ok");
    expect(res.headers.server).toBe("upstream-srv/2.0");
    expect(res.headers.via).toBe("1.0 upstream-proxy, 1.1 kong/3.9.1");
  });

  it("writes Kong's headers after the plugins' header_filter: plugins see the upstream's and cannot remove Kong's", async () => {
    const res = await request(`${gw.url}/branded-cleared`);
    expect(res.headers["x-seen-via"]).toBe("1.0 upstream-proxy");
    expect(res.headers["x-seen-server"]).toBe("upstream-srv/2.0");
    // Via is built from the upstream's header as received; the cleared Server is Kong's again
    expect(res.headers.via).toBe("1.0 upstream-proxy, 1.1 kong/3.9.1");
    expect(res.headers.server).toBe("kong/3.9.1");
    expect(res.headers["x-kong-proxy-latency"]).toMatch(/^\d+$/);
    expect(res.headers["x-kong-request-id"]).toMatch(/^[0-9a-f]{32}$/);

    const bare = await request(`${gw.url}/bare-cleared`);
    expect(bare.headers["x-seen-via"]).toBe("-");
    expect(bare.headers["x-seen-server"]).toBe("-");
    expect(bare.headers.via).toBe("1.1 kong/3.9.1");
  });

  it("answers with Server and no Via when the gateway itself responds", async () => {
    const res = await request(`${gw.url}/nowhere`);
    expect(res.status).toBe(404);
    expect(res.headers.server).toBe("kong/3.9.1");
    expect(res.headers.via).toBeUndefined();
  });
});
