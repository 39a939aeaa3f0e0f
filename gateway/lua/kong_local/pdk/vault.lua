-- kong.vault (kong/pdk/vault.lua): references are recognised and parsed, never resolved (the local
-- gateway has no vault backends).
local fmt = string.format

local function new()
  local vault = {}
  function vault.is_reference(reference)
    return type(reference) == "string" and reference:sub(1, 8) == "{vault:/" and reference:sub(-1) == "}"
  end
  function vault.parse_reference(reference)
    if not vault.is_reference(reference) then
      return nil, fmt("not a reference [%s]", tostring(reference))
    end
    local name, resource = reference:match("^{vault://([^/]+)/(.-)}$")
    if not name then
      return nil, "invalid reference format"
    end
    return { name = name, resource = resource }
  end
  function vault.get(reference)
    return nil, "vault references are not supported by the local gateway: " .. tostring(reference)
  end
  function vault.update(options) return options end
  function vault.try(callback, options) return callback(options) end
  function vault.flush() end
  function vault.init_worker() end
  function vault.warmup() end
  return vault
end

return { new = new }
