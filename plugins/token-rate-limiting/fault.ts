// What to do when the counter store fails, and how often to say so.

export type FailureAction = "allow" | "reject";

/** fault_tolerant: let the request through uncounted; otherwise refuse it with 503. */
export function onStoreFailure(faultTolerant: boolean): FailureAction {
  return faultTolerant ? "allow" : "reject";
}

/** A per-worker "log at most once per interval" gate; it counts what it held back. */
export interface LogGate {
  /** True when a message may be logged at `now`; then `suppressed` says how many were held back. */
  open(now: number): boolean;
  readonly suppressed: number;
}

class IntervalGate implements LogGate {
  suppressed = 0;
  private next = -1;
  private held = 0;

  constructor(private readonly interval: number) {}

  open(now: number): boolean {
    if (now >= this.next) {
      this.next = now + this.interval;
      this.suppressed = this.held;
      this.held = 0;
      return true;
    }
    this.held += 1;
    return false;
  }
}

export function newLogGate(interval: number): LogGate {
  return new IntervalGate(interval);
}
