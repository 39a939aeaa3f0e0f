-- kong.ctx (kong/pdk/ctx.lua): `shared` per request, `plugin` per request and plugin (the runloop
-- names the running plugin), `core` for the gateway itself; all live in ngx.ctx.
local base = require "resty.core.base"

local get_request = base.get_request

-- ngx.ctx raises outside a request; asking for the request first (as Kong's ctx.lua does) costs
-- no closure or pcall, so a plugin's filter that reads kong.ctx stays in the JIT's trace.
local function request_ctx()
  if not get_request() then
    return nil
  end
  return ngx.ctx
end

local function sub_table(parent, key)
  local t = parent[key]
  if not t then
    t = {}
    parent[key] = t
  end
  return t
end

local function new()
  return setmetatable({}, {
    __index = function(_, k)
      if k ~= "shared" and k ~= "core" and k ~= "plugin" then
        return nil
      end
      local nctx = request_ctx()
      if not nctx then
        return nil
      end
      if k == "shared" then
        return sub_table(nctx, "KONG_SHARED_CTX")
      elseif k == "core" then
        return sub_table(nctx, "KONG_CORE_CTX")
      end
      local name = nctx.KONG_CURRENT_PLUGIN or nctx.KONG_LAST_PLUGIN
      if not name then
        return nil
      end
      return sub_table(sub_table(nctx, "KONG_PLUGIN_CTX"), name)
    end,
  })
end

return { new = new }
