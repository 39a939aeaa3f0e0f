// token-rate-limiting: limits LLM traffic by tokens, counted from what the upstream reports
// (streams included), with an estimate when no usage arrives.
//
// PRIORITY 905: after authentication (key-auth 1250) so the consumer is known, after
// request-size-limiting (951) so oversized bodies are refused before this plugin reads them,
// and right after Kong's rate-limiting (910), so request limits refuse before token budgets
// are reserved; before ai-prompt-guard (771) and ai-proxy (770).

import * as limiter from "./limiter";

type Config = ConfigOf<typeof import("./schema")>;

const handler: KongPluginHandler<Config> = {
  PRIORITY: 905,
  VERSION: "0.1.0",

  access(conf) {
    limiter.access(conf);
  },

  // An error in a filter or log handler would break the response or skip the logging plugins
  // after this one (Kong calls them without pcall): the response passes on uncounted instead.
  header_filter(conf) {
    const [ok, err] = pcall(limiter.headerFilter, conf);
    if (!ok) {
      limiter.stopMetering();
      kong.log.err("token metering failed: ", err);
    }
  },

  body_filter() {
    const [ok, err] = pcall(limiter.bodyFilter);
    if (!ok) {
      limiter.stopMetering();
      kong.log.err("token metering failed: ", err);
    }
  },

  log(conf) {
    const [ok, err] = pcall(limiter.log, conf);
    if (!ok) kong.log.err("token accounting failed: ", err);
  },
};

export = handler;
