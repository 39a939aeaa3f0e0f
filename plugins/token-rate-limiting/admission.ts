// The access decision from counter values: is any window exhausted, what remains in each, and
// when the client may retry. Both policies feed it the counts they read (Redis runs the same
// rule inside its script to reserve atomically).

import type { LimitSpec } from "./limits";
import {
  isExhausted,
  remainingTokens,
  secondsToWindowEnd,
  secondsUntilAdmitted,
  usedEstimate,
  type WindowPosition,
  type WindowType,
} from "./windows";

export interface WindowCount {
  spec: LimitSpec;
  pos: WindowPosition;
  /** Current window's counter before this request. */
  current: number;
  /** Previous window's counter (sliding only; 0 otherwise). */
  previous: number;
}

export interface WindowStatus {
  spec: LimitSpec;
  /** Used estimate before this request. */
  used: number;
  /** Whole tokens left after this request's reservation (0 when exhausted). */
  remaining: number;
  exhausted: boolean;
  /** Seconds until the window resets (exhausted: until it admits again). */
  reset: number;
}

export interface Admission {
  admitted: boolean;
  windows: WindowStatus[];
  /** Seconds until every exhausted window admits again; 0 when admitted. */
  retryAfter: number;
}

export function admit(windowType: WindowType, counts: WindowCount[], reserved: number): Admission {
  const windows: WindowStatus[] = [];
  let admitted = true;
  let retryAfter = 0;
  for (const count of counts) {
    const used = usedEstimate(windowType, count.pos, count.current, count.previous);
    const exhausted = isExhausted(count.spec.limit, used);
    let reset: number;
    if (exhausted) {
      admitted = false;
      reset = secondsUntilAdmitted(windowType, count.spec.limit, count.pos, count.current, count.previous);
      retryAfter = Math.max(retryAfter, reset);
    } else {
      reset = secondsToWindowEnd(count.pos);
    }
    windows.push({ spec: count.spec, used, remaining: 0, exhausted, reset });
  }
  for (const w of windows) {
    w.remaining = w.exhausted ? 0 : remainingTokens(w.spec.limit, w.used + (admitted ? reserved : 0));
  }
  return { admitted, windows, retryAfter };
}
