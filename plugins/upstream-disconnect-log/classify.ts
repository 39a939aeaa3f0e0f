// How a proxied response ended, decided from a few signs gathered in the
// header_filter, body_filter and log phases. Pure: busted tests every branch.
//
// What nginx (1.22, lua-nginx-module 0.10.x, as in Kong 3.9's OpenResty) shows the log phase,
// observed through the local gateway for each ending (see README.md "How each class is told"):
//
// - client gone before any byte reached it: $status 499 (nginx sets it only when nothing was sent).
// - client gone after bytes reached it: $status stays 200, $request_completion is "" (nginx
//   terminates the request), the body filter never sees eof.
// - upstream closed or read timeout after the headers: nginx flushes what it has and finalizes
//   the request normally, so $request_completion is "OK", but the body filter never sees eof
//   (no last buffer: the client gets a truncated chunked body). Closed vs timed out is told by
//   the silence before the end against the service's read_timeout.
// - before the headers: nginx answers itself (kong.response.get_source() == "error") with 502
//   (connect failure, upstream closed, bad header) or 504 (timeout), recorded in $upstream_status.
// - complete: eof seen and $request_completion "OK"; an LLM stream must also have reached its
//   terminator ([DONE], message_stop, done:true), which the shared usage reader reports.

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

/** What kong.response.get_source() says: the upstream, a plugin's exit, or nginx/Kong's own error. */
export type ResponseSource = "service" | "exit" | "error";

export interface ResponseEnd {
  source: ResponseSource;
  /** A route matched (Kong's router answers 404 itself when none does). */
  routed: boolean;
  /** Status the client got (ngx.status in the log phase; nginx sets 499 itself). */
  status: number;
  method: string;
  /** nginx tried an upstream ($upstream_addr set). */
  upstreamAttempted: boolean;
  /** Status of the last upstream try (502/504 recorded by nginx for a failed try). */
  upstreamStatus?: number;
  /** The last try connected. */
  upstreamConnected: boolean;
  /** The last try received the upstream's response header. */
  upstreamHeaderReceived: boolean;
  /** Bytes the last try read from the upstream. */
  upstreamLastBytes?: number;
  /** Response was 101 Switching Protocols (WebSocket tunnel). */
  upgraded: boolean;
  /** The body filter saw the last buffer (nginx ended the body normally). */
  eof: boolean;
  /** $request_completion == "OK". */
  requestCompleted: boolean;
  /** SSE or NDJSON whose events the usage reader recognised (an LLM stream, which ends with a terminator). */
  llmStream: boolean;
  /** The usage reader saw the terminator ([DONE], message_stop, done:true; or a whole JSON body). */
  terminated: boolean;
  /** Milliseconds between the last upstream bytes (or the headers) and the end of the request. */
  silenceMs: number;
  /** The service's read_timeout in ms (Kong's default 60000 when unknown). */
  readTimeoutMs?: number;
}

export interface Classification {
  outcome: Outcome;
  /** Which evidence decided (documented in README.md). */
  reason: string;
}

export const DEFAULT_READ_TIMEOUT_MS = 60000;

/**
 * The least silence that counts as a read timeout. nginx re-arms its read timer lazily
 * (NGX_TIMER_LAZY_DELAY, 300 ms): a timer armed up to 300 ms before the last read is kept, so
 * the timeout can fire up to 300 ms sooner than read_timeout after the last bytes (observed:
 * 379-400 ms for read_timeout 500); 25 ms more for the cached clock. Never below 100 ms (or
 * the timeout itself when shorter), so an upstream that dies right after its last bytes is an
 * abort.
 */
export function timeoutThresholdMs(readTimeoutMs: number | undefined): number {
  const rt = readTimeoutMs !== undefined && readTimeoutMs > 0 ? readTimeoutMs : DEFAULT_READ_TIMEOUT_MS;
  return math.max(rt - 325, math.min(rt, 100));
}

function cutByUpstream(f: ResponseEnd, timeoutReason: string, closedReason: string): Classification {
  if (f.silenceMs >= timeoutThresholdMs(f.readTimeoutMs)) return { outcome: "upstream_timeout", reason: timeoutReason };
  return { outcome: "upstream_abort", reason: closedReason };
}

/** nginx answered instead of the upstream: no response header came from the last try. */
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
  // nginx ends the tunnel the same way whichever side closed (both read events lead to
  // "upgraded done"), so a close from either side is a normal end; who sent the close frame
  // is not visible to the gateway.
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
    // Kong answered on its own before proxying (a plugin error, no service, no route).
    return { outcome: "gateway_exit", reason: "gateway_error" };
  }
  if (f.status === 499) return { outcome: "client_abort", reason: "client_closed_before_response" };
  if (!f.upstreamHeaderReceived) return beforeHeaders(f);
  if (f.upgraded) return websocket(f);
  if (f.upstreamStatus !== undefined && f.upstreamStatus >= 500) return { outcome: "upstream_error", reason: "upstream_5xx" };
  // The answer reached its end on the wire: whatever happens to the connection afterwards.
  if (f.terminated) return { outcome: "completed", reason: "terminator" };
  if (!f.requestCompleted) return { outcome: "client_abort", reason: "client_closed_mid_response" };
  if (f.eof) {
    if (f.llmStream) return { outcome: "upstream_abort", reason: "no_terminator" };
    return { outcome: "completed", reason: "body_complete" };
  }
  if (bodyless(f)) return { outcome: "completed", reason: "no_body" };
  return cutByUpstream(f, "read_timeout_mid_response", "closed_mid_response");
}
