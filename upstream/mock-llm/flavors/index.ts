import { anthropic } from "./anthropic.ts";
import { ollama } from "./ollama.ts";
import { openai } from "./openai.ts";
import { sglang } from "./sglang.ts";
import type { Api, Flavor, FlavorName } from "./types.ts";
import { vllm } from "./vllm.ts";

export const FLAVORS: Readonly<Record<FlavorName, Flavor>> = { openai, vllm, sglang, anthropic, ollama };

/**
 * The flavor that frames a response: `/v1/messages` always answers as Anthropic and `/api/chat` as
 * Ollama; `/v1/chat/completions` answers in the chosen flavor (anthropic and ollama included, for
 * gateways that route every path to one upstream); `/v1/completions` has no Anthropic or Ollama form
 * and answers as OpenAI for those.
 */
export function effectiveFlavor(api: Api, chosen: FlavorName): Flavor {
  if (api === "messages") return anthropic;
  if (api === "ollama_chat") return ollama;
  if (api === "completions" && (chosen === "anthropic" || chosen === "ollama")) return openai;
  return FLAVORS[chosen];
}

export type { Api, Flavor, FlavorName, ResponseContext, StreamFraming } from "./types.ts";
export { FLAVOR_NAMES, isFlavorName } from "./types.ts";
