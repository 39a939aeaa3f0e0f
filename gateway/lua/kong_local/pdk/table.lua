-- kong.table (kong/pdk/table.lua): LuaJIT's table.new/table.clear and a shallow merge.
local function merge(t1, t2)
  local res = {}
  if t1 then for k, v in pairs(t1) do res[k] = v end end
  if t2 then for k, v in pairs(t2) do res[k] = v end end
  return res
end

local function new()
  return {
    new = require "table.new",
    clear = require "table.clear",
    merge = merge,
  }
end

return { new = new }
