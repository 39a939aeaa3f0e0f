// Counters in the `kong_rate_limiting_counters` dict every Kong declares. incr is atomic across
// workers, so checking the value before each increment serialises concurrent requests exactly.

import { admit, countsOf } from "../admission";
import type { Adjustment, CounterValues, CounterWindow, WindowType } from "../windows";

export const DICT_NAME = "kong_rate_limiting_counters";

function dict(): NgxSharedDict | undefined {
  return ngx.shared[DICT_NAME];
}

function read(shm: NgxSharedDict, key: string): number {
  const [value] = shm.get(key);
  return typeof value === "number" ? value : 0;
}

function readAll(shm: NgxSharedDict, windows: CounterWindow[]): CounterValues[] {
  const values: CounterValues[] = [];
  for (const w of windows) values.push({ current: read(shm, w.key), previous: w.prevKey !== undefined ? read(shm, w.prevKey) : 0 });
  return values;
}

function admits(windows: CounterWindow[], windowType: WindowType, values: CounterValues[], reserve: number): boolean {
  return admit(windowType, countsOf(windows, values), reserve).admitted;
}

/** Of two requests racing for the last tokens only one gets them; the loser's reservation is taken back. */
export function acquire(
  windows: CounterWindow[],
  windowType: WindowType,
  reserve: number,
): LuaMultiReturn<[CounterValues[], boolean, undefined] | [undefined, undefined, string]> {
  const shm = dict();
  if (shm === undefined) return $multi(undefined, undefined, `lua_shared_dict ${DICT_NAME} is not declared`);
  const seen = readAll(shm, windows);
  const admittedBefore = admits(windows, windowType, seen, 0);
  if (reserve <= 0 || !admittedBefore) return $multi(seen, admittedBefore, undefined);

  const values: CounterValues[] = [];
  const reserved: string[] = [];
  let failure: string | undefined;
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    const [after, err] = shm.incr(w.key, reserve, 0, w.ttl);
    if (after === undefined) {
      failure = `could not reserve in ${DICT_NAME}: ${err}`;
      break;
    }
    reserved.push(w.key);
    values.push({ current: after - reserve, previous: seen[i].previous });
  }
  const admitted = failure === undefined && admits(windows, windowType, values, reserve);
  if (!admitted) {
    for (const key of reserved) shm.incr(key, -reserve);
  }
  if (failure !== undefined) return $multi(undefined, undefined, failure);
  return $multi(values, admitted, undefined);
}

/** A negative delta skips a counter that already expired, which must not turn negative. */
export function settle(adjs: Adjustment[]): string | undefined {
  const shm = dict();
  if (shm === undefined) return `lua_shared_dict ${DICT_NAME} is not declared`;
  let failure: string | undefined;
  for (const a of adjs) {
    if (a.delta > 0) {
      const [, err] = shm.incr(a.key, a.delta, 0, a.ttl);
      if (err !== undefined) failure = err;
    } else if (a.delta < 0) {
      shm.incr(a.key, a.delta);
    }
  }
  return failure;
}

export function currentValue(key: string): number {
  const shm = dict();
  return shm === undefined ? 0 : read(shm, key);
}
