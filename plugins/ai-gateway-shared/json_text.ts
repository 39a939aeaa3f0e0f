/**
 * Reading a few facts from JSON text without decoding it: cheaper than cjson per stream event,
 * and usable on the tail of a body too large to decode. Safe because inside a JSON string every
 * `"` is escaped: a quoted key followed by `:` can only be a real key, never text that mentions it.
 */
import { Needle } from "./needle";

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

export function skipSpace(s: string, i: number): number {
  let c = string.byte(s, i);
  while (c === 32 || c === 10 || c === 13 || c === 9) {
    i += 1;
    c = string.byte(s, i);
  }
  return i;
}

/** Undefined when no colon follows the quote at `pe`: then it was not a key. */
export function valueAfterKey(s: string, pe: number): number | undefined {
  const i = skipSpace(s, pe + 1);
  if (string.byte(s, i) !== COLON) return undefined;
  return skipSpace(s, i + 1);
}

/** `backslashes`: a Needle of "\\" shared by a forward scan. */
export function jsonStringEnd(s: string, q: number, backslashes?: Needle): number | undefined {
  const k = q + 1;
  // Plain searches, not patterns: the JIT keeps them in the trace.
  const [close] = string.find(s, '"', k, true);
  if (close === undefined) return undefined;
  let bs: number;
  if (backslashes !== undefined) bs = backslashes.next(s, k);
  else {
    const [found] = string.find(s, "\\", k, true);
    bs = found === undefined ? math.huge : found;
  }
  if (bs > close) return close;
  return escapedStringEnd(s, k);
}

function escapedStringEnd(s: string, k: number): number | undefined {
  for (;;) {
    const [close] = string.find(s, '"', k, true);
    if (close === undefined) return undefined;
    const [bs] = string.find(s, "\\", k, true);
    if (bs === undefined || bs > close) return close;
    k = bs + 2;
  }
}

/** How many values sumStringBytesIn counted, and the first one's quotes. */
export interface StringSpans {
  count: number;
  open: number;
  close: number;
}

/**
 * Bytes as written of every string value in s[a..b] whose key ends with the needle's text
 * (`content"` also matches "reasoning_content"); -1 when there is none, to tell "no text key"
 * from "empty text".
 */
export function sumStringBytesIn(s: string, a: number, b: number, key: Needle, backslashes?: Needle, spans?: StringSpans): number {
  if (spans !== undefined) spans.count = 0;
  // The first key is read before any loop: a loop entered per event would cut the caller's JIT trace.
  const p = key.next(s, a);
  if (p > b) return -1;
  const pe = p + key.length - 1;
  const v = valueAfterKey(s, pe);
  if (v === undefined || string.byte(s, v) !== QUOTE) return moreStringBytes(s, pe + 1, b, key, backslashes, spans, -1);
  const close = jsonStringEnd(s, v, backslashes);
  if (spans !== undefined) {
    spans.count = 1;
    spans.open = v;
    spans.close = close ?? b + 1;
  }
  if (close === undefined) return b - v;
  if (key.next(s, close + 1) > b) return close - v - 1;
  return moreStringBytes(s, close + 1, b, key, backslashes, spans, close - v - 1);
}

function moreStringBytes(s: string, from: number, b: number, key: Needle, backslashes: Needle | undefined, spans: StringSpans | undefined, total: number): number {
  for (;;) {
    const p = key.next(s, from);
    if (p > b) return total;
    const pe = p + key.length - 1;
    const v = valueAfterKey(s, pe);
    if (v === undefined || string.byte(s, v) !== QUOTE) {
      from = pe + 1;
      continue;
    }
    const close = jsonStringEnd(s, v, backslashes);
    total = (total < 0 ? 0 : total) + (close === undefined ? b - v : close - v - 1);
    if (spans !== undefined) {
      spans.count += 1;
      if (spans.count === 1) {
        spans.open = v;
        spans.close = close ?? b + 1;
      }
    }
    if (close === undefined) return total;
    from = close + 1;
  }
}

export function sumStringBytes(s: string, keySuffix: string): number {
  return sumStringBytesIn(s, 1, s.length, new Needle(keySuffix));
}

export function valueIsNull(s: string, pe: number): boolean {
  const v = valueAfterKey(s, pe);
  return v !== undefined && string.byte(s, v) === 110 /* n */;
}

/** E.g. `"finish_reason":"stop"` among `"finish_reason":null` chunks. */
export function hasNonNullKeyIn(s: string, a: number, b: number, key: Needle): boolean {
  // The first occurrence is read before any loop: a loop entered per event would cut the caller's JIT trace.
  const p = key.next(s, a);
  if (p > b) return false;
  const pe = p + key.length - 1;
  const v = valueAfterKey(s, pe);
  if (v !== undefined && string.byte(s, v) !== 110 /* n */) return true;
  if (key.next(s, pe + 1) > b) return false;
  let from = pe + 1;
  for (;;) {
    const q = key.next(s, from);
    if (q > b) return false;
    const qe = q + key.length - 1;
    const w = valueAfterKey(s, qe);
    if (w !== undefined && string.byte(s, w) !== 110 /* n */) return true;
    from = qe + 1;
  }
}

export function hasNonNullKey(s: string, keySuffix: string): boolean {
  return hasNonNullKeyIn(s, 1, s.length, new Needle(keySuffix));
}

export function hasTrueKeyIn(s: string, a: number, b: number, key: Needle): boolean {
  const p = key.next(s, a);
  if (p > b) return false;
  if (isTrueKey(s, p, key.length)) return true;
  let from = p + key.length;
  if (key.next(s, from) > b) return false;
  for (;;) {
    const q = key.next(s, from);
    if (q > b) return false;
    if (isTrueKey(s, q, key.length)) return true;
    from = q + key.length;
  }
}

function isTrueKey(s: string, p: number, length: number): boolean {
  if (string.byte(s, p - 1) !== QUOTE) return false;
  const v = valueAfterKey(s, p + length - 1);
  return v !== undefined && string.byte(s, v) === 116 /* t */;
}

/** Undefined for anything but a non-negative integer. */
export function integerAt(s: string, v: number): number | undefined {
  let c = string.byte(s, v);
  if (c === undefined || c < 48 || c > 57) return undefined;
  let n = 0;
  let k = v;
  while (c !== undefined && c >= 48 && c <= 57) {
    n = n * 10 + (c - 48);
    k += 1;
    c = string.byte(s, k);
  }
  if (c === 46 /* . */ || c === 101 /* e */ || c === 69 /* E */) return undefined;
  return n;
}

/**
 * Judged by length, first and last letter only: no loop, so a per-event caller keeps its JIT
 * trace. Enough to tell apart the keys of one usage object.
 */
export function keyIs(s: string, p: number, word: string): boolean {
  const n = word.length;
  return string.byte(s, p - n - 1) === QUOTE && string.byte(s, p - n) === string.byte(word, 1) && string.byte(s, p - 1) === string.byte(word, n);
}

/** Undefined when the object or array opening at `o` does not close in s. */
export function balancedAt(s: string, o: number): string | undefined {
  let depth = 0;
  let k = o;
  for (;;) {
    const [e] = string.find(s, '[][{}"]', k);
    if (e === undefined) return undefined;
    const c = string.byte(s, e);
    if (c === 34) {
      const close = jsonStringEnd(s, e);
      if (close === undefined) return undefined;
      k = close + 1;
      continue;
    }
    if (c === 123 || c === 91) depth += 1;
    else {
      depth -= 1;
      if (depth === 0) return string.sub(s, o, e);
    }
    k = e + 1;
  }
}

type ValueReader<T> = (this: void, s: string, keyAt: number, keyEnd: number) => T | undefined;

function lastOfKey<T>(s: string, key: string, read: ValueReader<T>): T | undefined {
  const needle = '"' + key + '"';
  let init = 1;
  let found: T | undefined;
  for (;;) {
    const [p, pe] = string.find(s, needle, init, true);
    if (p === undefined) return found;
    const value = read(s, p, pe);
    if (value !== undefined) found = value;
    init = pe + 1;
  }
}

function objectValue(this: void, s: string, keyAt: number, keyEnd: number): string | undefined {
  const [, brace] = string.find(s, "^%s*:%s*{", keyEnd + 1);
  if (brace === undefined || string.byte(s, keyAt - 1) === BACKSLASH) return undefined;
  return balancedAt(s, brace);
}

function numberValue(this: void, s: string, _keyAt: number, keyEnd: number): number | undefined {
  const [digits] = string.match(s, "^%s*:%s*(%d+)", keyEnd + 1);
  return digits === undefined ? undefined : tonumber(digits);
}

function plainStringValue(this: void, s: string, _keyAt: number, keyEnd: number): string | undefined {
  return string.match(s, '^%s*:%s*"([^"\\]*)"', keyEnd + 1)[0];
}

export function lastObjectOfKey(s: string, key: string): string | undefined {
  return lastOfKey(s, key, objectValue);
}

export function lastNumberOfKey(s: string, key: string): number | undefined {
  return lastOfKey(s, key, numberValue);
}

/** Only values without escapes (finish reasons). */
export function lastStringOfKey(s: string, key: string): string | undefined {
  return lastOfKey(s, key, plainStringValue);
}
