-- Test probe: writes what token-rate-limiting put into the log serializer to the error log,
-- one line per request, as a logging plugin (http-log, file-log) would send it.
local cjson = require("cjson.safe")

local Probe = { PRIORITY = 1, VERSION = "0.1.0" }

function Probe:log()
  local serialized = kong.log.serialize()
  local entry = {
    request_id = kong.request.get_header("x-test-id"),
    status = serialized.response and serialized.response.status,
    token_rate_limiting = serialized.token_rate_limiting,
  }
  kong.log.notice("TRL_SERIALIZED ", cjson.encode(entry))
end

return Probe
