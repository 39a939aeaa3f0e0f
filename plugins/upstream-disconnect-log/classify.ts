// How a proxied response ended, from signs gathered in header_filter, body_filter and log. Pure.
//
// What nginx (as in Kong 3.9's OpenResty) shows the log phase, as observed (README.md):
// - client gone before any byte: $status 499; after some: $request_completion "", no eof.
// - upstream closed or timed out after the headers: $request_completion "OK" but no eof; the
//   silence before the end against read_timeout tells the two apart.
// - before the headers: nginx answers 502 or 504 itself, recorded in $upstream_status.
// - complete: eof and "OK"; an LLM stream must also have reached its terminator.

export type Outcome =
  | "completed"
  | "client_abort"
  | "upstream_abort"
  | "upstream_timeout"
  | "upstream_error"
  | "gateway_exit";

export const OUTCOMES: readonly Outcome[] = [
  "completed", "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit",
];

/** kong.response.get_source(). */
export type ResponseSource = "service" | "exit" | "error";

export interface ResponseEnd {
  source: ResponseSource;
  routed: boolean;
  /** nginx sets 499 itself. */
  status: number;
  method: string;
  upstreamAttempted: boolean;
  /** Of the last try. */
  upstreamStatus?: number;
  upstreamConnected: boolean;
  upstreamHeaderReceived: boolean;
  upstreamLastBytes?: number;
  /** 101 Switching Protocols. */
  upgraded: boolean;
  /** The body filter saw the last buffer. */
  eof: boolean;
  requestCompleted: boolean;
  /** SSE or NDJSON of a recognised LLM API, which ends with a terminator. */
  llmStream: boolean;
  terminated: boolean;
  /** Since the last upstream bytes (or the headers). */
  silenceMs: number;
  readTimeoutMs?: number;
}

export interface Classification {
  outcome: Outcome;
  reason: string;
}

export const DEFAULT_READ_TIMEOUT_MS = 60000;

/**
 * nginx re-arms its read timer lazily (NGX_TIMER_LAZY_DELAY, 300 ms), so a timeout can fire up to
 * 300 ms early; 25 ms more for the cached clock. At least 100 ms, so an upstream that dies right
 * after its last bytes is an abort.
 */
export function timeoutThresholdMs(readTimeoutMs: number | undefined): number {
  const rt = readTimeoutMs !== undefined && readTimeoutMs > 0 ? readTimeoutMs : DEFAULT_READ_TIMEOUT_MS;
  return math.max(rt - 325, math.min(rt, 100));
}

function cutByUpstream(f: ResponseEnd, timeoutReason: string, closedReason: string): Classification {
  if (f.silenceMs >= timeoutThresholdMs(f.readTimeoutMs)) return { outcome: "upstream_timeout", reason: timeoutReason };
  return { outcome: "upstream_abort", reason: closedReason };
}

function beforeHeaders(f: ResponseEnd): Classification {
  const status = f.upstreamStatus ?? f.status;
  if (status === 504) {
    return { outcome: "upstream_timeout", reason: f.upstreamConnected ? "read_timeout_before_headers" : "connect_timeout" };
  }
  if (!f.upstreamConnected) return { outcome: "upstream_error", reason: "connect_failed" };
  if (status === 502 && (f.upstreamLastBytes ?? 0) === 0) return { outcome: "upstream_abort", reason: "closed_before_headers" };
  return { outcome: "upstream_error", reason: "bad_response" };
}

function websocket(f: ResponseEnd): Classification {
  // nginx ends the tunnel the same way whichever side closed.
  if (f.eof) return { outcome: "completed", reason: "websocket_closed" };
  if (!f.requestCompleted) return { outcome: "client_abort", reason: "websocket_client_error" };
  return cutByUpstream(f, "websocket_idle_timeout", "websocket_error");
}

function bodyless(f: ResponseEnd): boolean {
  return f.method === "HEAD" || f.status === 204 || f.status === 304 || (f.status >= 100 && f.status < 200);
}

export function classify(f: ResponseEnd): Classification {
  if (!f.routed && !f.upstreamAttempted) return { outcome: "gateway_exit", reason: "no_route" };
  if (f.source === "exit") return { outcome: "gateway_exit", reason: "plugin_exit" };
  if (!f.upstreamAttempted) {
    if (f.status === 499) return { outcome: "client_abort", reason: "client_closed_before_response" };
    return { outcome: "gateway_exit", reason: "gateway_error" };
  }
  if (f.status === 499) return { outcome: "client_abort", reason: "client_closed_before_response" };
  if (!f.upstreamHeaderReceived) return beforeHeaders(f);
  if (f.upgraded) return websocket(f);
  if (f.upstreamStatus !== undefined && f.upstreamStatus >= 500) return { outcome: "upstream_error", reason: "upstream_5xx" };
  // Whatever happens to the connection afterwards.
  if (f.terminated) return { outcome: "completed", reason: "terminator" };
  if (!f.requestCompleted) return { outcome: "client_abort", reason: "client_closed_mid_response" };
  if (f.eof) {
    if (f.llmStream) return { outcome: "upstream_abort", reason: "no_terminator" };
    return { outcome: "completed", reason: "body_complete" };
  }
  if (bodyless(f)) return { outcome: "completed", reason: "no_body" };
  return cutByUpstream(f, "read_timeout_mid_response", "closed_mid_response");
}
