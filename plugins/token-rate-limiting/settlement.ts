// What a finished request costs: the tokens the shared rule counts (the upstream's own usage
// when it reported it, else the documented estimate; zero for responses that generated
// nothing), weighted per tokens_count.

import { tokensOf, type TokenFacts, type Tokens } from "../ai-gateway-shared/tokens";
import { costOf, type CostConfig } from "./cost";

export interface Counted extends Tokens {
  /** Units charged against the limits (per tokens_count). */
  cost: number;
}

export function countTokens(conf: CostConfig, facts: TokenFacts): Counted {
  const t = tokensOf(facts);
  return {
    prompt: t.prompt,
    completion: t.completion,
    total: t.total,
    cost: costOf(conf, t.prompt, t.completion),
    estimated: t.estimated,
    source: t.source,
  };
}
