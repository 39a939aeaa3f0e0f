// kong/kong.yml, unchanged, starts the local gateway: the gateway validates every configuration of our
// plugins against the plugin's own schema (as Kong does at load time) and refuses to start otherwise.
// A copy with one broken field proves the refusal is real, so passing here means the configs are valid.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startGateway } from "../helpers/gateway.ts";
import { KONG_BUNDLED_PLUGINS, ROOT, declaredPlugins, readKongYml, type Obj } from "./kong-config.ts";
import { kongYmlText } from "./target.ts";

const doc = readKongYml();
const customPlugins = [...new Set(declaredPlugins(doc).map((p) => p.name).filter((n) => !KONG_BUNDLED_PLUGINS.includes(n)))].sort();

describe("kong/kong.yml in the local gateway", () => {
  it("names only plugins that are built (make lua)", () => {
    const missing = customPlugins.filter((name) => !existsSync(join(ROOT, "dist", "kong", "plugins", name, "handler.lua")));
    expect(
      missing.map((n) => `${n}: configured in kong/kong.yml but dist/kong/plugins/${n}/handler.lua is missing (run make lua; is plugins/${n}/handler.ts written?)`),
    ).toEqual([]);
  });

  it("starts from the file unchanged, every plugin config accepted by its schema", async () => {
    const gw = await startGateway({ yaml: kongYmlText() });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", body: "{}" });
      // key-auth answers before any upstream is needed: the routes and plugins are live.
      expect(res.status).toBe(401);
      expect(gw.errorLog()).not.toMatch(/\[(error|crit|alert|emerg)\]/);
    } finally {
      await gw.stop();
    }
  });

  it.each(customPlugins)("refuses a kong.yml whose %s config breaks the plugin's schema", async (name) => {
    const broken = structuredClone(doc) as Obj;
    const entry = declaredPluginEntries(broken).find((p) => p.name === name);
    expect(entry, `${name} in kong.yml`).toBeDefined();
    (entry!.config as Obj).no_such_field_in_any_schema = true;
    let started: Awaited<ReturnType<typeof startGateway>> | undefined;
    let error: unknown;
    try {
      started = await startGateway({ yaml: stringify(broken, { aliasDuplicateObjects: false }) });
    } catch (err) {
      error = err;
    } finally {
      await started?.stop();
    }
    expect(started, `the gateway started with an unknown field in ${name}'s config`).toBeUndefined();
    expect(String(error)).toContain(name);
    expect(String(error)).toContain("no_such_field_in_any_schema");
  });
});

/** The plugin objects themselves (not copies), so a test can break one in place. */
function declaredPluginEntries(root: Obj): Obj[] {
  const out: Obj[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== "object" || v === null) return;
    const o = v as Obj;
    if (Array.isArray(o.plugins)) for (const p of o.plugins) if (typeof p === "object" && p !== null) out.push(p as Obj);
    for (const [k, child] of Object.entries(o)) if (k !== "config") walk(child);
  };
  walk(root);
  return out;
}
