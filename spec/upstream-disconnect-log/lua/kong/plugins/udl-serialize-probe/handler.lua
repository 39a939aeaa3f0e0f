-- Test fixture: see schema.lua; also writes token-rate-limiting's serialized counts.
local cjson = require("cjson.safe")

local Probe = { PRIORITY = 9, VERSION = "0.1.0" }

function Probe:log()
  local serialized = kong.log.serialize()
  local value = serialized.upstream_disconnect
  if value ~= nil then
    kong.log.notice("[udl-serialized] ", cjson.encode(value))
  else
    kong.log.notice("[udl-serialized] none")
  end
  -- What token-rate-limiting charged, when it ran, to compare with the record's tokens.
  local trl = serialized.token_rate_limiting
  if trl ~= nil then
    kong.log.notice("[udl-trl-serialized] ", cjson.encode({ request_id = ngx.var.kong_request_id, prompt = trl.prompt,
      completion = trl.completion, total = trl.total, estimated = trl.estimated, source = trl.source }))
  end
end

return Probe
