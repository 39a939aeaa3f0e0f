-- Stand-in for Kong's kong.db.schema.typedefs while loading scaffolded schemas in a bare nginx:
-- each typedef is a table naming itself, callable with overrides like Kong's Schema.define tables.
local function typedef(name, overrides)
  local def = { typedef = name }
  for k, v in pairs(overrides or {}) do def[k] = v end
  return setmetatable(def, {
    __call = function(self, more)
      local copy = {}
      for k, v in pairs(self) do copy[k] = v end
      for k, v in pairs(more) do copy[k] = v end
      return copy
    end,
  })
end

return setmetatable({}, {
  __index = function(cache, name)
    local def = typedef(name)
    rawset(cache, name, def)
    return def
  end,
})
