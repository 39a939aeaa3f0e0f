-- Test fixture: another zlib binding declared when the plugin modules load, before
-- token-rate-limiting declares anything (as lua-ffi-zlib is in real Kong, through
-- kong.tools.gzip). Logs, per request, whether that binding still works.
local binding = require("trl_zlib_h")

binding.declare("lua-ffi-zlib", "load")

local Fixture = { PRIORITY = 2, VERSION = "0.1.0" }

function Fixture:log()
  local ok, err = binding.works()
  kong.log.notice("TRL_ZLIB_BINDING ", kong.request.get_header("x-test-id"), " ", ok and "ok" or err)
end

return Fixture
