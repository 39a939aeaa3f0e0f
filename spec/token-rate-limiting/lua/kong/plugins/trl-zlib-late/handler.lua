-- Test fixture: another zlib binding declared only in the log phase of the first request,
-- after token-rate-limiting declared its own prototypes to decode that response. Logs, per
-- request, whether that binding works.
local binding = require("trl_zlib_h")

local declared, declare_error = false, nil

local Fixture = { PRIORITY = 2, VERSION = "0.1.0" }

function Fixture:log()
  if not declared then
    declared = true
    local ok, err = pcall(binding.declare, "lua-ffi-zlib", "load")
    if not ok then declare_error = "declare: " .. tostring(err) end
  end
  local ok, err = binding.works()
  if declare_error then ok, err = nil, declare_error end
  kong.log.notice("TRL_ZLIB_BINDING ", kong.request.get_header("x-test-id"), " ", ok and "ok" or err)
end

return Fixture
