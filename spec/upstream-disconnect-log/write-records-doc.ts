// Writes docs/disconnect-records.md from the records the integration tests kept:
//
//   UDL_RECORDS_OUT=/tmp/udl-records.json npx vitest run spec/upstream-disconnect-log/
//   npx tsx spec/upstream-disconnect-log/write-records-doc.ts /tmp/udl-records.json
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../helpers/gateway.ts";

const SCENARIOS: Record<string, string> = {
  "completed/terminator": "An OpenAI-style SSE stream with `stream_options.include_usage` that reached `data: [DONE]` (route `llm`, `log_completed: true`).",
  "completed/body_complete": "A plain `text/plain` chunked body that ended normally (route `plain`).",
  "completed/websocket_closed": "A WebSocket session: the client sent `hello`, got `echo:hello`, and closed with 1000 `done` 150 ms later. A session the upstream closes gives the same reason: nginx does not tell which side closed.",
  "client_abort/client_closed_before_response": "Mock LLM with `x-mock-ttft-ms: 2000`; the client hung up 300 ms after sending the request. nginx set status 499; the mock recorded `client_disconnected` with 0 tokens sent.",
  "client_abort/client_closed_mid_response": "Mock LLM with `x-mock-token-delay-ms: 60`; the client hung up after its 4th SSE event. The status stays 200; nginx closed the upstream connection (the mock recorded `client_disconnected`).",
  "upstream_abort/closed_mid_response": "Mock LLM with `x-mock-abort-after-tokens: 2` on a route with `log_completed: false`: the mock destroyed its socket after 2 tokens.",
  "upstream_abort/closed_before_headers": "A non-stream request with `x-mock-abort-after-tokens`: the mock closed the connection before any header; nginx answered 502.",
  "upstream_abort/no_terminator": "A small upstream that sends three OpenAI chunks and ends the body cleanly without `[DONE]`.",
  "upstream_timeout/read_timeout_mid_response": "Service `read_timeout: 500`, mock with `x-mock-stall-after-tokens: 3`: nginx's read timer fired during the stall.",
  "upstream_timeout/read_timeout_before_headers": "Service `read_timeout: 500`, mock with `x-mock-header-delay-ms: 3000`: nginx answered 504 (the request was a POST; the record reads the method from the request line, since an error page turns it into GET).",
  "upstream_timeout/websocket_idle_timeout": "A WebSocket upstream that never answers, service `read_timeout: 500`: nginx ended the tunnel (the client saw close code 1006).",
  "upstream_error/upstream_5xx": "Mock LLM with `x-mock-fail-status: 503`.",
  "upstream_error/connect_failed": "A service pointing at a closed port (`retries: 0`): connection refused, nginx answered 502.",
  "gateway_exit/plugin_exit": "A route with `key-auth`, a request without a key: key-auth answered 401 and the upstream was never called.",
  "gateway_exit/no_route": "A path no route matches: Kong's router answered 404 (the plugin is global, so it runs without a route).",
};

const ORDER = ["completed", "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit"];
const FIRST = ["schema_version", "outcome", "reason"];

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v) || v === null || typeof v !== "object") return v;
  const rank = (k: string): number => (FIRST.includes(k) ? FIRST.indexOf(k) : FIRST.length);
  const keys = Object.keys(v).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return Object.fromEntries(keys.map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
}

const input = process.argv[2];
if (!input) throw new Error("usage: write-records-doc.ts RECORDS.json");
const records = JSON.parse(readFileSync(input, "utf8")) as Record<string, unknown>;

let out = `# upstream-disconnect-log: real records, one per class

Captured from the integration tests (\`spec/upstream-disconnect-log/disconnect.test.ts\`): the plugin
in the local gateway (Debian nginx 1.22 + lua-nginx-module 0.10.23) in front of the mock LLM and
small test upstreams, run with \`UDL_RECORDS_OUT=<file> npx vitest run spec/upstream-disconnect-log/\`
and written here by \`npx tsx spec/upstream-disconnect-log/write-records-doc.ts <file>\`. Each is the
JSON that followed \`[upstream-disconnect] \` in the gateway's error log (pretty-printed, keys sorted;
the log has one line per record). Schema: \`plugins/upstream-disconnect-log/README.md\`
(schema_version 1). Paths carry a per-test tag (\`/t14-…\`): the tests find their record by path.

`;
for (const outcome of ORDER) {
  const keys = Object.keys(records).filter((k) => k.startsWith(outcome + "/"));
  if (keys.length === 0) throw new Error(`no record of outcome ${outcome}`);
  out += `## ${outcome}\n\n`;
  for (const key of keys) {
    const scenario = SCENARIOS[key];
    if (scenario === undefined) throw new Error(`no scenario text for ${key}`);
    out += `### \`${key.split("/")[1]}\`\n\n${scenario}\n\n\`\`\`json\n${JSON.stringify(sortKeys(records[key]), null, 2)}\n\`\`\`\n\n`;
  }
}
const target = join(PROJECT_ROOT, "docs", "disconnect-records.md");
writeFileSync(target, out.trimEnd() + "\n");
console.log(`${Object.keys(records).length} records -> ${target}`);
