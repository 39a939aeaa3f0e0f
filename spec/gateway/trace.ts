// Reading the probe plugins' traces (spec/fixtures/gateway/lua/probe_common.lua).
import type { Gateway } from "../helpers/gateway.ts";

/** The trace recorded up to header_filter, from the X-Probe-Trace response header. */
export function headerTrace(res: Response): string[] {
  const value = res.headers.get("x-probe-trace");
  return value ? value.split(",") : [];
}

/**
 * The full trace of one request (all phases, log included), from the error log. The log phase
 * runs after the response is sent, so this polls until the line containing `lastEntry` appears.
 */
export async function logTrace(gw: Gateway, requestId: string, lastEntry: string, timeoutMs = 3000): Promise<{ trace: string[]; source: string }> {
  const deadline = Date.now() + timeoutMs;
  const re = new RegExp(`probe-trace ${requestId} (\\S+) source=(\\w+)`, "g");
  for (;;) {
    let best: { trace: string[]; source: string } | null = null;
    for (const m of gw.errorLog().matchAll(re)) {
      const trace = m[1].split(",");
      if (!best || trace.length > best.trace.length) best = { trace, source: m[2] };
    }
    if (best && best.trace.some((e) => e.startsWith(`${lastEntry}:`))) return best;
    if (Date.now() > deadline) {
      throw new Error(`no probe trace with ${lastEntry} for request ${requestId}; got ${JSON.stringify(best)}\n${gw.errorLog().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Entries of one phase, in order, without the phase name: "probe-a:default". */
export function phaseEntries(trace: string[], phase: string): string[] {
  return trace
    .filter((e) => e.split(":")[1] === phase)
    .map((e) => {
      const [name, , tag] = e.split(":");
      return `${name}:${tag}`;
    });
}
