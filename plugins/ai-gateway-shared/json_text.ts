/**
 * Reading a few facts from JSON text without decoding it: cheaper than cjson for the many
 * stream events whose only interesting part is one string value, and usable on a window of a
 * body too large to decode.
 *
 * Why this is safe: inside a JSON string every `"` is escaped, so a key followed by `:` can
 * only be a real key (a string value is followed by `,`, `}` or `]`). A text that contains the
 * word "usage" or "content" therefore never looks like the key.
 *
 * The readers work on a range s[a..b] of a larger string (an event inside a body chunk), so
 * nothing is copied, and find their keys through a Needle, which remembers where its text next
 * occurs (needle.ts): every occurrence in a chunk is searched for once, however many events ask.
 */
import { Needle } from "./needle";

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

/** Position of the first byte at or after i that is not JSON whitespace. */
export function skipSpace(s: string, i: number): number {
  let c = string.byte(s, i);
  while (c === 32 || c === 10 || c === 13 || c === 9) {
    i += 1;
    c = string.byte(s, i);
  }
  return i;
}

/**
 * For a key whose closing quote is at `pe`, the position of its value's first byte, or
 * undefined when no colon follows (then it was not a key).
 */
export function valueAfterKey(s: string, pe: number): number | undefined {
  const i = skipSpace(s, pe + 1);
  if (string.byte(s, i) !== COLON) return undefined;
  return skipSpace(s, i + 1);
}

/**
 * Position of the closing quote of the JSON string that opens at `q` (the position of its `"`),
 * or undefined when it does not end in s. `backslashes` finds the escapes (a Needle of "\\"
 * shared by a forward scan); without it each string searches for its own.
 */
export function jsonStringEnd(s: string, q: number, backslashes?: Needle): number | undefined {
  const k = q + 1;
  // Plain searches (memchr) instead of a pattern: the JIT keeps them in the trace.
  const [close] = string.find(s, '"', k, true);
  if (close === undefined) return undefined;
  let bs: number;
  if (backslashes !== undefined) bs = backslashes.next(s, k);
  else {
    const [found] = string.find(s, "\\", k, true);
    bs = found === undefined ? math.huge : found;
  }
  // The common string has no escape: no loop.
  if (bs > close) return close;
  return escapedStringEnd(s, k);
}

/** jsonStringEnd from k on, stepping over escapes (an escaped quote does not end the string). */
function escapedStringEnd(s: string, k: number): number | undefined {
  for (;;) {
    const [close] = string.find(s, '"', k, true);
    if (close === undefined) return undefined;
    const [bs] = string.find(s, "\\", k, true);
    if (bs === undefined || bs > close) return close;
    k = bs + 2;
  }
}

/** Where the string values sumStringBytesIn counted lie: the first's quotes, and how many. */
export interface StringSpans {
  count: number;
  /** Position of the first value's opening quote. */
  open: number;
  /** Position of the first value's closing quote. */
  close: number;
}

/**
 * Bytes (as written, escapes included) of every string value in s[a..b] whose key ends with the
 * needle's text (written with its closing quote, e.g. `content"` matches "content" and
 * "reasoning_content"). Keys whose value is not a string (null, arrays, objects) count nothing.
 * Returns -1 when no such key has a string value (so that a caller can tell "no text key" from
 * "empty text"). A string cut by the end of s counts up to there. `spans`, when given, is
 * filled in with where the values lie.
 */
export function sumStringBytesIn(s: string, a: number, b: number, key: Needle, backslashes?: Needle, spans?: StringSpans): number {
  if (spans !== undefined) spans.count = 0;
  // The first key is read before any loop: an event has one text key, and a loop entered per
  // event would cut the caller's JIT trace.
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

/** sumStringBytesIn from `from` on, adding to `total` (-1: nothing yet). */
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

/** sumStringBytesIn over the whole of s. */
export function sumStringBytes(s: string, keySuffix: string): number {
  return sumStringBytesIn(s, 1, s.length, new Needle(keySuffix));
}

/** True when the key ending at `pe` (its closing quote) has the value null. */
export function valueIsNull(s: string, pe: number): boolean {
  const v = valueAfterKey(s, pe);
  return v !== undefined && string.byte(s, v) === 110 /* n */;
}

/**
 * True when s[a..b] has a key ending with the needle's text whose value is not null (e.g. a
 * `"finish_reason":"stop"` among `"finish_reason":null` chunks).
 */
export function hasNonNullKeyIn(s: string, a: number, b: number, key: Needle): boolean {
  // The first occurrence is read before any loop: an event has the key once (or not at all), and
  // a loop entered per event would cut the caller's JIT trace.
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

/** hasNonNullKeyIn over the whole of s. */
export function hasNonNullKey(s: string, keySuffix: string): boolean {
  return hasNonNullKeyIn(s, 1, s.length, new Needle(keySuffix));
}

/** True when s[a..b] has the key `"name"` (the needle's text: `name"`) with the value true. */
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

/** The needle found at p is a whole key (a quote before it) whose value is true. */
function isTrueKey(s: string, p: number, length: number): boolean {
  if (string.byte(s, p - 1) !== QUOTE) return false;
  const v = valueAfterKey(s, p + length - 1);
  return v !== undefined && string.byte(s, v) === 116 /* t */;
}

/**
 * The non-negative integer at position v of s, or undefined when the value there is anything
 * else (null, a string, a fraction, an exponent, a sign).
 */
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
  // A number ends at a delimiter; `1.5` or `1e3` is not a count read here.
  if (c === 46 /* . */ || c === 101 /* e */ || c === 69 /* E */) return undefined;
  return n;
}

/**
 * True when the key that ends right before position p is `word`, judged by its length (a quote
 * before it), its first and its last letter: no loop, so a per-event caller keeps its JIT trace.
 * Enough to tell the few keys a caller expects from each other and from the others of the same
 * objects (`cached_tokens`, `reasoning_tokens`, `audio_tokens`, `image_tokens`, ...).
 */
export function keyIs(s: string, p: number, word: string): boolean {
  const n = word.length;
  return string.byte(s, p - n - 1) === QUOTE && string.byte(s, p - n) === string.byte(word, 1) && string.byte(s, p - 1) === string.byte(word, n);
}

/**
 * The text of the JSON object or array that opens at `o` (its `{` or `[`), found by counting
 * brackets outside strings; undefined when it does not close in s.
 */
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

/** What `read` finds after the last `"key"` of s it finds something after (keyAt/keyEnd: the key's quotes), or undefined. */
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

/**
 * The text of the last `"key": {...}` object in s (e.g. the `usage` of a body seen only through
 * its last bytes), or undefined.
 */
export function lastObjectOfKey(s: string, key: string): string | undefined {
  return lastOfKey(s, key, objectValue);
}

/** The last number value of `"key": N` in s, or undefined. */
export function lastNumberOfKey(s: string, key: string): number | undefined {
  return lastOfKey(s, key, numberValue);
}

/** The last string value of `"key": "..."` in s when it has no escapes (finish reasons), or undefined. */
export function lastStringOfKey(s: string, key: string): string | undefined {
  return lastOfKey(s, key, plainStringValue);
}
