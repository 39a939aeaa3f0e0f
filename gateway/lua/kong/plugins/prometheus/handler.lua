-- The bundled prometheus plugin of Kong 3.9 (kong/plugins/prometheus/handler.lua), for the local
-- gateway: PRIORITY 13, and a log phase that hands the log serializer's table to the exporter with
-- what the config asks for (per_consumer, status codes, latencies, bandwidth, the `ai` namespace).
local exporter = require "kong.plugins.prometheus.exporter"
local kong_meta = require "kong.meta"

local kong = kong
local tonumber = tonumber

-- as Kong: the registry exists as soon as the plugin is loaded (init phase), before any worker
exporter.init()

local PrometheusHandler = {
  PRIORITY = 13,
  VERSION = kong_meta.version,
}

function PrometheusHandler.init_worker(_)
  exporter.init_worker()
end

function PrometheusHandler.configure(_, configs)
  exporter.configure(configs)
end

function PrometheusHandler.log(_, conf)
  local message = kong.log.serialize()
  local serialized = {}
  if conf.per_consumer and message.consumer ~= nil then
    serialized.consumer = message.consumer.username
  end
  if conf.status_code_metrics and message.response then
    serialized.status_code = message.response.status
  end
  if conf.bandwidth_metrics then
    serialized.egress_size = message.response and tonumber(message.response.size)
    serialized.ingress_size = message.request and tonumber(message.request.size)
  end
  if conf.latency_metrics then
    serialized.latencies = message.latencies
  end
  if conf.ai_metrics then
    serialized.ai_metrics = message.ai
  end
  exporter.log(message, serialized)
end

return PrometheusHandler
