-- Test fixture: see schema.lua.
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
end

return Probe
