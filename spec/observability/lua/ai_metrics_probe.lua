-- What the observability probes share: a stand-in for what token-rate-limiting and
-- upstream-disconnect-log will do with the shared metrics and analytics modules (they are not
-- wired yet): read the usage from the response as it passes, then, in the log phase, count it
-- through kong.plugins.ai-gateway-shared.metrics and write Kong's `ai.proxy` analytics through
-- kong.plugins.ai-gateway-shared.analytics.
local cjson = require "cjson.safe"
local stream_usage = require "kong.plugins.ai-gateway-shared.stream_usage"
local tokens = require "kong.plugins.ai-gateway-shared.tokens"
local estimate = require "kong.plugins.ai-gateway-shared.estimate"
local metrics = require "kong.plugins.ai-gateway-shared.metrics"
local analytics = require "kong.plugins.ai-gateway-shared.analytics"

local _M = {}

--- The probes' config fields: the shared `metrics` record plus the probe's own.
function _M.schema(name, own)
  local fields = { metrics.METRICS_FIELD }
  for _, f in ipairs(own or {}) do fields[#fields + 1] = f end
  return { name = name, fields = { { config = { type = "record", fields = fields } } } }
end

function _M.access()
  local raw = kong.request.get_raw_body()
  local body = raw and cjson.decode(raw)
  local ctx = kong.ctx.plugin
  ctx.raw = raw
  ctx.model = type(body) == "table" and body.model or nil
end

function _M.header_filter()
  local ctx = kong.ctx.plugin
  ctx.reader = stream_usage.newUsageReader("auto")
  ctx.reader:detect(kong.response.get_header("Content-Type"), nil, kong.response.get_header("Content-Encoding"))
end

function _M.body_filter()
  local ctx = kong.ctx.plugin
  if not ctx.reader then return end
  ctx.reader:feed(ngx.arg[1])
  if not ctx.first_token_at and ctx.reader.textEvents > 0 then
    ngx.update_time()
    ctx.first_token_at = ngx.now()
  end
  if ngx.arg[2] then
    ngx.update_time()
    ctx.ended_at = ngx.now()
  end
end

--- The tokens of the request, counted from the response (scale: the late probe inflates them,
-- so that a count it should not make would show).
function _M.counted(scale)
  local ctx = kong.ctx.plugin
  local report = ctx.reader and ctx.reader:finish()
  local t = tokens.tokensOf({
    exited = kong.response.get_source() == "exit",
    upstreamStatus = tonumber(ngx.var.upstream_status),
    report = report,
    promptEstimate = function() return estimate.estimatePromptTokensFromBody(ctx.raw) end,
  })
  t.prompt, t.completion, t.total = t.prompt * scale, t.completion * scale, t.total * scale
  return t, report
end

local function outcome(t, report)
  if t.source == "not_proxied" then return "gateway_exit" end
  if report and report.terminated then return "completed" end
  if ngx.status == 499 then return "client_abort" end
  return "upstream_abort"
end

--- A metering handler at `priority`: registers the metrics per worker, reads the request's model
-- and meters the response; the caller adds its log phase (and may wrap access).
function _M.handler(priority)
  local h = { PRIORITY = priority, VERSION = "0.1.0" }
  function h.init_worker() metrics.init() end
  function h.access() _M.access() end
  function h.header_filter() _M.header_filter() end
  function h.body_filter() _M.body_filter() end
  return h
end

--- The log phase of a metering plugin; returns what the shared modules accepted.
function _M.log(conf, scale)
  local ctx = kong.ctx.plugin
  local m = conf.metrics
  local consumer, route = kong.client.get_consumer(), kong.router.get_route()
  local t, report = _M.counted(scale or 1)
  local started = ngx.req.start_time()
  local done = {
    tokens = metrics.recordTokens(m, consumer, route, ctx.model, t),
    analytics = analytics.recordAiAnalytics(m, {
      pluginId = conf.__plugin_id,
      provider = analytics.providerOfDialect(report and report.dialect),
      requestModel = ctx.model,
      prompt = t.prompt,
      completion = t.completion,
      startedAt = started,
      endedAt = ctx.ended_at,
      source = t.source,
    }),
  }
  if ctx.first_token_at and report and report.framing ~= "json" then
    done.ttft = metrics.recordTimeToFirstToken(m, route, ctx.model, (ctx.first_token_at - started) * 1000)
  end
  return done, t, outcome(t, report)
end

return _M
