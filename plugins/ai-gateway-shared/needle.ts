/**
 * Where a text next occurs in a string, remembered between searches: a reader walking forward
 * through a chunk finds each occurrence once, however many events ask. Right for any string and
 * start, so one Needle can be shared by every reader of a worker. The search starts from the text's first word character: one that starts on `"` or `,` would stop
 * at every key of a JSON event.
 */
export class Needle {
  readonly length: number;
  private readonly anchor: string;
  private readonly prefix: string;
  private readonly skip: number;
  private s: string | undefined = undefined;
  private from = 0;
  private at = 0;

  constructor(readonly text: string) {
    this.length = text.length;
    const [at] = string.find(text, "[%w_]");
    this.skip = at === undefined ? 0 : at - 1;
    this.prefix = string.sub(text, 1, this.skip);
    this.anchor = string.sub(text, this.skip + 1);
  }

  /** math.huge when there is none. */
  next(s: string, from: number): number {
    if (s !== this.s || from < this.from || from > this.at) {
      // The first try outside any loop: a loop here would abort every caller's trace.
      const skip = this.skip;
      const [p] = string.find(s, this.anchor, from + skip, true);
      this.s = s;
      this.from = from;
      this.at = p === undefined ? math.huge : skip === 0 || string.sub(s, p - skip, p - 1) === this.prefix ? p - skip : this.after(s, p + 1);
    }
    return this.at;
  }

  /** Past an anchor whose prefix did not match. */
  private after(s: string, from: number): number {
    const skip = this.skip;
    for (;;) {
      const [p] = string.find(s, this.anchor, from, true);
      if (p === undefined) return math.huge;
      if (string.sub(s, p - skip, p - 1) === this.prefix) return p - skip;
      from = p + 1;
    }
  }
}

export function newNeedle(text: string): Needle {
  return new Needle(text);
}
