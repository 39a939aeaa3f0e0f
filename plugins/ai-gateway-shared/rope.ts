/**
 * A string built from pieces, for the bytes a reader carries from one chunk to the next.
 * Appending copies the whole string each time, and a list costs a slot per chunk; this is the
 * "Tower of Hanoi" buffer of Programming in Lua: each byte copied about log2(bytes) times.
 */
const SMALL_PIECES = 64;

export class Rope {
  bytes = 0;
  private small: (string | undefined)[] = [];
  private smallCount = 0;
  /** Joined pieces of decreasing length. */
  private stack: (string | undefined)[] = [];
  private stackCount = 0;

  push(s: string): void {
    if (s.length === 0) return;
    this.small[this.smallCount] = s;
    this.smallCount += 1;
    this.bytes += s.length;
    if (this.smallCount === SMALL_PIECES) this.pushStack(this.takeSmall());
  }

  isEmpty(): boolean {
    return this.bytes === 0;
  }

  take(): string {
    if (this.bytes === 0) return "";
    const recent = this.takeSmall();
    let all = recent;
    if (this.stackCount > 0) {
      const stack = this.stack;
      const older = this.stackCount === 1 ? (stack[0] as string) : table.concat(stack as string[], "", 1, this.stackCount);
      for (let i = 0; i < this.stackCount; i++) stack[i] = undefined;
      this.stackCount = 0;
      all = older + recent;
    }
    this.bytes = 0;
    return all;
  }

  keepLast(size: number): void {
    if (this.bytes <= size) return;
    const tail = string.sub(this.take(), -size);
    this.push(tail);
  }

  clear(): void {
    for (let i = 0; i < this.smallCount; i++) this.small[i] = undefined;
    for (let i = 0; i < this.stackCount; i++) this.stack[i] = undefined;
    this.smallCount = 0;
    this.stackCount = 0;
    this.bytes = 0;
  }

  private takeSmall(): string {
    const count = this.smallCount;
    if (count === 0) return "";
    const small = this.small;
    const joined = count === 1 ? (small[0] as string) : table.concat(small as string[], "", 1, count);
    for (let i = 0; i < count; i++) small[i] = undefined;
    this.smallCount = 0;
    return joined;
  }

  private pushStack(s: string): void {
    const stack = this.stack;
    let count = this.stackCount;
    stack[count] = s;
    count += 1;
    while (count > 1 && (stack[count - 2] as string).length <= (stack[count - 1] as string).length) {
      stack[count - 2] = (stack[count - 2] as string) + (stack[count - 1] as string);
      stack[count - 1] = undefined;
      count -= 1;
    }
    this.stackCount = count;
  }
}

/** For Lua callers. */
export function newRope(): Rope {
  return new Rope();
}
