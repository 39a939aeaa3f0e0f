/**
 * UTF-8 character counting without decoding: every byte that is not a continuation byte counts,
 * so invalid input never counts fewer characters than bytes / 4, as a length limit wants.
 */

/** Built from bytes: a TS "\x80" would be U+0080. */
const HIGH_BYTE = "[" + string.char(0x80) + "-" + string.char(0xff) + "]";

export function utf8Length(s: string, i?: number, j?: number): number {
  const first = i === undefined ? 1 : i;
  const last = j === undefined ? s.length : j;
  if (last < first) return 0;
  if (last - first < 48) {
    // A pattern search would leave the JIT trace.
    let count = 0;
    for (let k = first; k <= last; k++) {
      const b = string.byte(s, k);
      if (b < 0x80 || b >= 0xc0) count += 1;
    }
    return count;
  }
  const [high] = string.find(s, HIGH_BYTE, first);
  if (high === undefined || high > last) return last - first + 1;
  let count = high - first;
  for (let k = high; k <= last; k++) {
    const b = string.byte(s, k);
    if (b < 0x80 || b >= 0xc0) count += 1;
  }
  return count;
}

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

/** No overlongs, surrogates or code points above U+10FFFF. */
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
