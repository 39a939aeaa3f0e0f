// Store failures: whether they refuse the request, and how often they are logged. One gate per
// worker for every kind of failure, so a store outage costs one error line per interval and worker.

export const FAILURE_LOG_INTERVAL = 30;

/** Logs at most once per interval, counting what it held back. */
export class LogGate {
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

/** For Lua callers. */
export function newLogGate(interval: number): LogGate {
  return new LogGate(interval);
}

const failures = new LogGate(FAILURE_LOG_INTERVAL);

/** In a timer kong.log carries no plugin name, so the prefix is written by hand. */
export function logStoreFailure(what: string, err: string, inTimer = false): void {
  if (!failures.open(ngx.now())) return;
  const held = failures.suppressed > 0 ? ` (${failures.suppressed} similar failures not logged in the last ${FAILURE_LOG_INTERVAL}s)` : "";
  const message = `${what}: ${err}${held}`;
  if (inTimer) ngx.log(ngx.ERR, "[token-rate-limiting] ", message);
  else kong.log.err(message);
}

export function onStoreFailure(faultTolerant: boolean): "allow" | "reject" {
  return faultTolerant ? "allow" : "reject";
}

