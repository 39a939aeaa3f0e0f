-- kong.plugins.ai-gateway-shared.analytics: Kong's `ai.proxy` entry built from what a plugin knows,
-- and how it is written into the log serializer (mode "add", once per request). The serializer is
-- the gateway's kong.log.serialize (Kong's edit_result rules), driven with a stub ngx.ctx.
local analytics = require "kong.plugins.ai-gateway-shared.analytics"
local metrics = require "kong.plugins.ai-gateway-shared.metrics"

local CONF = { enabled = true, per_consumer = true, models = {}, ai_analytics = true }

describe("buildAiAnalytics", function()
  before_each(function() metrics.resetModelLabels() end)

  it("fills Kong's meta and usage: latency from start to last byte, time per token floored, cost 0", function()
    local a = analytics.buildAiAnalytics({
      pluginId = "p-1", provider = "openai", requestModel = "mock", prompt = 12, completion = 30,
      startedAt = 100.0, endedAt = 101.2345,
    }, {})
    assert.same({
      meta = { plugin_id = "p-1", provider_name = "openai", request_model = "mock", response_model = "mock", llm_latency = 1234 },
      usage = { prompt_tokens = 12, completion_tokens = 30, total_tokens = 42, time_per_token = 41, cost = 0 },
    }, a)
  end)

  it("keeps the response's model when it differs, and passes models through the metrics labels", function()
    local a = analytics.buildAiAnalytics({ requestModel = "gpt-4o", responseModel = "gpt-4o-2024-08-06", prompt = 1, completion = 1 }, {})
    assert.equal("gpt-4o", a.meta.request_model)
    assert.equal("gpt-4o-2024-08-06", a.meta.response_model)
    local listed = analytics.buildAiAnalytics({ requestModel = "secret prompt text", prompt = 1, completion = 1 }, {})
    assert.equal("other", listed.meta.request_model)
    local none = analytics.buildAiAnalytics({ prompt = 1, completion = 1 }, { "mock" })
    assert.equal("unknown", none.meta.request_model)
  end)

  it("no timing, no completion, negative counts: zeros; no provider: UNSPECIFIED as ai-proxy writes it", function()
    local a = analytics.buildAiAnalytics({ prompt = -5, completion = 0, startedAt = 10, endedAt = 9 }, {})
    assert.same({ prompt_tokens = 0, completion_tokens = 0, total_tokens = 0, time_per_token = 0, cost = 0 }, a.usage)
    assert.equal(0, a.meta.llm_latency)
    assert.equal("UNSPECIFIED", a.meta.provider_name)
    assert.is_nil(a.meta.plugin_id)
  end)

  it("providerOfDialect: the usage reader's dialect as ai-proxy's provider names", function()
    assert.equal("openai", analytics.providerOfDialect("openai"))
    assert.equal("openai", analytics.providerOfDialect("responses"))
    assert.equal("anthropic", analytics.providerOfDialect("anthropic"))
    assert.equal("ollama", analytics.providerOfDialect("ollama"))
    assert.equal("UNSPECIFIED", analytics.providerOfDialect("unknown"))
    assert.equal("UNSPECIFIED", analytics.providerOfDialect(nil))
  end)
end)

describe("recordAiAnalytics in the log serializer", function()
  local saved_ngx, saved_kong
  local log

  -- what the serializer would hold under `ai` after the writes made so far
  local function ai()
    local root = {}
    for _, item in ipairs(_G.ngx.ctx.serialize_values or {}) do
      -- Kong's edit_result: dots are tables, "add" only when absent, "set" always
      local node = root
      local parts = {}
      for p in item.key:gmatch("[^.]+") do parts[#parts + 1] = p end
      for i = 1, #parts - 1 do
        node[parts[i]] = node[parts[i]] or {}
        node = node[parts[i]]
      end
      local last = parts[#parts]
      if item.mode == "set" or (item.mode == "add" and node[last] == nil) then
        node[last] = item.value
      end
    end
    return root.ai
  end

  before_each(function()
    saved_ngx, saved_kong = _G.ngx, _G.kong
    _G.ngx = { ctx = {} }
    log = {
      set_serialize_value = function(key, value, options)
        local values = _G.ngx.ctx.serialize_values or {}
        values[#values + 1] = { key = key, value = value, mode = options and options.mode or "set" }
        _G.ngx.ctx.serialize_values = values
      end,
    }
    _G.kong = { ctx = { shared = {} }, log = log }
    metrics.resetModelLabels()
  end)

  after_each(function()
    _G.ngx, _G.kong = saved_ngx, saved_kong
  end)

  local FACTS = { pluginId = "trl", provider = "openai", requestModel = "mock", prompt = 10, completion = 5,
                  startedAt = 1, endedAt = 1.5, source = "usage" }

  it("writes ai.proxy.meta and ai.proxy.usage with mode add", function()
    assert.is_true(analytics.recordAiAnalytics(CONF, FACTS))
    local modes = {}
    for _, v in ipairs(_G.ngx.ctx.serialize_values) do modes[#modes + 1] = v.key .. "=" .. v.mode end
    assert.same({ "ai.proxy.meta=add", "ai.proxy.usage=add" }, modes)
    assert.same({ prompt_tokens = 10, completion_tokens = 5, total_tokens = 15, time_per_token = 100, cost = 0 }, ai().proxy.usage)
    assert.equal(500, ai().proxy.meta.llm_latency)
  end)

  it("once per request: a lower-priority plugin's later call writes nothing", function()
    assert.is_true(analytics.recordAiAnalytics(CONF, FACTS))
    assert.is_false(analytics.recordAiAnalytics(CONF, { prompt = 99, completion = 99, source = "usage" }))
    assert.equal(2, #_G.ngx.ctx.serialize_values)
  end)

  it("ai-proxy's later write (mode set) replaces ours: one entry, ai-proxy's", function()
    analytics.recordAiAnalytics(CONF, FACTS) -- token-rate-limiting, PRIORITY 905
    log.set_serialize_value("ai.proxy.meta", { provider_name = "azure", request_model = "gpt-4o" }) -- ai-proxy, 770
    log.set_serialize_value("ai.proxy.usage", { prompt_tokens = 20, completion_tokens = 8, total_tokens = 28 })
    local entry = ai()
    assert.equal("azure", entry.proxy.meta.provider_name)
    assert.equal(28, entry.proxy.usage.total_tokens)
    local count = 0
    for _ in pairs(entry) do count = count + 1 end
    assert.equal(1, count)
  end)

  it("after ai-proxy's write, ours (mode add) leaves it alone", function()
    log.set_serialize_value("ai.proxy.meta", { provider_name = "azure" }) -- ai-proxy, 770
    log.set_serialize_value("ai.proxy.usage", { total_tokens = 28 })
    analytics.recordAiAnalytics(CONF, FACTS) -- upstream-disconnect-log, PRIORITY 15
    assert.equal("azure", ai().proxy.meta.provider_name)
    assert.equal(28, ai().proxy.usage.total_tokens)
  end)

  it("requests that never reached a model, and ai_analytics off: nothing written", function()
    assert.is_false(analytics.recordAiAnalytics(CONF, { prompt = 0, completion = 0, source = "not_proxied" }))
    assert.is_false(analytics.recordAiAnalytics(CONF, { prompt = 0, completion = 0, source = "websocket" }))
    assert.is_false(analytics.recordAiAnalytics({ enabled = true, per_consumer = true, models = {}, ai_analytics = false }, FACTS))
    assert.is_nil(_G.ngx.ctx.serialize_values)
  end)
end)
