/**
 * UTF-8 character counting without decoding: a character is every byte that is not a
 * continuation byte (0x80-0xBF). Invalid sequences therefore count one character per lead or
 * stray byte, which is what a length limit wants (never fewer characters than bytes / 4).
 */

/** Lua pattern matching any byte >= 0x80 (built from bytes: a TS "\x80" would be U+0080). */
const HIGH_BYTE = "[" + string.char(0x80) + "-" + string.char(0xff) + "]";

/**
 * Continuation bytes (0x80-0xBF) among the first `n` (at most 8) bytes from s[i], counted with
 * arithmetic only: no loop and no branch that depends on the bytes, so that a reader's per-event
 * path stays one straight JIT trace. Positions past the end of s read its last byte (never nil)
 * and count nothing, like every position past n.
 */
function continuations(s: string, i: number, n: number): number {
  const last = s.length;
  return continuation(string.byte(s, math.min(i, last)), 1, n)
    + continuation(string.byte(s, math.min(i + 1, last)), 2, n)
    + continuation(string.byte(s, math.min(i + 2, last)), 3, n)
    + continuation(string.byte(s, math.min(i + 3, last)), 4, n)
    + continuation(string.byte(s, math.min(i + 4, last)), 5, n)
    + continuation(string.byte(s, math.min(i + 5, last)), 6, n)
    + continuation(string.byte(s, math.min(i + 6, last)), 7, n)
    + continuation(string.byte(s, math.min(i + 7, last)), 8, n);
}

/** 1 when byte b, the k-th of n, is a continuation byte; 0 when it is not or k > n. */
function continuation(b: number, k: number, n: number): number {
  const inRange = math.min(math.max(n - k + 1, 0), 1);
  return inRange * (1 - math.min(math.abs(math.floor(b / 64) - 2), 1));
}

/** Number of UTF-8 characters in s[i..j] (1-based, inclusive; defaults: the whole string). */
export function utf8Length(s: string, i?: number, j?: number): number {
  const first = i === undefined ? 1 : i;
  const last = j === undefined ? s.length : j;
  const n = last - first + 1;
  if (n <= 0) return 0;
  // A streamed token (most are under 16 bytes).
  if (n <= 8) return n - continuations(s, first, n);
  if (n <= 16) return n - continuations(s, first, 8) - continuations(s, first + 8, n - 8);
  if (n < 48) return countChars(s, first, last);
  // Long ASCII text (the common case) needs no per-byte work.
  const [high] = string.find(s, HIGH_BYTE, first);
  if (high === undefined || high > last) return n;
  return high - first + countChars(s, high, last);
}

/** Characters in s[first..last], byte by byte: every byte that is not a continuation byte. */
function countChars(s: string, first: number, last: number): number {
  let count = 0;
  for (let k = first; k <= last; k++) {
    const b = string.byte(s, k);
    if (b < 0x80 || b >= 0xc0) count += 1;
  }
  return count;
}

/**
 * The longest prefix of s with at most maxChars characters, cut on a character boundary.
 * Returns s itself when it is short enough.
 */
export function utf8Prefix(s: string, maxChars: number): string {
  if (maxChars <= 0) return "";
  if (s.length <= maxChars) return s;
  let chars = 0;
  for (let k = 1; k <= s.length; k++) {
    const b = string.byte(s, k);
    if (b < 0x80 || b >= 0xc0) {
      if (chars === maxChars) return string.sub(s, 1, k - 1);
      chars += 1;
    }
  }
  return s;
}

/** True when s is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
export function utf8Valid(s: string): boolean {
  const [high] = string.find(s, HIGH_BYTE);
  if (high === undefined) return true;
  const n = s.length;
  let k = high;
  while (k <= n) {
    const b = string.byte(s, k);
    if (b < 0x80) {
      k += 1;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return false;
    }
    if (k + need > n) return false;
    let cp = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
    for (let m = 1; m <= need; m++) {
      const c = string.byte(s, k + m);
      if (c < 0x80 || c > 0xbf) return false;
      cp = cp * 64 + (c - 0x80);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    k += need + 1;
  }
  return true;
}
