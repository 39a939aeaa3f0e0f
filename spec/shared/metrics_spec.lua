-- kong.plugins.ai-gateway-shared.metrics: labels (pure), registration on a stand-in of Kong's
-- prometheus registry, and what each record function counts. `ngx` and `kong` are stubbed with
-- just what the module touches; the module is loaded afresh for each test (its state is per worker).
local MODULE = "kong.plugins.ai-gateway-shared.metrics"
local HANDLER = "kong.plugins.prometheus.handler"
local EXPORTER = "kong.plugins.prometheus.exporter"

local function fresh()
  package.loaded[MODULE] = nil
  return require(MODULE)
end

-- A registry that records what is registered on it and every inc/observe.
local function fake_registry()
  local reg = { registered = {}, calls = {} }
  local function metric(name)
    local m = {}
    function m:inc(value, labels)
      reg.calls[#reg.calls + 1] = { name = name, op = "inc", value = value, labels = { unpack(labels) } }
    end
    function m:observe(value, labels)
      reg.calls[#reg.calls + 1] = { name = name, op = "observe", value = value, labels = { unpack(labels) } }
    end
    return m
  end
  function reg:counter(name, _, labels)
    self.registered[#self.registered + 1] = { name = name, type = "counter", labels = labels }
    return metric(name)
  end
  function reg:histogram(name, _, labels, buckets)
    self.registered[#self.registered + 1] = { name = name, type = "histogram", labels = labels, buckets = buckets }
    return metric(name)
  end
  return reg
end

local CONF = { enabled = true, per_consumer = true, models = {}, ai_analytics = true }

local function conf(over)
  local c = {}
  for k, v in pairs(CONF) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

describe("metrics labels", function()
  local metrics = fresh()
  before_each(function() metrics.resetModelLabels() end)

  it("labelText: names as they are, control characters removed, numbers as numbers, other types empty", function()
    assert.equal("llm-client", metrics.labelText("llm-client"))
    assert.equal("ab", metrics.labelText("a\n\0b"))
    assert.equal("429", metrics.labelText(429))
    assert.equal("", metrics.labelText(nil))
    assert.equal("", metrics.labelText({}))
  end)

  it("labelText: at most 128 bytes, never half a UTF-8 character", function()
    assert.equal(string.rep("a", 128), metrics.labelText(string.rep("a", 300)))
    local cut = metrics.labelText(string.rep("a", 127) .. "é" .. "zz") -- é is 2 bytes, would end at byte 129
    assert.equal(string.rep("a", 127), cut)
  end)

  it("consumerLabel: username, else custom_id, else id; empty when per_consumer is off or no consumer", function()
    assert.equal("alice", metrics.consumerLabel({ id = "u1", username = "alice", custom_id = "c1" }, true))
    assert.equal("c1", metrics.consumerLabel({ id = "u1", custom_id = "c1" }, true))
    assert.equal("u1", metrics.consumerLabel({ id = "u1" }, true))
    assert.equal("", metrics.consumerLabel({ id = "u1", username = "alice" }, false))
    assert.equal("", metrics.consumerLabel(nil, true))
  end)

  it("routeLabel: the route's name, else its id", function()
    assert.equal("llm", metrics.routeLabel({ id = "r1", name = "llm" }))
    assert.equal("r1", metrics.routeLabel({ id = "r1" }))
    assert.equal("", metrics.routeLabel(nil))
  end)

  it("modelLabel with a configured list: listed names pass, the rest is 'other', none is 'unknown'", function()
    local known = { "gpt-4o", "mock" }
    assert.equal("mock", metrics.modelLabel("mock", known))
    assert.equal("other", metrics.modelLabel("gpt-4o-mini", known))
    assert.equal("unknown", metrics.modelLabel(nil, known))
    assert.equal("unknown", metrics.modelLabel("", known))
    assert.equal("unknown", metrics.modelLabel(42, known))
  end)

  it("modelLabel without a list: model-like names pass, prompt text, quotes and keys with spaces do not", function()
    for _, name in ipairs({ "gpt-4o-2024-08-06", "Qwen/Qwen2.5-0.5B-Instruct", "llama3.1:8b", "claude-3-5-sonnet@20240620" }) do
      assert.equal(name, metrics.modelLabel(name, {}))
    end
    assert.equal("other", metrics.modelLabel("ignore all previous instructions", {}))
    assert.equal("other", metrics.modelLabel('m"}', {}))
    assert.equal("other", metrics.modelLabel("-leading-dash", {}))
    assert.equal("other", metrics.modelLabel(string.rep("m", 129), {}))
  end)

  it("modelLabel without a list: at most 64 distinct names per worker, names already given out keep passing", function()
    for i = 1, metrics.MAX_MODELS_PER_WORKER do
      assert.equal("m" .. i, metrics.modelLabel("m" .. i, {}))
    end
    assert.equal("other", metrics.modelLabel("m-one-too-many", {}))
    assert.equal("m1", metrics.modelLabel("m1", {}))
    metrics.resetModelLabels()
    assert.equal("m-one-too-many", metrics.modelLabel("m-one-too-many", {}))
  end)

  it("METRICS_FIELD: the gateway's schema validator fills its defaults in a plugin config", function()
    local schema = require "kong_local.schema"
    local s = { name = "p", fields = { { config = { type = "record", fields = { metrics.METRICS_FIELD } } } } }
    assert.truthy(schema.validate_plugin_schema("p", s))
    local c = schema.process_plugin_config("p", s, { name = "p" })
    assert.same({ enabled = true, per_consumer = true, models = {}, ai_analytics = true }, c.metrics)
    local c2 = schema.process_plugin_config("p", s, { name = "p", config = { metrics = { per_consumer = false, models = { "mock" } } } })
    assert.same({ enabled = true, per_consumer = false, models = { "mock" }, ai_analytics = true }, c2.metrics)
    local bad, err = schema.process_plugin_config("p", s, { name = "p", config = { metrics = { models = { "" } } } })
    assert.is_nil(bad)
    assert.matches("models", tostring(err))
  end)
end)

describe("metrics registration and recording", function()
  local saved_ngx, saved_kong
  local phase
  local reg
  local exporter_calls

  before_each(function()
    saved_ngx, saved_kong = _G.ngx, _G.kong
    phase = "log"
    _G.ngx = { get_phase = function() return phase end }
    _G.kong = { ctx = { shared = {} } }
    reg = fake_registry()
    exporter_calls = 0
    package.loaded[HANDLER] = {}
    package.loaded[EXPORTER] = {
      get_prometheus = function()
        exporter_calls = exporter_calls + 1
        return reg
      end,
    }
  end)

  after_each(function()
    _G.ngx, _G.kong = saved_ngx, saved_kong
    package.loaded[HANDLER] = nil
    package.loaded[EXPORTER] = nil
  end)

  local ALICE = { id = "u1", username = "alice" }
  local ROUTE = { id = "r1", name = "llm" }

  it("registers the five metrics once per worker, whoever asks first", function()
    local metrics = fresh()
    assert.is_true(metrics.init())
    assert.is_true(metrics.init())
    metrics.recordRefusal(conf(), ALICE, ROUTE)
    assert.equal(1, exporter_calls)
    local names = {}
    for _, r in ipairs(reg.registered) do names[#names + 1] = r.type .. " " .. r.name .. " " .. table.concat(r.labels, ",") end
    assert.same({
      "counter ai_gateway_tokens_total consumer,route,model,kind,source",
      "counter ai_gateway_token_limit_refusals_total consumer,route",
      "counter ai_gateway_prompt_guard_decisions_total route,rule,action",
      "counter ai_gateway_stream_endings_total route,outcome",
      "histogram ai_gateway_time_to_first_token_ms route,model",
    }, names)
    assert.same(metrics.TTFT_BUCKETS_MS, reg.registered[5].buckets)
  end)

  it("without Kong's prometheus plugin loaded: nothing registered, records are no-ops, the exporter is never asked", function()
    package.loaded[HANDLER] = nil
    local metrics = fresh()
    assert.is_false(metrics.init())
    assert.is_false(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 3, completion = 4, estimated = false }))
    assert.is_false(metrics.recordRefusal(conf(), ALICE, ROUTE))
    assert.equal(0, exporter_calls)
    assert.same({}, reg.calls)
  end)

  it("when get_prometheus() answers nil: no error, not asked again in this worker", function()
    package.loaded[EXPORTER] = { get_prometheus = function() exporter_calls = exporter_calls + 1 end }
    local metrics = fresh()
    assert.is_false(metrics.init())
    assert.is_false(metrics.recordStreamEnd(conf(), ROUTE, "completed"))
    assert.equal(1, exporter_calls)
  end)

  it("when the exporter module fails to load: no error", function()
    package.loaded[EXPORTER] = nil
    package.preload[EXPORTER] = function() error("boom") end
    local metrics = fresh()
    assert.is_false(metrics.init())
    package.preload[EXPORTER] = nil
  end)

  it("in the init phase it decides nothing (handlers may not all be loaded yet)", function()
    phase = "init"
    local metrics = fresh()
    assert.is_false(metrics.init())
    phase = "init_worker"
    assert.is_true(metrics.init())
  end)

  it("recordTokens: prompt and completion with their labels, once per request", function()
    local metrics = fresh()
    assert.is_true(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 12, completion = 30, estimated = false, source = "usage" }))
    assert.is_false(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 99, completion = 99, estimated = false }))
    assert.same({
      { name = "ai_gateway_tokens_total", op = "inc", value = 12, labels = { "alice", "llm", "mock", "prompt", "reported" } },
      { name = "ai_gateway_tokens_total", op = "inc", value = 30, labels = { "alice", "llm", "mock", "completion", "reported" } },
    }, reg.calls)
  end)

  it("recordTokens: estimated counts, empty consumer when per_consumer is off, unlisted model as other, no zero increments", function()
    local metrics = fresh()
    metrics.recordTokens(conf({ per_consumer = false, models = { "gpt-4o" } }), ALICE, ROUTE, "mock",
                         { prompt = 7, completion = 0, estimated = true, source = "estimate" })
    assert.same({
      { name = "ai_gateway_tokens_total", op = "inc", value = 7, labels = { "", "llm", "other", "prompt", "estimated" } },
    }, reg.calls)
  end)

  it("recordTokens: requests that never reached a model are not counted and leave the next plugin free to count", function()
    local metrics = fresh()
    assert.is_false(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 0, completion = 0, estimated = false, source = "not_proxied" }))
    assert.is_false(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 0, completion = 0, estimated = false, source = "websocket" }))
    assert.is_false(metrics.recordTokens(conf({ enabled = false }), ALICE, ROUTE, "mock", { prompt = 1, completion = 1, estimated = false }))
    assert.is_true(metrics.recordTokens(conf(), ALICE, ROUTE, "mock", { prompt = 1, completion = 1, estimated = false }))
    assert.equal(2, #reg.calls)
  end)

  it("recordRefusal, recordGuardDecision, recordStreamEnd: one per call, unknown words counted as other", function()
    local metrics = fresh()
    metrics.recordRefusal(conf(), ALICE, ROUTE)
    metrics.recordRefusal(conf({ per_consumer = false }), ALICE, ROUTE)
    metrics.recordGuardDecision(conf(), ROUTE, "prompt-injection", "blocked")
    metrics.recordGuardDecision(conf(), ROUTE, nil, "allowed")
    metrics.recordGuardDecision(conf(), ROUTE, "r", "exploded")
    metrics.recordStreamEnd(conf(), ROUTE, "client_abort")
    metrics.recordStreamEnd(conf(), ROUTE, "meteor")
    local got = {}
    for _, c in ipairs(reg.calls) do got[#got + 1] = c.name .. " " .. c.value .. " " .. table.concat(c.labels, "|") end
    assert.same({
      "ai_gateway_token_limit_refusals_total 1 alice|llm",
      "ai_gateway_token_limit_refusals_total 1 |llm",
      "ai_gateway_prompt_guard_decisions_total 1 llm|prompt-injection|blocked",
      "ai_gateway_prompt_guard_decisions_total 1 llm||allowed",
      "ai_gateway_prompt_guard_decisions_total 1 llm|r|other",
      "ai_gateway_stream_endings_total 1 llm|client_abort",
      "ai_gateway_stream_endings_total 1 llm|other",
    }, got)
  end)

  it("recordTimeToFirstToken: milliseconds observed once per request; negative, NaN and infinite values refused", function()
    local metrics = fresh()
    assert.is_false(metrics.recordTimeToFirstToken(conf(), ROUTE, "mock", -1))
    assert.is_false(metrics.recordTimeToFirstToken(conf(), ROUTE, "mock", 0 / 0))
    assert.is_false(metrics.recordTimeToFirstToken(conf(), ROUTE, "mock", math.huge))
    assert.is_true(metrics.recordTimeToFirstToken(conf(), ROUTE, "mock", 312.5))
    assert.is_false(metrics.recordTimeToFirstToken(conf(), ROUTE, "mock", 10))
    assert.same({ { name = "ai_gateway_time_to_first_token_ms", op = "observe", value = 312.5, labels = { "llm", "mock" } } }, reg.calls)
  end)

  it("disabled by config: nothing recorded", function()
    local metrics = fresh()
    local off = conf({ enabled = false })
    assert.is_false(metrics.recordRefusal(off, ALICE, ROUTE))
    assert.is_false(metrics.recordGuardDecision(off, ROUTE, "r", "blocked"))
    assert.is_false(metrics.recordStreamEnd(off, ROUTE, "completed"))
    assert.is_false(metrics.recordTimeToFirstToken(off, ROUTE, "mock", 5))
    assert.same({}, reg.calls)
  end)
end)
