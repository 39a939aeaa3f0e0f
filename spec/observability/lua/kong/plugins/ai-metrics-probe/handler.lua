-- Probe at token-rate-limiting's PRIORITY (905): meters every response through the shared modules,
-- refuses (429) when `refuse`, and plays a prompt-guard decision when `guard_rule` is set (a
-- "blocked" one answers 400). Its log phase counts refusals, guard decisions, tokens, time to first
-- token and how the response ended, and writes Kong's ai analytics.
local probe = require "ai_metrics_probe"
local metrics = require "kong.plugins.ai-gateway-shared.metrics"

local Probe = probe.handler(905)

function Probe.access(_, conf)
  probe.access()
  if conf.refuse then
    kong.ctx.plugin.refused = true
    return kong.response.exit(429, { error = { message = "Token rate limit exceeded" } })
  end
  if conf.guard_rule and conf.guard_action == "blocked" then
    return kong.response.exit(400, { error = { message = "prompt blocked" } })
  end
end

function Probe.log(_, conf)
  local m = conf.metrics
  local route = kong.router.get_route()
  if kong.ctx.plugin.refused then
    metrics.recordRefusal(m, kong.client.get_consumer(), route)
  end
  if conf.guard_rule then
    metrics.recordGuardDecision(m, route, conf.guard_rule, conf.guard_action)
  end
  local done, _, outcome = probe.log(conf, 1)
  metrics.recordStreamEnd(m, route, outcome)
  kong.log.notice("ai-metrics-probe recorded tokens=", done.tokens, " analytics=", done.analytics)
end

return Probe
