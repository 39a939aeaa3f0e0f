-- Test probe: writes what the log serializer carries for each request (Kong's `ai` namespace, as
-- file-log and http-log would send it) to the error log, one line per request, with the number of
-- kong_ai_gateway_* samples in Kong's prometheus shared dict (0 where nothing was ever counted).
-- Last in the log phase (PRIORITY 1), after every plugin that writes to the serializer.
local cjson = require "cjson.safe"

local Probe = { PRIORITY = 1, VERSION = "0.1.0" }

local function gateway_samples()
  local dict = ngx.shared.prometheus_metrics
  if not dict then return -1 end
  local n = 0
  for _, key in ipairs(dict:get_keys(0)) do
    if key:find("ai_gateway_", 1, true) then n = n + 1 end
  end
  return n
end

function Probe:log()
  local serialized = kong.log.serialize()
  kong.log.notice("AI_SERIALIZED ", cjson.encode({
    id = kong.request.get_header("x-test-id"),
    status = serialized.response and serialized.response.status,
    ai = serialized.ai,
    gateway_samples = gateway_samples(),
  }))
end

return Probe
