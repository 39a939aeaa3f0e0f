// One reading of the response per request: token-rate-limiting and upstream-disconnect-log share
// the usage reader in kong.ctx.shared, whichever of them runs, on whatever scope. A probe plugin
// wraps the reader's feed method and logs, per request, how many readers were fed and how many
// bytes went into them.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT, startGateway, type Gateway } from "../helpers/gateway.ts";
import { startMockLlm, type MockLlm } from "../helpers/mock-llm.ts";
import { raw, uniqueId, waitFor } from "../token-rate-limiting/helpers.ts";

const PROBE_LUA = join(PROJECT_ROOT, "spec", "shared", "lua");
const TRL = { name: "token-rate-limiting", config: { minute: 100_000_000 } };
const UDL = { name: "upstream-disconnect-log", config: {} };

interface ProbeLine {
  readers: number;
  bytes: number;
  feeder: string | null;
  status: number;
}

let llm: MockLlm;
let gw: Gateway;

beforeAll(async () => {
  llm = await startMockLlm();
  const route = (name: string, plugins: object[]): object => ({ name, paths: [`/${name}`], strip_path: true, plugins });
  gw = await startGateway({
    luaPath: [PROBE_LUA],
    config: {
      _format_version: "3.0",
      services: [
        {
          name: "llm",
          url: llm.url,
          routes: [
            route("both", [TRL, UDL]),
            route("trl", [TRL]),
            route("udl", [UDL]),
            route("none", []),
            // key-auth refuses in access, before token-rate-limiting's access runs
            route("keyed", [{ name: "key-auth" }, TRL, UDL]),
          ],
        },
        // upstream-disconnect-log on the service, token-rate-limiting on the route
        { name: "llm-udl", url: llm.url, plugins: [UDL], routes: [route("split", [TRL])] },
      ],
      plugins: [{ name: "reader-probe" }],
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await llm?.stop();
});

async function probeLine(id: string): Promise<ProbeLine> {
  const marker = `READER_PROBE ${id} `;
  return waitFor(`the reader probe's line for ${id}`, () => {
    const line = gw.errorLog().split("\n").find((l) => l.includes(marker));
    if (line === undefined) return undefined;
    const json = line.slice(line.indexOf(marker) + marker.length).replace(/ while logging request.*$/, "").replace(/, client: .*$/, "");
    return JSON.parse(json) as ProbeLine;
  });
}

const STREAM = {
  model: "gpt-4o-mini",
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: "Count the readers." }],
};
const JSON_CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Count the readers." }] };

async function send(route: string, body: object): Promise<{ status: number; bytes: number; probe: ProbeLine }> {
  const id = uniqueId("one-reading");
  const res = await raw(`${gw.url}/${route}/v1/chat/completions`, { headers: { "x-test-id": id }, body: JSON.stringify(body) });
  return { status: res.status, bytes: res.body.length, probe: await probeLine(id) };
}

describe("one reading of the response", () => {
  it.each([
    ["both plugins on the route", "both", "token-rate-limiting"],
    ["token-rate-limiting alone", "trl", "token-rate-limiting"],
    ["upstream-disconnect-log alone", "udl", "upstream-disconnect-log"],
    ["upstream-disconnect-log on the service, token-rate-limiting on the route", "split", "token-rate-limiting"],
  ])("%s: a stream is fed to one reader, every byte once", async (_name, route, feeder) => {
    const r = await send(route, STREAM);
    expect(r.status).toBe(200);
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.probe).toEqual({ readers: 1, bytes: r.bytes, feeder, status: 200 });
  });

  it("both plugins, a JSON answer: one reader, every byte once", async () => {
    const r = await send("both", JSON_CHAT);
    expect(r.status).toBe(200);
    expect(r.probe).toEqual({ readers: 1, bytes: r.bytes, feeder: "token-rate-limiting", status: 200 });
  });

  it("no plugin that reads: the probe sees no reader (it does count when there is one)", async () => {
    const r = await send("none", STREAM);
    expect(r.status).toBe(200);
    expect(r.probe).toEqual({ readers: 0, bytes: 0, feeder: null, status: 200 });
  });

  it("an exit before access (key-auth's 401): nothing is read, nothing fails", async () => {
    const r = await send("keyed", STREAM);
    expect(r.status).toBe(401);
    expect(r.probe).toEqual({ readers: 0, bytes: 0, feeder: null, status: 401 });
    expect(gw.errorLog()).not.toMatch(/\[error\]|\[crit\]|\[alert\]/);
  });
});
