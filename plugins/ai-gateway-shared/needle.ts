/**
 * Where a text next occurs in a string, remembered between searches. A reader that walks forward through a body chunk asks, event after event, "where is the next
 * `content"` from here?". A Needle answers from its last search while that answer still holds
 * (same string, a start between the previous start and the occurrence found), so every
 * occurrence in the chunk is searched for once, however many events ask, and a chunk without
 * the text costs one failed search instead of one per event. The answer is right for any
 * string and start: a different string or an earlier start searches again, so one Needle can be
 * shared by every reader of a worker.
 */
export class Needle {
  readonly length: number;
  private s: string | undefined = undefined;
  private from = 0;
  private at = 0;

  constructor(readonly text: string) {
    this.length = text.length;
  }

  /** Position of the first occurrence at or after `from` in s, or math.huge when there is none. */
  next(s: string, from: number): number {
    if (s !== this.s || from < this.from || from > this.at) {
      const [p] = string.find(s, this.text, from, true);
      this.s = s;
      this.from = from;
      this.at = p === undefined ? math.huge : p;
    }
    return this.at;
  }
}

export function newNeedle(text: string): Needle {
  return new Needle(text);
}
