-- kong.nginx (kong/pdk/nginx.lua): the subsystem and the connection counters of stub_status.
local function new()
  return {
    get_subsystem = function()
      return ngx.config.subsystem
    end,
    get_statistics = function()
      local var = ngx.var
      return {
        connections_active = tonumber(var.connections_active),
        connections_reading = tonumber(var.connections_reading),
        connections_writing = tonumber(var.connections_writing),
        connections_waiting = tonumber(var.connections_waiting),
        connections_accepted = 0,
        connections_handled = 0,
        total_requests = 0,
      }
    end,
  }
end

return { new = new }
