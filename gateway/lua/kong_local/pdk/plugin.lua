-- kong.plugin (kong/pdk/plugin.lua): the id of the plugin instance running now (the runloop sets
-- ngx.ctx.plugin_id before each handler call).
local function new()
  return {
    get_id = function()
      return ngx.ctx.plugin_id
    end,
  }
end

return { new = new }
