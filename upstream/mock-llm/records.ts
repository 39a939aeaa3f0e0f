/**
 * One record per request the mock answered (health checks and /_mock/* excepted), written the moment
 * the request's outcome is known: before the last byte of a completed response is handed to the
 * socket, or when the connection closes early. Tests read them at GET /_mock/requests, optionally
 * waiting with ?wait_for=N&timeout_ms=M until N records exist.
 */

export type Outcome =
  /** The response was sent in full. */
  | "completed"
  /** The client (or the gateway in front of the mock) closed the connection before the response was complete, stalled or not. */
  | "client_disconnected"
  /** The mock cut the connection on purpose (abort_after_tokens). */
  | "aborted_by_fault"
  /** The mock answered with an error status: validation, unknown path, fail_status. */
  | "error";

export const OUTCOMES: readonly Outcome[] = ["completed", "client_disconnected", "aborted_by_fault", "error"];

export interface UsageRecord {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface MockRequestRecord {
  /** 1, 2, 3, ... in arrival order; also sent back as the `x-mock-record-id` response header. */
  id: number;
  received_at: string;
  method: string;
  /** Path and query as received (API keys in the query redacted). */
  path: string;
  /** Lower-cased request headers, credentials redacted. */
  headers: Record<string, string | string[]>;
  /** The parsed JSON body, the raw text when it is not JSON, null when empty. */
  body: unknown;
  /** Which API the path speaks: chat, completions, messages, ollama_chat, models, or null for others. */
  api: string | null;
  /** The flavor that framed the response, null when no completion was attempted. */
  flavor: string | null;
  model: string | null;
  stream: boolean;
  status: number;
  outcome: Outcome;
  /** The mock options the request set (see faults.ts), by canonical name. */
  faults: Record<string, unknown>;
  /** Completion tokens written to the connection. */
  tokens_sent: number;
  /**
   * The usage of the planned response: what a complete response reports (for Anthropic, prompt_tokens
   * includes the cache tokens). Null when no completion was planned.
   */
  usage: UsageRecord | null;
  /** Whether the final usage reached the wire (a completed response whose format carries it). */
  usage_sent: boolean;
  finish_reason: string | null;
  /** Response body bytes written before compression. */
  bytes_sent: number;
  /** Why the mock answered with an error, for outcome "error". */
  error: string | null;
  duration_ms: number;
}

const REDACTED = "[REDACTED]";
const SECRET_HEADERS = new Set(["authorization", "proxy-authorization", "x-api-key", "api-key", "apikey", "cookie", "x-goog-api-key"]);
const SECRET_QUERY = /([?&](?:api[-_]?key|key|token|access_token)=)[^&]*/gi;

export function redactHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = SECRET_HEADERS.has(name.toLowerCase()) ? REDACTED : value;
  }
  return out;
}

export function redactPath(path: string): string {
  return path.replace(SECRET_QUERY, `$1${REDACTED}`);
}

/** Oldest records are dropped past this many, so long benchmark runs stay in bounded memory. */
export const MAX_RECORDS = 10_000;

export class RecordStore {
  private records: MockRequestRecord[] = [];
  private nextId = 1;
  private waiters = new Set<{ check: () => void; done: () => void }>();

  allocateId(): number {
    return this.nextId++;
  }

  add(record: MockRequestRecord): void {
    this.records.push(record);
    if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);
    for (const waiter of [...this.waiters]) waiter.check();
  }

  list(): MockRequestRecord[] {
    return [...this.records];
  }

  clear(): void {
    this.records = [];
  }

  /** Resolves once at least `count` records exist, or after `timeoutMs` with whatever there is. */
  waitFor(count: number, timeoutMs: number, signal?: AbortSignal): Promise<MockRequestRecord[]> {
    if (this.records.length >= count) return Promise.resolve(this.list());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener("abort", done);
        resolve(this.list());
      };
      const check = (): void => {
        if (this.records.length >= count) done();
      };
      const waiter = { check, done };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(waiter);
      signal?.addEventListener("abort", done);
    });
  }

  /** Wakes every waiter (server shutdown). */
  releaseWaiters(): void {
    for (const waiter of [...this.waiters]) waiter.done();
  }
}
