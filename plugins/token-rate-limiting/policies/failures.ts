// Store failures: whether they refuse the request, and how often they are logged. One gate per
// worker for every kind of failure (reading, reserving, settling), so a store outage costs one
// error line per interval and worker.

/** Store failures are logged at most once per this many seconds per worker. */
export const FAILURE_LOG_INTERVAL = 30;

/** A "log at most once per interval" gate; it counts what it held back. */
export class LogGate {
  /** Messages held back before the one just let through. */
  suppressed = 0;
  private next = -1;
  private held = 0;

  constructor(private readonly interval: number) {}

  /** True when a message may be logged at `now`; then `suppressed` says how many were held back. */
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

/** A new gate (for Lua callers: `failures.newLogGate(30)`). */
export function newLogGate(interval: number): LogGate {
  return new LogGate(interval);
}

const failures = new LogGate(FAILURE_LOG_INTERVAL);

/**
 * Logs a store failure through the worker's gate. From a timer (settlement) kong.log carries no
 * plugin name, so the line is written with the plugin's prefix by hand, as Kong's namespaced
 * logger would.
 */
export function logStoreFailure(what: string, err: string, inTimer = false): void {
  if (!failures.open(ngx.now())) return;
  const held = failures.suppressed > 0 ? ` (${failures.suppressed} similar failures not logged in the last ${FAILURE_LOG_INTERVAL}s)` : "";
  const message = `${what}: ${err}${held}`;
  if (inTimer) ngx.log(ngx.ERR, "[token-rate-limiting] ", message);
  else kong.log.err(message);
}

/** What to do when the counter store fails: let the request through uncounted, or refuse it. */
export function onStoreFailure(faultTolerant: boolean): "allow" | "reject" {
  return faultTolerant ? "allow" : "reject";
}

