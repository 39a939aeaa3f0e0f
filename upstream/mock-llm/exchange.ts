/**
 * One request/response of the mock and its record (records.ts), with the writers every answer of
 * the LLM APIs goes through; sendPlain answers the mock's own endpoints, which are not recorded.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Api } from "./flavors/index.ts";
import type { ErrorResponse } from "./flavors/types.ts";
import type { MockOptions } from "./faults.ts";
import type { MockRequestRecord, Outcome, UsageRecord } from "./records.ts";
import { RecordStore, redactHeaders, redactPath } from "./records.ts";
import { Wire } from "./wire.ts";

export class Exchange {
  readonly id: number;
  readonly started = performance.now();
  readonly receivedAt = new Date().toISOString();
  readonly controller = new AbortController();
  api: Api | "models" | null = null;
  flavor: string | null = null;
  model: string | null = null;
  stream = false;
  status = 0;
  faults: Record<string, unknown> = {};
  tokensSent = 0;
  usage: UsageRecord | null = null;
  usageSent = false;
  finishReason: string | null = null;
  body: unknown = null;
  error: string | null = null;
  wire: Wire | null = null;
  private recorded = false;

  constructor(
    private readonly store: RecordStore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.id = store.allocateId();
    res.on("close", () => {
      this.controller.abort();
      if (this.recorded) return;
      if (this.status === 0) this.status = res.headersSent ? res.statusCode : 0;
      if (!res.writableFinished) this.record("client_disconnected");
      else this.record(res.statusCode >= 400 ? "error" : "completed");
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.signal.aborted || this.res.destroyed;
  }

  /** Resolves once the connection has closed: a stalled response sends nothing until then. */
  untilClosed(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.signal.aborted) resolve();
      else this.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  record(outcome: Outcome): void {
    if (this.recorded) return;
    this.recorded = true;
    const record: MockRequestRecord = {
      id: this.id,
      received_at: this.receivedAt,
      method: this.req.method ?? "",
      path: redactPath(this.req.url ?? ""),
      headers: redactHeaders(this.req.headers),
      body: this.body,
      api: this.api,
      flavor: this.flavor,
      model: this.model,
      stream: this.stream,
      status: this.status,
      outcome,
      faults: this.faults,
      tokens_sent: this.tokensSent,
      usage: this.usage,
      usage_sent: outcome === "completed" && this.usageSent,
      finish_reason: this.finishReason,
      bytes_sent: this.wire?.bytesSent ?? 0,
      error: this.error,
      duration_ms: Math.round((performance.now() - this.started) * 1000) / 1000,
    };
    this.store.add(record);
  }

  writeHead(status: number, headers: OutgoingHttpHeaders): void {
    this.status = status;
    this.res.writeHead(status, { ...headers, "x-mock-record-id": String(this.id), "x-request-id": `mock-${this.id}` });
  }

  /** Sends a JSON body through the wire (gzip/split honoured), recording `outcome` before it ends. */
  async sendJson(
    status: number,
    payload: unknown,
    headers: OutgoingHttpHeaders,
    options: MockOptions | undefined,
    beforeRecord?: () => void,
    outcome: Outcome = "completed",
  ): Promise<void> {
    if (this.closed) return;
    const text = JSON.stringify(payload);
    const gzip = options?.gzip ?? false;
    const allHeaders: OutgoingHttpHeaders = { ...headers };
    if (gzip) {
      allHeaders["content-encoding"] = "gzip";
      allHeaders.vary = "Accept-Encoding";
    } else {
      allHeaders["content-length"] = Buffer.byteLength(text);
    }
    this.writeHead(status, allHeaders);
    const wire = new Wire(this.res, { gzip, crlf: false, keepaliveComments: false, split: options?.split ?? false }, this.signal, false);
    this.wire = wire;
    await wire.send(text);
    if (this.closed) return;
    beforeRecord?.();
    this.record(outcome);
    await wire.end();
  }

  /** An error body in the API's format; `reason` goes to the record. */
  async sendError(status: number, error: ErrorResponse, options: MockOptions | undefined, reason: string, headers: OutgoingHttpHeaders = {}): Promise<void> {
    this.error = reason;
    await this.sendJson(status, error.body, { ...headers, "content-type": error.contentType }, options, undefined, "error");
  }
}

/** A JSON answer of the mock's own endpoints (health, records), sent at once. */
export function sendPlain(res: ServerResponse, status: number, payload: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
