-- Test probe: a plugin that runs after token-rate-limiting (PRIORITY 800 < 905) and refuses the
-- request in access when it carries `x-refuse: 1`, as ai-prompt-guard or a validator would.
local Probe = { PRIORITY = 800, VERSION = "0.1.0" }

function Probe:access()
  if kong.request.get_header("x-refuse") == "1" then
    return kong.response.exit(403, { message = "refused by a later plugin" })
  end
end

return Probe
