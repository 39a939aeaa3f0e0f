-- The exporter of Kong 3.9's bundled prometheus plugin (kong/plugins/prometheus/exporter.lua),
-- written again for the local gateway: the registry other plugins reach through get_prometheus(),
-- Kong's request and AI metrics with Kong's names, labels, help texts and buckets, and the scrape.
--
-- What it produces and what it leaves out (no nginx connection counters, upstream health, hybrid
-- mode, stream or cache metrics here) is listed in gateway/README.md.
local kong = kong
local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs

local SHM = "prometheus_metrics"

-- Kong 3.9's buckets (milliseconds)
local KONG_LATENCY_BUCKETS = { 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000 }
local UPSTREAM_LATENCY_BUCKETS = { 25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000 }
local AI_LLM_PROVIDER_LATENCY_BUCKETS = { 250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000,
                                          10000, 30000, 60000 }

local AI_LABELS = { "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider",
                    "embeddings_model", "workspace" }
local AI_TOKEN_LABELS = { "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider",
                          "embeddings_model", "token_type", "workspace" }

local metrics = {}
local prometheus
local node_id
-- some prometheus plugin is configured (configure() said so): without one a scrape shows only the
-- worker's local gauges, as in Kong
local enabled = false

local function init()
  if not ngx.shared[SHM] then
    kong.log.err("prometheus: ngx shared dict 'prometheus_metrics' not found")
    return
  end
  local lib = require "kong.plugins.prometheus.prometheus"
  prometheus = lib.init(SHM, "kong_")
  local LOCAL = lib.LOCAL_STORAGE
  node_id = kong.node.get_id()

  metrics.timers = prometheus:gauge("nginx_timers", "Number of nginx timers", { "state" }, LOCAL)
  metrics.db_reachable = prometheus:gauge("datastore_reachable",
                                          "Datastore reachable from Kong, 0 is unreachable", nil, LOCAL)
  metrics.node_info = prometheus:gauge("node_info", "Kong Node metadata information",
                                       { "node_id", "version" }, LOCAL)
  metrics.node_info:set(1, { node_id, kong.version })

  local memory = {}
  memory.worker_vms = prometheus:gauge("memory_workers_lua_vms_bytes", "Allocated bytes in worker Lua VM",
                                       { "node_id", "pid", "kong_subsystem" }, LOCAL)
  memory.shms = prometheus:gauge("memory_lua_shared_dict_bytes", "Allocated slabs in bytes in a shared_dict",
                                 { "node_id", "shared_dict", "kong_subsystem" }, LOCAL)
  memory.shm_capacity = prometheus:gauge("memory_lua_shared_dict_total_bytes",
                                         "Total capacity in bytes of a shared_dict",
                                         { "node_id", "shared_dict", "kong_subsystem" }, LOCAL)
  for name, dict in pairs(kong.node.get_memory_stats().lua_shared_dicts) do
    memory.shm_capacity:set(dict.capacity, { node_id, name, "http" })
  end
  metrics.memory = memory

  metrics.status = prometheus:counter("http_requests_total",
                                      "HTTP status codes per consumer/service/route in Kong",
                                      { "service", "route", "code", "source", "workspace", "consumer" })
  metrics.kong_latency = prometheus:histogram("kong_latency_ms",
                                              "Latency added by Kong and enabled plugins for each service/route in Kong",
                                              { "service", "route", "workspace" }, KONG_LATENCY_BUCKETS)
  metrics.upstream_latency = prometheus:histogram("upstream_latency_ms",
                                                  "Latency added by upstream response for each service/route in Kong",
                                                  { "service", "route", "workspace" }, UPSTREAM_LATENCY_BUCKETS)
  metrics.total_latency = prometheus:histogram("request_latency_ms",
                                               "Total latency incurred during requests for each service/route in Kong",
                                               { "service", "route", "workspace" }, UPSTREAM_LATENCY_BUCKETS)
  metrics.bandwidth = prometheus:counter("bandwidth_bytes", "Total bandwidth (ingress/egress) throughput in bytes",
                                         { "service", "route", "direction", "workspace", "consumer" })

  metrics.ai_llm_requests = prometheus:counter("ai_llm_requests_total",
                                               "AI requests total per ai_provider in Kong", AI_LABELS)
  metrics.ai_llm_cost = prometheus:counter("ai_llm_cost_total",
                                           "AI requests cost per ai_provider/cache in Kong", AI_LABELS)
  -- (sic: Kong 3.9 registers the token counter with the cost counter's help text)
  metrics.ai_llm_tokens = prometheus:counter("ai_llm_tokens_total",
                                             "AI requests cost per ai_provider/cache in Kong", AI_TOKEN_LABELS)
  metrics.ai_llm_provider_latency = prometheus:histogram("ai_llm_provider_latency_ms",
                                                         "LLM response Latency for each AI plugins per ai_provider in Kong",
                                                         AI_LABELS, AI_LLM_PROVIDER_LATENCY_BUCKETS)
end

local function init_worker()
  if prometheus then
    prometheus:init_worker()
  end
end

local function configure(configs)
  enabled = configs ~= nil
end

-- reused label tables: the library copies what it keeps
local labels_status = { 0, 0, 0, 0, 0, 0 }
local labels_latency = { 0, 0, 0 }
local labels_bandwidth = { 0, 0, 0, 0, 0 }
local labels_ai = { 0, 0, 0, 0, 0, 0, 0 }
local labels_ai_tokens = { 0, 0, 0, 0, 0, 0, 0, 0 }

local function positive(v)
  return type(v) == "number" and v > 0
end

local function log_ai(ai, workspace)
  -- one entry per use case (ai-proxy writes "proxy"), each counted as one request
  for _, entry in pairs(ai) do
    if type(entry) == "table" then
      local meta = type(entry.meta) == "table" and entry.meta or {}
      local usage = type(entry.usage) == "table" and entry.usage or {}
      local cache = type(entry.cache) == "table" and entry.cache or {}
      labels_ai[1] = meta.provider_name or ""
      labels_ai[2] = meta.request_model or ""
      labels_ai[3] = cache.cache_status or ""
      labels_ai[4] = cache.vector_db or ""
      labels_ai[5] = cache.embeddings_provider or ""
      labels_ai[6] = cache.embeddings_model or ""
      labels_ai[7] = workspace
      metrics.ai_llm_requests:inc(1, labels_ai)
      if positive(usage.cost) then
        metrics.ai_llm_cost:inc(usage.cost, labels_ai)
      end
      if positive(meta.llm_latency) then
        metrics.ai_llm_provider_latency:observe(meta.llm_latency, labels_ai)
      end
      for i = 1, 6 do
        labels_ai_tokens[i] = labels_ai[i]
      end
      labels_ai_tokens[8] = workspace
      for _, kind in ipairs({ "prompt_tokens", "completion_tokens", "total_tokens" }) do
        if positive(usage[kind]) then
          labels_ai_tokens[7] = kind
          metrics.ai_llm_tokens:inc(usage[kind], labels_ai_tokens)
        end
      end
    end
  end
end

--- The log phase of the plugin: `message` is kong.log.serialize(), `serialized` what the handler
-- picked from it per its config.
local function log(message, serialized)
  if not metrics.status then
    kong.log.err("prometheus: can not log metrics because of an initialization error, please make sure ",
                 "that you've declared 'prometheus_metrics' shared dict in your nginx template")
    return
  end
  local service_name = ""
  if message and message.service then
    service_name = message.service.name or message.service.host
  end
  -- no route, no metrics (as in Kong)
  if not (message and message.route) then
    return
  end
  local route_name = message.route.name or message.route.id
  local consumer = serialized.consumer or ""
  local workspace = message.workspace_name or ""

  if serialized.ingress_size or serialized.egress_size then
    labels_bandwidth[1], labels_bandwidth[2] = service_name, route_name
    labels_bandwidth[4], labels_bandwidth[5] = workspace, consumer
    if positive(serialized.ingress_size) then
      labels_bandwidth[3] = "ingress"
      metrics.bandwidth:inc(serialized.ingress_size, labels_bandwidth)
    end
    if positive(serialized.egress_size) then
      labels_bandwidth[3] = "egress"
      metrics.bandwidth:inc(serialized.egress_size, labels_bandwidth)
    end
  end

  if serialized.status_code then
    labels_status[1], labels_status[2], labels_status[3] = service_name, route_name, serialized.status_code
    labels_status[4] = kong.response.get_source() == "service" and "service" or "kong"
    labels_status[5], labels_status[6] = workspace, consumer
    metrics.status:inc(1, labels_status)
  end

  local latencies = serialized.latencies
  if latencies then
    labels_latency[1], labels_latency[2], labels_latency[3] = service_name, route_name, workspace
    if type(latencies.request) == "number" and latencies.request >= 0 then
      metrics.total_latency:observe(latencies.request, labels_latency)
    end
    if type(latencies.proxy) == "number" and latencies.proxy >= 0 then
      metrics.upstream_latency:observe(latencies.proxy, labels_latency)
    end
    if type(latencies.kong) == "number" and latencies.kong >= 0 then
      metrics.kong_latency:observe(latencies.kong, labels_latency)
    end
  end

  if type(serialized.ai_metrics) == "table" then
    log_ai(serialized.ai_metrics, workspace)
  end
end

local function fail_scrape()
  kong.log.err("prometheus: plugin is not initialized, please make sure ",
               " 'prometheus_metrics' shared dict is present in nginx template")
  ngx.status = 500
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.print('{"message":"An unexpected error occurred"}')
end

--- Every metric in the text format (through write_fn, default ngx.print).
local function metric_data(write_fn)
  if not prometheus or not metrics.status then
    return fail_scrape()
  end
  metrics.timers:set(ngx.timer.running_count(), { "running" })
  metrics.timers:set(ngx.timer.pending_count(), { "pending" })
  -- DB-less: the declarative config is the datastore, always reachable
  metrics.db_reachable:set(1)
  local stats = kong.node.get_memory_stats()
  for name, dict in pairs(stats.lua_shared_dicts) do
    metrics.memory.shms:set(dict.allocated_slabs, { node_id, name, "http" })
  end
  for _, vm in ipairs(stats.workers_lua_vms) do
    metrics.memory.worker_vms:set(vm.http_allocated_gc, { node_id, vm.pid, "http" })
  end
  prometheus:metric_data(write_fn, not enabled)
end

--- GET /metrics on the status listener.
local function collect()
  ngx.header["Content-Type"] = "text/plain; charset=UTF-8"
  metric_data()
end

--- The registry other plugins add their metrics to; nil (with an error logged) when the plugin is
-- not initialised.
local function get_prometheus()
  if not prometheus then
    kong.log.err("prometheus: plugin is not initialized, please make sure ",
                 " 'prometheus_metrics' shared dict is present in nginx template")
  end
  return prometheus
end

return {
  init = init,
  init_worker = init_worker,
  configure = configure,
  log = log,
  metric_data = metric_data,
  collect = collect,
  get_prometheus = get_prometheus,
}
