// Before any load: proof that each configuration proxies correctly and that its plugins really
// run, so that a broken config can never show up as a fast number.
import { countSseEvents, BLOCKED_PROMPT, chatRequest, promptText } from "./payloads.ts";
import { REFUSED_PATH, type ProxyConfig } from "./configs.ts";

export interface Target {
  cfg: ProxyConfig;
  url: string;
  errorLog(): string;
}

export interface Expected {
  json: string;
  sse: string;
  sseEvents: number;
  promptSizes: number[];
}

async function post(url: string, body: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function viaKong(headers: Headers): boolean {
  return /kong/i.test(headers.get("via") ?? "");
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/**
 * Returns the problems found (empty: fine). `redisKeys` reads the harness redis-server's key
 * count, to prove the redis policy is the one counting.
 */
export async function verifyTarget(t: Target, exp: Expected, redisKeys?: () => Promise<number>): Promise<string[]> {
  const problems: string[] = [];
  const say = (m: string) => problems.push(`${t.cfg.id}: ${m}`);
  const usesTrl = t.cfg.plugins.includes("token-rate-limiting");

  const json = await post(`${t.url}/json`, chatRequest({ stream: false }));
  if (json.status !== 200) say(`POST /json answered ${json.status}: ${json.text.slice(0, 300)}`);
  else if (json.text !== exp.json) say(`POST /json body differs from the upstream's: ${json.text.slice(0, 300)}`);
  if (!t.cfg.bare && !viaKong(json.headers)) say("the response did not come through the gateway (no `Via: ... kong`)");
  if (t.cfg.bare && viaKong(json.headers)) say("the bare proxy answered with a Kong Via header");
  if (usesTrl) {
    const remaining = json.headers.get("x-ratelimit-remaining-tokens-minute");
    if (remaining === null || !/^\d+$/.test(remaining)) say("token-rate-limiting did not set X-RateLimit-Remaining-Tokens-Minute");
  }

  const sse = await post(`${t.url}/sse`, chatRequest({ stream: true }));
  if (sse.status !== 200) say(`POST /sse answered ${sse.status}: ${sse.text.slice(0, 300)}`);
  else {
    if (!(sse.headers.get("content-type") ?? "").startsWith("text/event-stream")) say(`POST /sse content-type ${sse.headers.get("content-type")}`);
    if (sse.text !== exp.sse) {
      say(`the client's stream differs from the upstream's (${countSseEvents(sse.text)} events, ${sse.text.length} bytes; want ${exp.sseEvents}, ${exp.sse.length})`);
    }
  }

  if (t.cfg.plugins.includes("prompt-guard")) {
    const blocked = await post(`${t.url}/json`, chatRequest({ stream: false, prompt: BLOCKED_PROMPT }));
    if (blocked.status !== 400 || !blocked.text.includes("prompt_blocked")) {
      say(`prompt-guard let a denied prompt through (status ${blocked.status}: ${blocked.text.slice(0, 200)})`);
    }
  }
  for (const size of exp.promptSizes) {
    const r = await post(`${t.url}/json`, chatRequest({ stream: false, prompt: promptText(size) }));
    if (r.status !== 200 || r.text !== exp.json) say(`POST /json with a ${size}-byte prompt answered ${r.status}: ${r.text.slice(0, 300)}`);
  }

  if (t.cfg.plugins.includes("upstream-disconnect-log")) {
    const before = t.errorLog().length;
    const refused = await fetch(`${t.url}${REFUSED_PATH}`);
    await refused.text();
    if (refused.status !== 502) say(`GET ${REFUSED_PATH} answered ${refused.status}, want 502`);
    const logged = await waitFor(() => t.errorLog().slice(before).includes("[upstream-disconnect]"), 3000);
    if (!logged) say("upstream-disconnect-log wrote no [upstream-disconnect] record for a refused upstream");
  }

  if (t.cfg.redis) {
    if (!redisKeys) say("no redis-server to check");
    else if ((await redisKeys()) === 0) say("token-rate-limiting (redis policy) left no key in redis-server");
  }
  return problems;
}

/**
 * error-log lines that mean something went wrong in a worker (plugin errors included). nginx's
 * own `connect() failed` for the deliberately refused route is expected.
 */
export function errorLogProblems(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l) || /lua entry thread aborted|runtime error/.test(l))
    .filter((l) => !l.includes(`request: "GET ${REFUSED_PATH} `));
}
