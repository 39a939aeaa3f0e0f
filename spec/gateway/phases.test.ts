// Plugin phases, order and short-circuits through the real gateway (nginx + lua-nginx-module),
// observed with the probe plugins: probe-a (PRIORITY 1000), probe-b and probe-c (both 500).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProbeGateway, type Gateway } from "../helpers/gateway.ts";
import { startEchoUpstream, type Upstream } from "./upstreams.ts";
import { headerTrace, logTrace, phaseEntries } from "./trace.ts";

let upstream: Upstream;
let gw: Gateway;

beforeAll(async () => {
  upstream = await startEchoUpstream();
  gw = await startProbeGateway(`
_format_version: "3.0"
services:
  - name: echo
    url: ${upstream.url}
    routes:
      - name: plain
        paths: ["/plain"]
      - name: exit-b
        paths: ["/exit-b"]
        plugins:
          - name: probe-b
            config: { tag: route, exit_in: access, exit_status: 403, append_body: "APPENDED" }
      - name: error-c
        paths: ["/error-c"]
        plugins:
          - name: probe-c
            config: { tag: route, error_in: access }
      - name: d-only
        paths: ["/d-only"]
        plugins:
          - name: probe-d
            config: { tag: route }
      - name: hf-exit
        paths: ["/hf-exit"]
        plugins:
          - name: probe-a
            config: { tag: route, exit_in: header_filter, exit_status: 409 }
plugins:
  - name: probe-a
  - name: probe-b
  - name: probe-c
    config: { tag: global-c }
`);
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

describe("phase order and priorities", () => {
  it("runs rewrite, access, header_filter, body_filter, log in Kong's order, by PRIORITY then reverse name", async () => {
    const res = await fetch(`${gw.url}/plain/x`);
    expect(res.status).toBe(200);
    await res.text();
    const rid = res.headers.get("x-kong-request-id")!;
    const { trace, source } = await logTrace(gw, rid, "probe-b:log");
    // probe-a (1000) first; probe-c and probe-b tie at 500 and run reverse-alphabetically
    const order = ["probe-a:default", "probe-c:global-c", "probe-b:default"];
    expect(phaseEntries(trace, "rewrite")).toEqual(order);
    expect(phaseEntries(trace, "access")).toEqual(order);
    expect(phaseEntries(trace, "header_filter")).toEqual(order);
    expect(phaseEntries(trace, "body_filter")).toEqual(order);
    expect(phaseEntries(trace, "log")).toEqual(order);
    // every rewrite before any access, every access before any header_filter, ...
    const phases = trace.map((e) => e.split(":")[1]);
    expect(phases).toEqual([
      ...Array(3).fill("rewrite"),
      ...Array(3).fill("access"),
      ...Array(3).fill("header_filter"),
      ...Array(3).fill("body_filter"),
      ...Array(3).fill("log"),
    ]);
    expect(source).toBe("service");
  });

  it("fills schema defaults into conf before any phase runs", async () => {
    const res = await fetch(`${gw.url}/plain/defaults`);
    await res.text();
    // probe-a's global instance has no config at all: every default comes from its schema
    expect(res.headers.get("x-probe-conf-probe-a")).toBe("tag=default;exit_status=418;number_with_default=42");
    expect(res.headers.get("x-probe-conf-probe-c")).toBe("tag=global-c;exit_status=418;number_with_default=42");
  });

  it("calls init_worker and configure (with every enabled config) in each worker", () => {
    const log = gw.errorLog();
    for (const name of ["probe-a", "probe-b", "probe-c", "probe-d"]) {
      expect(log).toContain(`probe-init-worker ${name}`);
    }
    // probe-a: global + route hf-exit; probe-b: global + route exit-b; probe-c: global + route error-c;
    // probe-d: route d-only
    expect(log).toContain("probe-configure probe-d 1");
    expect(log).toContain("probe-configure probe-a 2");
    expect(log).toContain("probe-configure probe-b 2");
    expect(log).toContain("probe-configure probe-c 2");
  });

  it("keeps kong.ctx.plugin private to each plugin across phases", async () => {
    const res = await fetch(`${gw.url}/plain/ctx`);
    await res.text();
    expect(res.headers.get("x-probe-plugin-ctx-probe-a")).toBe("true");
    expect(res.headers.get("x-probe-plugin-ctx-probe-b")).toBe("true");
  });

  it("writes kong.log lines with Kong's prefix and the plugin's namespace", async () => {
    const res = await fetch(`${gw.url}/plain/log`);
    await res.text();
    await logTrace(gw, res.headers.get("x-kong-request-id")!, "probe-b:log");
    expect(gw.errorLog()).toMatch(/\[notice\] .*\[kong\] probe_common\.lua:\d+ \[probe-c\] probe-trace /);
  });
});

describe("short-circuits", () => {
  it("kong.response.exit in access skips later access handlers but runs header_filter, body_filter and log of every collected plugin", async () => {
    const res = await fetch(`${gw.url}/exit-b/x`);
    const body = await res.text();
    expect(res.status).toBe(403);
    expect(JSON.parse(body)).toEqual({ message: "exit from probe-b in access" });
    // the exit body goes out with a Content-Length: text a body_filter appends never arrives
    expect(res.headers.get("content-length")).toBe(String(body.length));
    expect(body).not.toContain("APPENDED");
    const rid = res.headers.get("x-kong-request-id")!;
    const { trace, source } = await logTrace(gw, rid, "probe-b:log");
    expect(phaseEntries(trace, "access")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:route"]);
    expect(phaseEntries(trace, "header_filter")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:route"]);
    expect(phaseEntries(trace, "log")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:route"]);
    expect(source).toBe("exit");
    expect(res.headers.get("x-probe-source-probe-a")).toBe("exit");
    expect(upstream.requests.some((r) => r.url.startsWith("/exit-b"))).toBe(false);
  });

  it("an error thrown in access becomes Kong's 500 and skips the later access handlers", async () => {
    const res = await fetch(`${gw.url}/error-c/x`);
    const body = JSON.parse(await res.text());
    expect(res.status).toBe(500);
    expect(body.message).toBe("An unexpected error occurred");
    expect(body.request_id).toBe(res.headers.get("x-kong-request-id"));
    const { trace, source } = await logTrace(gw, res.headers.get("x-kong-request-id")!, "probe-b:log");
    expect(phaseEntries(trace, "access")).toEqual(["probe-a:default", "probe-c:route"]);
    expect(phaseEntries(trace, "log")).toEqual(["probe-a:default", "probe-c:route", "probe-b:default"]);
    expect(source).toBe("error");
    expect(gw.errorLog()).toMatch(/\[error\] .*\[kong\] .*\[probe-c\] .*probe probe-c failed on purpose in access/);
  });

  it("kong.response.exit in header_filter replaces status and body", async () => {
    const res = await fetch(`${gw.url}/hf-exit/x`);
    const body = await res.text();
    expect(res.status).toBe(409);
    expect(JSON.parse(body)).toEqual({ message: "exit from probe-a in header_filter" });
    expect(res.headers.get("content-length")).toBe(String(body.length));
  });

  it("without a matching route, global plugins run rewrite, header_filter, body_filter and log but not access", async () => {
    const res = await fetch(`${gw.url}/nothing-here`);
    const body = JSON.parse(await res.text());
    expect(res.status).toBe(404);
    expect(body).toEqual({ message: "no Route matched with those values", request_id: res.headers.get("x-kong-request-id") });
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("x-kong-request-id")).toMatch(/^[0-9a-f]{32}$/);
    const { trace, source } = await logTrace(gw, res.headers.get("x-kong-request-id")!, "probe-b:log");
    expect(phaseEntries(trace, "access")).toEqual([]);
    const phases = [...new Set(trace.map((e) => e.split(":")[1]))];
    expect(phases).toEqual(["rewrite", "header_filter", "body_filter", "log"]);
    expect(source).toBe("exit");
  });
});

describe("rewrite runs global instances only", () => {
  it("does not run rewrite for a plugin configured on a route only", async () => {
    const res = await fetch(`${gw.url}/d-only/x`);
    await res.text();
    const { trace } = await logTrace(gw, res.headers.get("x-kong-request-id")!, "probe-d:log");
    expect(phaseEntries(trace, "rewrite")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:default"]);
    expect(phaseEntries(trace, "access")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:default", "probe-d:route"]);
    expect(phaseEntries(trace, "log")).toEqual(["probe-a:default", "probe-c:global-c", "probe-b:default", "probe-d:route"]);
  });

  it("uses the global instance in rewrite and the route instance from access on", async () => {
    const res = await fetch(`${gw.url}/exit-b/again`);
    await res.text();
    const { trace } = await logTrace(gw, res.headers.get("x-kong-request-id")!, "probe-b:log");
    expect(phaseEntries(trace, "rewrite")).toContain("probe-b:default");
    expect(phaseEntries(trace, "access")).toContain("probe-b:route");
    expect(phaseEntries(trace, "log")).toContain("probe-b:route");
    expect(headerTrace(res)).toContain("probe-b:header_filter:route");
  });
});

describe("kong.response.exit in rewrite", () => {
  let gw2: Gateway;

  beforeAll(async () => {
    gw2 = await startProbeGateway(`
_format_version: "3.0"
services:
  - name: echo
    url: ${upstream.url}
    routes:
      - { name: any, paths: ["/"] }
plugins:
  - { name: probe-a, config: { exit_in: rewrite, exit_status: 451 } }
  - name: probe-b
`);
  });

  afterAll(async () => {
    await gw2?.stop();
  });

  it("sends at once: later rewrite handlers and access never run, global header_filter/body_filter/log do", async () => {
    const before = upstream.requests.length;
    const res = await fetch(`${gw2.url}/x`);
    expect(res.status).toBe(451);
    expect(await res.json()).toEqual({ message: "exit from probe-a in rewrite" });
    const { trace, source } = await logTrace(gw2, res.headers.get("x-kong-request-id")!, "probe-b:log");
    expect(trace).toEqual([
      "probe-a:rewrite:default",
      "probe-a:header_filter:default",
      "probe-b:header_filter:default",
      "probe-a:body_filter:default",
      "probe-b:body_filter:default",
      "probe-a:log:default",
      "probe-b:log:default",
    ]);
    expect(source).toBe("exit");
    expect(upstream.requests.length).toBe(before);
  });
});
