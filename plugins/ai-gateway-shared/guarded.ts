/**
 * Kong calls header_filter, body_filter and log without pcall: an error there breaks the response
 * or skips every later plugin (http-log, prometheus). `recover` lets the plugin fall back.
 */
export function guarded<C>(what: string, step: (this: void, conf: C) => void, conf: C, recover?: (this: void) => void): void {
  const [ok, err] = pcall(step, conf);
  if (ok) return;
  kong.log.err(what, " failed: ", err);
  if (recover !== undefined) recover();
}
