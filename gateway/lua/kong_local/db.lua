-- The entities of the declarative config, looked up as the bundled auth plugins look them up
-- through kong.db / kong.cache in Kong. Read-only: the gateway runs DB-less.
local state = require "kong_local.state"

local _M = {}

local consumers_by_id, consumers_by_username, consumers_by_custom_id, credentials_by_key

--- Builds the indexes; called once from init with the normalised config.
function _M.load(config)
  consumers_by_id, consumers_by_username, consumers_by_custom_id, credentials_by_key = {}, {}, {}, {}
  for _, c in ipairs(config.consumers or {}) do
    local consumer = {
      id = c.id,
      username = c.username ~= ngx.null and c.username or nil,
      custom_id = c.custom_id ~= ngx.null and c.custom_id or nil,
      tags = c.tags ~= ngx.null and c.tags or nil,
      created_at = state.created_at,
      updated_at = state.created_at,
    }
    consumers_by_id[consumer.id] = consumer
    if consumer.username then consumers_by_username[consumer.username] = consumer end
    if consumer.custom_id then consumers_by_custom_id[consumer.custom_id] = consumer end
  end
  for _, k in ipairs(config.keyauth_credentials or {}) do
    credentials_by_key[k.key] = {
      id = k.id,
      key = k.key,
      consumer = { id = k.consumer.id },
      ttl = k.ttl ~= ngx.null and k.ttl or nil,
      tags = k.tags ~= ngx.null and k.tags or nil,
      created_at = state.created_at,
    }
  end
end

local function copy(t)
  if t == nil then return nil end
  local out = {}
  for k, v in pairs(t) do
    out[k] = type(v) == "table" and copy(v) or v
  end
  return out
end

--- The key-auth credential whose key is `key`, or nil. A copy: callers may keep or change it.
function _M.find_keyauth_credential(key)
  if type(key) ~= "string" or not credentials_by_key then
    return nil
  end
  return copy(credentials_by_key[key])
end

--- The consumer with this id, else with this username, else nil.
function _M.find_consumer(id_or_username, search_by_username)
  if type(id_or_username) ~= "string" or not consumers_by_id then
    return nil
  end
  local c = consumers_by_id[id_or_username]
  if not c and search_by_username ~= false then
    c = consumers_by_username[id_or_username]
  end
  return copy(c)
end

--- The consumer with this custom_id, or nil.
function _M.find_consumer_by_custom_id(custom_id)
  return copy(consumers_by_custom_id and consumers_by_custom_id[custom_id])
end

return _M
