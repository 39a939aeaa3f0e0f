-- The local gateway's stand-in of Kong's prometheus library and exporter
-- (gateway/lua/kong/plugins/prometheus): keys, text output, escaping, bucket labels, errors, and the
-- exporter's AI metrics from the serializer's `ai` table. `ngx` is stubbed: a shared dict in a
-- table, the phase, the sync timer and the output.
local LIB = "kong.plugins.prometheus.prometheus"
local EXPORTER = "kong.plugins.prometheus.exporter"

local function fake_dict()
  local data = {}
  local d = {}
  function d:get(k) return data[k] end
  function d:set(k, v) data[k] = v; return true end
  function d:safe_set(k, v) data[k] = v; return true end
  function d:delete(k) data[k] = nil end
  function d:incr(k, v, init)
    if data[k] == nil then
      if init == nil then return nil, "not found" end
      data[k] = init
    end
    data[k] = data[k] + v
    return data[k]
  end
  function d:get_keys()
    local keys = {}
    for k in pairs(data) do keys[#keys + 1] = k end
    return keys
  end
  d.data = data
  return d
end

local saved_ngx, saved_kong
local env

local function stub_ngx()
  env = { phase = "init", timers = {}, printed = {}, logged = {} }
  env.dict = fake_dict()
  _G.ngx = {
    shared = { prometheus_metrics = env.dict },
    get_phase = function() return env.phase end,
    ERR = 4, WARN = 5, INFO = 7,
    log = function(level, ...) env.logged[#env.logged + 1] = { level, table.concat({ ... }) } end,
    timer = {
      every = function(interval, fn) env.timers[#env.timers + 1] = { interval = interval, fn = fn }; return true end,
      running_count = function() return 0 end,
      pending_count = function() return 2 end,
    },
    print = function(s) env.printed[#env.printed + 1] = s end,
    header = {},
  }
end

local function scrape(prom, local_only)
  local out = {}
  prom:metric_data(function(s) out[#out + 1] = s end, local_only)
  return table.concat(out)
end

describe("prometheus library stand-in", function()
  local Prometheus

  before_each(function()
    saved_ngx, saved_kong = _G.ngx, _G.kong
    stub_ngx()
    package.loaded[LIB] = nil
    Prometheus = require(LIB)
  end)

  after_each(function()
    _G.ngx, _G.kong = saved_ngx, saved_kong
  end)

  local function registry()
    local prom = Prometheus.init("prometheus_metrics", "kong_")
    env.phase = "init_worker"
    prom:init_worker()
    env.phase = "log"
    return prom
  end

  it("writes Kong's text format: sorted keys, HELP/TYPE before a metric's first sample, the prefix, plain bucket bounds", function()
    local prom = registry()
    local c = prom:counter("requests_total", "Requests", { "route", "code" })
    c:inc(1, { "llm", 200 })
    c:inc(2, { "llm", 200 })
    c:inc(1, { 'a"b\\c', 429 })
    local g = prom:gauge("temperature", "Temp")
    g:set(21.5)
    local h = prom:histogram("latency_ms", "Latency", { "route" }, { 0.5, 1, 250 })
    h:observe(0.7, { "llm" })
    h:observe(300, { "llm" })
    assert.equal(table.concat({
      "# HELP kong_latency_ms Latency",
      "# TYPE kong_latency_ms histogram",
      'kong_latency_ms_bucket{route="llm",le="1"} 1',
      'kong_latency_ms_bucket{route="llm",le="250"} 1',
      'kong_latency_ms_bucket{route="llm",le="+Inf"} 2',
      'kong_latency_ms_count{route="llm"} 2',
      'kong_latency_ms_sum{route="llm"} 300.7',
      "# HELP kong_nginx_metric_errors_total Number of nginx-lua-prometheus errors",
      "# TYPE kong_nginx_metric_errors_total counter",
      "kong_nginx_metric_errors_total 0",
      "# HELP kong_requests_total Requests",
      "# TYPE kong_requests_total counter",
      'kong_requests_total{route="a\\"b\\\\c",code="429"} 1',
      'kong_requests_total{route="llm",code="200"} 3',
      "# HELP kong_temperature Temp",
      "# TYPE kong_temperature gauge",
      "kong_temperature 21.5",
      "",
    }, "\n"), scrape(prom))
  end)

  it("keeps bucket bounds zero-padded in the dict so that they sort numerically, Inf last", function()
    local prom = registry()
    prom:histogram("h", "H", nil, { 0.5, 1, 250 }):observe(0.1)
    scrape(prom)
    local keys = env.dict:get_keys()
    table.sort(keys)
    assert.same({ 'h_bucket{le="000.5"}', 'h_bucket{le="001.0"}', 'h_bucket{le="250.0"}', 'h_bucket{le="Inf"}',
                  "h_count", "h_sum", "nginx_metric_errors_total" }, keys)
  end)

  it("adds counter increments up in the worker and flushes them every second and before a scrape", function()
    local prom = registry()
    assert.equal(1, #env.timers)
    assert.equal(1, env.timers[1].interval)
    local c = prom:counter("c_total", "C", { "k" })
    c:inc(5, { "x" })
    assert.is_nil(env.dict:get('c_total{k="x"}'))
    env.timers[1].fn(false)
    assert.equal(5, env.dict:get('c_total{k="x"}'))
    c:inc(nil, { "x" })
    assert.matches('c_total{k="x"} 6', scrape(prom), 1, true)
  end)

  it("cuts a label value before its first invalid UTF-8 byte", function()
    local prom = registry()
    prom:counter("u_total", "U", { "v" }):inc(1, { "ok\xffrest" })
    assert.matches('kong_u_total{v="ok"} 1', scrape(prom), 1, true)
  end)

  it("refuses duplicates, invalid names, the label le, wrong label counts and negative counter steps, counting each as an error", function()
    local prom = registry()
    assert.truthy(prom:counter("dup_total", "D"))
    assert.is_nil(prom:counter("dup_total", "D"))
    assert.is_nil(prom:histogram("dup_total", "D"))
    assert.is_nil(prom:counter("bad-name", "B"))
    assert.is_nil(prom:histogram("h2", "H", { "le" }))
    assert.is_nil(prom:counter("c2_total", "C", { "bad label" }))
    local c = prom:counter("ok_total", "O", { "a", "b" })
    c:inc(1, { "only-one" })
    c:inc(-1, { "x", "y" })
    local out = scrape(prom)
    assert.matches("kong_nginx_metric_errors_total 7", out, 1, true)
    assert.not_matches("ok_total{", out, 1, true)
  end)

  it("keeps LOCAL_STORAGE gauges in the worker and shows only them in a local-only scrape", function()
    local prom = registry()
    prom:gauge("local_g", "L", { "k" }, Prometheus.LOCAL_STORAGE):set(3, { "a" })
    prom:counter("shared_total", "S"):inc(1)
    assert.is_nil(env.dict:get('local_g{k="a"}'))
    assert.equal(table.concat({ "# HELP kong_local_g L", "# TYPE kong_local_g gauge", 'kong_local_g{k="a"} 3', "" }, "\n"),
                 scrape(prom, true))
    assert.matches("kong_shared_total 1", scrape(prom), 1, true)
  end)

  it("can only be initialised in init, init_worker or a timer", function()
    env.phase = "access"
    assert.has_error(function() Prometheus.init("prometheus_metrics", "kong_") end,
      "Prometheus.init can only be called from init_by_lua_block, init_worker_by_lua_block or timer")
  end)
end)

describe("exporter stand-in: AI metrics from the serializer's ai table", function()
  local exporter

  before_each(function()
    saved_ngx, saved_kong = _G.ngx, _G.kong
    stub_ngx()
    _G.kong = {
      version = "3.9.1",
      node = {
        get_id = function() return "node-1" end,
        get_memory_stats = function() return { lua_shared_dicts = {}, workers_lua_vms = {} } end,
      },
      log = { err = function(...) env.logged[#env.logged + 1] = { "err", table.concat({ ... }) } end },
      response = { get_source = function() return "service" end },
    }
    package.loaded[LIB] = nil
    package.loaded[EXPORTER] = nil
    exporter = require(EXPORTER)
    exporter.init()
    env.phase = "init_worker"
    exporter.init_worker()
    exporter.configure({ {} })
    env.phase = "log"
  end)

  after_each(function()
    _G.ngx, _G.kong = saved_ngx, saved_kong
  end)

  local function metrics_text()
    local out = {}
    exporter.metric_data(function(s) out[#out + 1] = s end)
    return table.concat(out)
  end

  local AI_LABELS = 'ai_provider="openai",ai_model="mock",cache_status="",vector_db="",embeddings_provider="",embeddings_model=""'

  it("counts each use case once, its tokens by type and its latency, with Kong's labels", function()
    local message = { route = { name = "llm" }, service = { name = "svc" }, workspace_name = "default" }
    local ai = { proxy = {
      meta = { provider_name = "openai", request_model = "mock", response_model = "mock", llm_latency = 1200 },
      usage = { prompt_tokens = 12, completion_tokens = 30, total_tokens = 42, time_per_token = 40, cost = 0 },
    } }
    exporter.log(message, { ai_metrics = ai })
    exporter.log(message, { ai_metrics = ai })
    local out = metrics_text()
    assert.matches("kong_ai_llm_requests_total{" .. AI_LABELS .. ',workspace="default"} 2', out, 1, true)
    assert.matches("kong_ai_llm_tokens_total{" .. AI_LABELS .. ',token_type="prompt_tokens",workspace="default"} 24', out, 1, true)
    assert.matches("kong_ai_llm_tokens_total{" .. AI_LABELS .. ',token_type="completion_tokens",workspace="default"} 60', out, 1, true)
    assert.matches("kong_ai_llm_tokens_total{" .. AI_LABELS .. ',token_type="total_tokens",workspace="default"} 84', out, 1, true)
    assert.matches("kong_ai_llm_provider_latency_ms_bucket{" .. AI_LABELS .. ',workspace="default",le="1500"} 2', out, 1, true)
    assert.matches("kong_ai_llm_provider_latency_ms_bucket{" .. AI_LABELS .. ',workspace="default",le="+Inf"} 2', out, 1, true)
    assert.not_matches('le="1000"}', out, 1, true)
    assert.not_matches("kong_ai_llm_cost_total{", out, 1, true) -- cost 0 is not counted
    assert.matches("# HELP kong_ai_llm_tokens_total AI requests cost per ai_provider/cache in Kong", out, 1, true)
  end)

  it("needs a route, and counts nothing AI when the serializer has no ai table", function()
    exporter.log({ service = { name = "svc" } }, { ai_metrics = { proxy = { meta = {}, usage = {} } }, status_code = 200 })
    exporter.log({ route = { id = "r1" }, workspace_name = "default" }, { status_code = 404 })
    local out = metrics_text()
    assert.not_matches("kong_ai_llm_requests_total{", out, 1, true)
    assert.matches('kong_http_requests_total{service="",route="r1",code="404",source="service",workspace="default",consumer=""} 1', out, 1, true)
  end)

  it("without a configured prometheus plugin the scrape shows only the worker's local gauges", function()
    exporter.log({ route = { name = "llm" }, workspace_name = "default" }, { status_code = 200 })
    exporter.configure(nil)
    local out = metrics_text()
    assert.not_matches("kong_http_requests_total", out, 1, true)
    assert.matches('kong_node_info{node_id="node-1",version="3.9.1"} 1', out, 1, true)
    assert.matches('kong_nginx_timers{state="pending"} 2', out, 1, true)
  end)
end)
