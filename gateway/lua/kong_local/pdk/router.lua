-- kong.router (kong/pdk/router.lua): the route and service the runloop matched for this request.
local phases = require "kong_local.phases"

local function new()
  return {
    get_route = function()
      phases.check(phases.router)
      return ngx.ctx.route
    end,
    get_service = function()
      phases.check(phases.router)
      return ngx.ctx.service
    end,
  }
end

return { new = new }
