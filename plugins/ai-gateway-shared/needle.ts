/**
 * Where a text next occurs in a string, remembered between searches: a reader walking forward
 * through a chunk finds each occurrence once, however many events ask. Right for any string and
 * start, so one Needle can be shared by every reader of a worker.
 */
export class Needle {
  readonly length: number;
  private s: string | undefined = undefined;
  private from = 0;
  private at = 0;

  constructor(readonly text: string) {
    this.length = text.length;
  }

  /** math.huge when there is none. */
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
