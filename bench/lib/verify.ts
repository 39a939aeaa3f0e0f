// Before any load: proof that each configuration proxies correctly and that its plugins really
// run and count exactly, so that a broken config can never show up as a fast number.
import { BLOCKED_PROMPT, chatRequest, promptText, streamRequest } from "./payloads.ts";
import { CHUNK_LOG_PATH, REFUSED_PATH, type ProxyConfig } from "./configs.ts";
import type { StreamFile } from "./streams.ts";

/** A proxy under test: its configuration, URL and error log. */
export interface Endpoint {
  cfg: ProxyConfig;
  url: string;
  errorLog(): string;
  /** What bench-byte-counter counted in this worker (through bench-probe); gateways only. */
  byteCounter?: () => Promise<{ requests: number; last_bytes: number } | undefined>;
}

export interface Expected {
  json: string;
  /** Tokens token-rate-limiting must count for the JSON answer. */
  jsonTotal: number;
  streams: StreamFile[];
  promptSizes: number[];
}

/** token-rate-limiting's header for its minute window (the benchmark configures minute and hour). */
export const REMAINING_HEADER = "x-ratelimit-remaining-tokens-minute";

async function post(url: string, body: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function viaKong(headers: Headers): boolean {
  return /kong/i.test(headers.get("via") ?? "");
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

function remaining(headers: Headers): number | undefined {
  const v = headers.get(REMAINING_HEADER);
  return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * Tokens token-rate-limiting counted for one request: the drop of its remaining budget from this
 * request's admission to the next one's (the log phase settles in between). Retried when the
 * minute window turned between the two.
 */
async function countedTokens(url: string, body: string): Promise<number | string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const first = await post(url, body);
    // the log phase of the first request runs after its last byte: let it settle
    await sleep(50);
    const second = await post(url, body);
    const a = remaining(first.headers);
    const b = remaining(second.headers);
    if (a === undefined || b === undefined) return `no ${REMAINING_HEADER} header (status ${first.status}, ${second.status})`;
    if (b <= a) return a - b;
  }
  return "the minute window turned at every attempt";
}

function describeMismatch(got: string, want: string): string {
  let at = 0;
  while (at < got.length && got[at] === want[at]) at++;
  return `${got.length} bytes, want ${want.length}; first difference at ${at}: ${JSON.stringify(got.slice(at, at + 80))}`;
}

type Say = (m: string) => void;

/** One exact count checked: what a plugin counted against what the answer holds. */
export interface CountCheck {
  config: string;
  what: string;
  counted: number;
  want: number;
}

/** Where a check reports: problems fail the run; counts are the exact-count target. */
interface Sink {
  say: Say;
  count(what: string, counted: number | string, want: number): void;
}

async function checkJson(t: Endpoint, exp: Expected, { say, count }: Sink, usesTrl: boolean): Promise<void> {
  const json = await post(`${t.url}/json`, chatRequest({ stream: false }));
  if (json.status !== 200) say(`POST /json answered ${json.status}: ${json.text.slice(0, 300)}`);
  else if (json.text !== exp.json) say(`POST /json body differs from the upstream's: ${json.text.slice(0, 300)}`);
  if (!t.cfg.bare && !viaKong(json.headers)) say("the response did not come through the gateway (no `Via: ... kong`)");
  if (t.cfg.bare && viaKong(json.headers)) say("the bare proxy answered with a Kong Via header");
  if (usesTrl) count("tokens of the JSON answer", await countedTokens(`${t.url}/json`, chatRequest({ stream: false })), exp.jsonTotal);
}

/** The client gets the file byte for byte; a metering plugin counts exactly its usage or bytes. */
async function checkStream(t: Endpoint, s: StreamFile, { say, count }: Sink, usesTrl: boolean): Promise<void> {
  const url = `${t.url}${s.path}`;
  const r = await post(url, streamRequest(s.shape));
  if (r.status !== 200) return say(`POST ${s.path} answered ${r.status}: ${r.text.slice(0, 300)}`);
  if (!(r.headers.get("content-type") ?? "").startsWith(s.contentType)) say(`POST ${s.path}: content-type ${r.headers.get("content-type")}, want ${s.contentType}`);
  if (r.text !== s.body) say(`POST ${s.path}: the client's stream differs from the file (${describeMismatch(r.text, s.body)})`);
  if (usesTrl) count(`tokens of ${s.file}`, await countedTokens(url, streamRequest(s.shape)), s.expected.total_tokens);
  if (t.byteCounter && t.cfg.fixtures?.includes("bench-byte-counter")) {
    const counted = await t.byteCounter();
    count(`bytes of ${s.file}`, counted?.last_bytes ?? "bench-probe saw no byte counter", Buffer.byteLength(s.body));
  }
}

/**
 * A client that does not ask for usage: token-rate-limiting asks the upstream for it, counts it
 * and gives the client the stream it would have got without: no usage chunk, no "usage":null.
 */
async function checkInjectedUsage(t: Endpoint, s: StreamFile, { say, count }: Sink): Promise<void> {
  if (s.unaskedBody === undefined) return;
  const url = `${t.url}${s.path}`;
  const body = streamRequest(s.shape, { askUsage: false });
  const r = await post(url, body);
  if (r.status !== 200) return say(`POST ${s.path} without include_usage answered ${r.status}`);
  if (r.text !== s.unaskedBody) say(`POST ${s.path} without include_usage: the client's stream is not OpenAI's answer to such a client (${describeMismatch(r.text, s.unaskedBody)})`);
  count(`tokens of ${s.file}, usage injected`, await countedTokens(url, body), s.expected.total_tokens);
}

async function checkPromptGuard(t: Endpoint, exp: Expected, say: Say): Promise<void> {
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
}

/** upstream-disconnect-log logs nothing for completed streams by default: a refused upstream proves it runs. */
async function checkDisconnectLog(t: Endpoint, say: Say): Promise<void> {
  const before = t.errorLog().length;
  const refused = await fetch(`${t.url}${REFUSED_PATH}`);
  await refused.text();
  if (refused.status !== 502) say(`GET ${REFUSED_PATH} answered ${refused.status}, want 502`);
  const logged = await waitFor(() => t.errorLog().slice(before).includes("[upstream-disconnect]"), 3000);
  if (!logged) say("upstream-disconnect-log wrote no [upstream-disconnect] record for a refused upstream");
}

/**
 * The problems found (empty: fine; any fails the run) and the exact counts checked (a wrong
 * count is a target not met, reported, not a broken harness). `redisKeys` reads the harness
 * redis-server's key count, to prove the redis policy is the one counting.
 */
export async function verifyTarget(t: Endpoint, exp: Expected, redisKeys?: () => Promise<number>): Promise<{ problems: string[]; counts: CountCheck[] }> {
  const problems: string[] = [];
  const counts: CountCheck[] = [];
  const say = (m: string) => problems.push(`${t.cfg.id}: ${m}`);
  const sink: Sink = {
    say,
    // a plugin that counted nothing at all is not running: that fails the run
    count: (what, counted, want) => (typeof counted === "string" ? say(`${what}: ${counted}`) : counts.push({ config: t.cfg.id, what, counted, want })),
  };
  const usesTrl = t.cfg.plugins.includes("token-rate-limiting");
  await checkJson(t, exp, sink, usesTrl);
  for (const s of exp.streams) await checkStream(t, s, sink, usesTrl);
  if (usesTrl) for (const s of exp.streams) await checkInjectedUsage(t, s, sink);
  await checkPromptGuard(t, exp, say);
  if (t.cfg.plugins.includes("upstream-disconnect-log")) await checkDisconnectLog(t, say);
  if (t.cfg.redis) {
    if (!redisKeys) say("no redis-server to check");
    else if ((await redisKeys()) === 0) say("token-rate-limiting (redis policy) left no key in redis-server");
  }
  return { problems, counts };
}

/** The sizes of the chunks body_filter got for one response, as bench-chunk-log wrote them. */
export interface ChunkSizes {
  file: string;
  calls: number;
  bytes: number;
  min: number;
  max: number;
  median: number;
  /** The most frequent size and how often it came. */
  mode: { size: number; count: number };
}

export function parseChunkLog(log: string, uri: string, file: string): ChunkSizes | undefined {
  const line = log.split("\n").reverse().find((l) => l.includes(`[bench-chunks] ${uri} `));
  const m = line?.match(/\[bench-chunks\] \S+ ([\d,+eof]*)/);
  if (!m) return undefined;
  // the last call usually carries only eof (0 bytes): it is not a chunk of data
  const sizes = m[1].split(",").filter((x) => x !== "").map((x) => Number(x.replace("+eof", ""))).filter((n) => n > 0);
  if (sizes.length === 0) return undefined;
  const sorted = [...sizes].sort((a, b) => a - b);
  const counts = new Map<number, number>();
  for (const n of sizes) counts.set(n, (counts.get(n) ?? 0) + 1);
  const [size, count] = [...counts.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0];
  return { file, calls: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0), min: sorted[0], max: sorted[sorted.length - 1], median: sorted[sorted.length >> 1], mode: { size, count } };
}

/** Fetches each stream through the chunk-log route of a gateway and reads what body_filter got. */
export async function observeChunks(t: Endpoint, streams: StreamFile[]): Promise<ChunkSizes[]> {
  const out: ChunkSizes[] = [];
  for (const s of streams) {
    const uri = `${CHUNK_LOG_PATH}${s.path}`;
    const r = await post(`${t.url}${uri}`, streamRequest(s.shape));
    if (r.status !== 200 || r.text !== s.body) throw new Error(`${uri} through ${t.cfg.id} answered ${r.status} with ${r.text.length} bytes`);
    let seen: ChunkSizes | undefined;
    await waitFor(() => (seen = parseChunkLog(t.errorLog(), uri, s.file)) !== undefined, 3000);
    if (!seen) throw new Error(`bench-chunk-log wrote no chunk sizes for ${uri}`);
    out.push(seen);
  }
  return out;
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
