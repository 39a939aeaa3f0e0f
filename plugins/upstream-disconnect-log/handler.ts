// upstream-disconnect-log: one structured record for every proxied response that did not end
// normally (client gone, upstream gone, read timeout, upstream error, a plugin's early answer),
// and optionally for the ones that did.
//
// PRIORITY 15: low, among Kong's log plugins, for two reasons.
// - body_filter runs in PRIORITY order, highest first, so at 15 it sees the bytes after every
//   plugin that rewrites the body (token-rate-limiting 905 removes its injected usage chunk,
//   response-transformer 800, the ai-* plugins 768-777): what it counts is what the client gets.
// - log runs in the same order, and Kong's log plugins build their message with
//   kong.log.serialize() in their own log phase: the record must be set before theirs, so the
//   plugin sits above http-log (12), statsd (11), datadog (10), file-log (9), udp-log (8),
//   tcp-log (7), loggly (6) and syslog (4), and above opentelemetry (14) and prometheus (13).
//   At 8 (udp-log's) file-log and http-log would serialize before the record exists.
// No access phase: when a plugin before it exits early, access never runs for it, while
// header_filter, body_filter and log still do (Kong runs them for every collected plugin).

import * as observe from "./observe";

type Config = ConfigOf<typeof import("./schema")>;

const handler: KongPluginHandler<Config> = {
  PRIORITY: 15,
  VERSION: "0.1.0",

  header_filter(conf) {
    observe.headerFilter(conf);
  },

  body_filter() {
    observe.bodyFilter();
  },

  log(conf) {
    observe.log(conf);
  },
};

export = handler;
