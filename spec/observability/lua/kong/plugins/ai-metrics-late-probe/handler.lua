-- Probe at upstream-disconnect-log's PRIORITY (15): meters the response too, its counts multiplied
-- by `scale`, and tries to count them and write the analytics after the higher-priority plugins
-- (the probe at 905, the ai-proxy stand-in at 770). Alone on a route it is the one that counts.
local probe = require "ai_metrics_probe"

local LateProbe = probe.handler(15)

function LateProbe.log(_, conf)
  local done = probe.log(conf, conf.scale)
  kong.log.notice("ai-metrics-late-probe recorded tokens=", done.tokens, " analytics=", done.analytics)
end

return LateProbe
