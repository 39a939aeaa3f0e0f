// The schema library inside nginx (init_by_lua and a request), where it uses
// ngx.re for regex checks: the same answers as under busted.
// The Lua side is spec/gateway-schema/schema_in_nginx.lua.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, startLuaNginx, type LuaNginx } from "../helpers/lua-nginx.ts";

let nginx: LuaNginx | undefined;
let port = 0;

beforeAll(async () => {
  nginx = await startLuaNginx({
    tmpName: "schema-nginx-test-",
    luaDirs: [`${REPO}/spec/gateway-schema`],
    http: `init_by_lua_block { require("schema_in_nginx").init() }`,
    locations: `location = /t { content_by_lua_block { require("schema_in_nginx").content() } }`,
  });
  port = nginx.port;
});

afterAll(async () => {
  await nginx?.stop();
});

interface Outcome {
  conf?: Record<string, unknown>;
  err?: string;
}

describe("kong_local.schema inside nginx", () => {
  it("validates and fills defaults the same way in init_by_lua and in a request", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/t`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { init: Record<string, Outcome | boolean>; request: Record<string, Outcome | boolean> };
    for (const phase of [body.init, body.request]) {
      expect(phase.null_is_ngx_null).toBe(true);
      const valid = phase.valid as Outcome;
      expect(valid.err).toBeUndefined();
      expect(valid.conf?.limit).toBe(10);
      expect(valid.conf?.redis).toEqual({ port: 6379, timeout: 2000, database: 0, ssl: false, ssl_verify: false });
      expect((phase.bad_regex as Outcome).err).toBe("in 'plugins' (demo): config.pattern: not a valid regex: (unclosed");
      expect((phase.bad_uuid as Outcome).err).toBe("in 'plugins' (demo): config.id: expected a valid UUID");
      expect((phase.bad_header as Outcome).err).toBe(
        "in 'plugins' (demo): config.header: bad header name 'x y', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
      );
      expect((phase.bad_host as Outcome).err).toBe("in 'plugins' (demo): config.upstream: must not have a port");
      expect((phase.bad_limit as Outcome).err).toBe("in 'plugins' (demo): config.limit: value should be between 1 and 100");
    }
  });
});
