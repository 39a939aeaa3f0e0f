// nginx's $upstream_* variables hold one value per try (Kong retries, proxy_next_upstream),
// separated by ", ", and one group per internal redirect, separated by " : " (an error page
// after a failed try). "-" stands for a value nginx never measured (no connection, no header).
// These functions read them without nginx so busted can pin the edge cases.

/** The values of an $upstream_* variable, oldest try first ("-" kept as "-"). */
export function upstreamList(value: string | undefined): string[] {
  const out: string[] = [];
  if (value === undefined || value === "") return out;
  // " : " separates redirect groups; an address such as 127.0.0.1:80 or [::1]:80 has no spaces.
  const flat = string.gsub(value, " : ", ", ")[0];
  for (const [item] of string.gmatch(flat, "[^,]+")) {
    const trimmed = string.match(item, "^%s*(.-)%s*$")[0];
    if (trimmed !== undefined && trimmed !== "") out.push(trimmed);
  }
  return out;
}

function lastOf(list: string[]): string | undefined {
  return list.length > 0 ? list[list.length - 1] : undefined;
}

function numberOf(value: string | undefined): number | undefined {
  if (value === undefined || value === "-") return undefined;
  return tonumber(value);
}

/** Seconds with millisecond precision ("0.036") to whole milliseconds. */
function msOf(value: string | undefined): number | undefined {
  const s = numberOf(value);
  return s === undefined ? undefined : math.floor(s * 1000 + 0.5);
}

function sumOf(list: string[]): number {
  let total = 0;
  for (const v of list) {
    const n = numberOf(v);
    if (n !== undefined) total += n;
  }
  return total;
}

/** The raw $upstream_* values the plugin reads in the log phase. */
export interface UpstreamVars {
  addr?: string;
  status?: string;
  connect_time?: string;
  header_time?: string;
  response_time?: string;
  bytes_received?: string;
  bytes_sent?: string;
}

/** What the upstream side of the request looked like, from the last try (and totals over all tries). */
export interface UpstreamSide {
  /** nginx tried an upstream at least once ($upstream_addr is set). */
  attempted: boolean;
  tries: number;
  /** Address of the last try. */
  addr?: string;
  /** Status of the last try: the upstream's own status, or 502/504 that nginx recorded for a failed try. */
  status?: number;
  /** The last try connected ($upstream_connect_time is a number). */
  connected: boolean;
  /** The last try received the response header ($upstream_header_time is a number). */
  headerReceived: boolean;
  connectMs?: number;
  headerMs?: number;
  responseMs?: number;
  /** Bytes read from the upstream over all tries (headers included). */
  bytesReceived: number;
  /** Bytes of the last try only (tells "closed before sending anything" from "sent a bad header"). */
  lastBytesReceived?: number;
  /** Bytes sent to the upstream over all tries (request headers and body; WebSocket frames). */
  bytesSent: number;
}

export function upstreamSide(vars: UpstreamVars): UpstreamSide {
  const addrs = upstreamList(vars.addr);
  const statuses = upstreamList(vars.status);
  const received = upstreamList(vars.bytes_received);
  const connect = lastOf(upstreamList(vars.connect_time));
  const header = lastOf(upstreamList(vars.header_time));
  return {
    attempted: addrs.length > 0,
    tries: math.max(addrs.length, statuses.length),
    addr: lastOf(addrs),
    status: numberOf(lastOf(statuses)),
    connected: numberOf(connect) !== undefined,
    headerReceived: numberOf(header) !== undefined,
    connectMs: msOf(connect),
    headerMs: msOf(header),
    responseMs: msOf(lastOf(upstreamList(vars.response_time))),
    bytesReceived: sumOf(received),
    lastBytesReceived: numberOf(lastOf(received)),
    bytesSent: sumOf(upstreamList(vars.bytes_sent)),
  };
}
