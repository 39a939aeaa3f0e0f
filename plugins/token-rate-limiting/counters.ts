// The counters one request touches, computed once in access and reused by settlement, so a
// request that races a window boundary settles into the window it was admitted in.

import { counterKey, type KeyScope } from "./keys";
import type { LimitSpec } from "./limits";
import { counterTtl, windowPosition, type WindowPosition, type WindowType } from "./windows";

export interface CounterWindow {
  spec: LimitSpec;
  pos: WindowPosition;
  /** Counter of the current window: reserved in, settled into. */
  key: string;
  /** Counter of the previous window, read by sliding windows only. */
  prevKey?: string;
  /** Weight of the previous window in the sliding estimate (0 for fixed windows). */
  overlap: number;
  ttl: number;
}

/** Counter values as a policy read them, before this request's reservation. */
export interface CounterValues {
  current: number;
  previous: number;
}

/** One atomic adjustment of a counter that settlement makes. */
export interface Adjustment {
  key: string;
  delta: number;
  ttl: number;
}

export function counterWindows(
  specs: LimitSpec[],
  windowType: WindowType,
  now: number,
  scope: KeyScope,
  identifier: string,
  hash: (this: void, s: string) => string,
): CounterWindow[] {
  const out: CounterWindow[] = [];
  for (const spec of specs) {
    const pos = windowPosition(now, spec.period);
    const sliding = windowType === "sliding";
    out.push({
      spec,
      pos,
      key: counterKey(scope, identifier, spec.model, spec.period, pos.start, hash),
      prevKey: sliding ? counterKey(scope, identifier, spec.model, spec.period, pos.previousStart, hash) : undefined,
      overlap: sliding ? Math.max(0, Math.min(1, (pos.length - pos.elapsed) / pos.length)) : 0,
      ttl: counterTtl(spec.period, windowType),
    });
  }
  return out;
}

/** Settlement: the same delta into every window the request was admitted in (zero deltas skipped). */
export function adjustments(windows: CounterWindow[], delta: number): Adjustment[] {
  const out: Adjustment[] = [];
  if (delta === 0) return out;
  for (const w of windows) out.push({ key: w.key, delta, ttl: w.ttl });
  return out;
}
