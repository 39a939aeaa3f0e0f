/**
 * npx tsx upstream/mock-llm/main.ts --port N [--host 127.0.0.1] [--flavor openai|vllm|sglang|anthropic|ollama]
 *                                   [--models a,b,c] [--exit-with-stdin]
 * Defaults come from PORT (9000), HOST (127.0.0.1), MOCK_LLM_FLAVOR (openai). Port 0 picks a free port;
 * the line "mock-llm listening on http://<host>:<port>" says which, once the server accepts connections.
 * --exit-with-stdin: exit when stdin closes (a test harness that dies takes the mock with it).
 */
import { parseArgs } from "node:util";
import { FLAVOR_NAMES, isFlavorName } from "./flavors/types.ts";
import { startMockLlmServer } from "./server.ts";

function usage(message: string): never {
  process.stderr.write(`mock-llm: ${message}\nusage: main.ts --port N [--host H] [--flavor ${FLAVOR_NAMES.join("|")}] [--models a,b] [--exit-with-stdin]\n`);
  process.exit(2);
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      flavor: { type: "string" },
      models: { type: "string" },
      "exit-with-stdin": { type: "boolean" },
    },
    strict: true,
  });
}
try {
  parsed = parse();
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
const values = parsed.values;

const portText = values.port ?? process.env.PORT ?? "9000";
const port = Number(portText);
if (!/^\d+$/.test(portText) || port > 65535) usage(`invalid port "${portText}"`);
const host = values.host ?? process.env.HOST ?? "127.0.0.1";
const flavor = values.flavor ?? process.env.MOCK_LLM_FLAVOR ?? "openai";
if (!isFlavorName(flavor)) usage(`unknown flavor "${flavor}"`);
const models = values.models?.split(",").map((m) => m.trim()).filter((m) => m.length > 0);

const server = await startMockLlmServer({ port, host, flavor, models });
process.stdout.write(`mock-llm listening on ${server.url}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
if (values["exit-with-stdin"]) {
  process.stdin.on("end", () => void stop());
  process.stdin.on("close", () => void stop());
  process.stdin.resume();
}
