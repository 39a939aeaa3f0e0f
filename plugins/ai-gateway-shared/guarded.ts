/**
 * Kong calls header_filter, body_filter and log without pcall: an error there breaks the
 * response, or skips every plugin after this one for the request (http-log, file-log,
 * prometheus). Every filter and log step of these plugins runs through `guarded`: an error is
 * logged once, as "<what> failed: <error>", and `recover` lets the plugin fall back (stop
 * reading, pass the rest of the body untouched).
 */
export function guarded<C>(what: string, step: (this: void, conf: C) => void, conf: C, recover?: (this: void) => void): void {
  const [ok, err] = pcall(step, conf);
  if (ok) return;
  kong.log.err(what, " failed: ", err);
  if (recover !== undefined) recover();
}
