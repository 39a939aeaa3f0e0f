// nginx's $upstream_* variables hold one value per try separated by ", ", and one group per
// internal redirect separated by " : ". "-" is a value nginx never measured.

/** Oldest try first. */
export function upstreamList(value: string | undefined): string[] {
  const out: string[] = [];
  if (value === undefined || value === "") return out;
  // An address such as [::1]:80 has no spaces.
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

export interface UpstreamVars {
  addr?: string;
  status?: string;
  connect_time?: string;
  header_time?: string;
  response_time?: string;
  bytes_received?: string;
  bytes_sent?: string;
}

/** From the last try; byte counts are totals over all tries. */
export interface UpstreamSide {
  attempted: boolean;
  tries: number;
  addr?: string;
  /** nginx records 502/504 for a failed try. */
  status?: number;
  connected: boolean;
  headerReceived: boolean;
  connectMs?: number;
  headerMs?: number;
  responseMs?: number;
  bytesReceived: number;
  /** Tells "closed before sending anything" from "sent a bad header". */
  lastBytesReceived?: number;
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
