/**
 * Reading a few facts from JSON text without decoding it: cheaper than cjson for the many
 * stream events whose only interesting part is one string value, and usable on a window of a
 * body too large to decode.
 *
 * Why this is safe: inside a JSON string every `"` is escaped, so a key followed by `:` can
 * only be a real key (a string value is followed by `,`, `}` or `]`). A text that contains the
 * word "usage" or "content" therefore never looks like the key.
 */
import { utf8Length } from "./utf8";

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
 * Characters of the JSON string that opens at `q` (the position of its `"`), counting an
 * escape sequence as one character. Returns the count and the position of the closing quote
 * (undefined when the string does not end in s).
 */
export function jsonStringChars(s: string, q: number): LuaMultiReturn<[number, number | undefined]> {
  let chars = 0;
  let k = q + 1;
  for (;;) {
    // Two plain searches (memchr) instead of a pattern: the JIT keeps them in the trace.
    const [close] = string.find(s, '"', k, true);
    if (close === undefined) return $multi(chars + utf8Length(s, k), undefined);
    const [bs] = string.find(s, "\\", k, true);
    if (bs === undefined || bs > close) return $multi(chars + utf8Length(s, k, close - 1), close);
    chars += utf8Length(s, k, bs - 1) + 1;
    k = bs + 2;
    if (string.byte(s, bs + 1) === 117 /* u */) {
      // \uXXXX is one character, and so is a \uD8xx\uDCxx surrogate pair.
      k = bs + 6;
      const [h1, h2] = string.byte(s, bs + 2, bs + 3);
      const high = (h1 === 100 || h1 === 68) /* d D */ && ((h2 >= 56 && h2 <= 57) || (h2 >= 97 && h2 <= 98) || (h2 >= 65 && h2 <= 66)); /* 8 9 a b A B */
      if (high && string.byte(s, k) === BACKSLASH && string.byte(s, k + 1) === 117) k += 6;
    }
  }
}

/**
 * Sum of the characters of every string value whose key ends with `keySuffix` (written with
 * its closing quote, e.g. `content"` matches "content" and "reasoning_content"). Keys whose
 * value is not a string (null, arrays, objects) count nothing. Returns -1 when no such key has
 * a string value (so that a caller can tell "no text key" from "empty text").
 */
export function sumStringValues(s: string, keySuffix: string): number {
  let total = -1;
  let init = 1;
  for (;;) {
    const [p, pe] = string.find(s, keySuffix, init, true);
    if (p === undefined) return total;
    const v = valueAfterKey(s, pe);
    if (v === undefined || string.byte(s, v) !== QUOTE) {
      init = pe + 1;
      continue;
    }
    const [chars, close] = jsonStringChars(s, v);
    total = (total < 0 ? 0 : total) + chars;
    if (close === undefined) return total;
    init = close + 1;
  }
}

/** True when the key ending at `pe` (its closing quote) has the value null. */
export function valueIsNull(s: string, pe: number): boolean {
  const v = valueAfterKey(s, pe);
  return v !== undefined && string.byte(s, v) === 110 /* n */;
}

/**
 * True when s has a key ending with `keySuffix` whose value is not null (e.g. a
 * `"finish_reason":"stop"` among `"finish_reason":null` chunks).
 */
export function hasNonNullKey(s: string, keySuffix: string): boolean {
  let init = 1;
  for (;;) {
    const [p, pe] = string.find(s, keySuffix, init, true);
    if (p === undefined) return false;
    const v = valueAfterKey(s, pe);
    if (v !== undefined && string.byte(s, v) !== 110 /* n */) return true;
    init = pe + 1;
  }
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
      const [, close] = jsonStringChars(s, e);
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
