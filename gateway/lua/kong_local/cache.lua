-- kong.cache and kong.core_cache (kong/cache/init.lua, built by kong/global.lua): Kong's
-- get(key, opts, cb, ...) memoisation, here per worker with no shared-dict layer.
-- luacheck: ignore 212/self (the methods keep Kong's `:` signatures)
local _M = {}

function _M.new()
  local store = {}
  local cache = {}
  function cache:get(key, opts, cb, ...)
    local entry = store[key]
    local now = ngx.now()
    if entry and (not entry.expires or entry.expires > now) then
      return entry.value, nil, 1
    end
    if type(cb) ~= "function" then
      return nil
    end
    local ok, value, err, ttl = pcall(cb, ...)
    if not ok then
      return nil, "callback threw an error: " .. tostring(value)
    end
    if err then
      return nil, err
    end
    ttl = ttl or (opts and (value == nil and opts.neg_ttl or opts.ttl)) or 0
    store[key] = { value = value, expires = ttl > 0 and (now + ttl) or nil }
    return value, nil, 3
  end
  function cache:probe(key)
    local entry = store[key]
    if entry then return 0, nil, entry.value end
    return nil
  end
  function cache:invalidate(key) store[key] = nil end
  function cache:invalidate_local(key) store[key] = nil end
  function cache:purge() store = {} end
  function cache:cache_key(...)
    return table.concat({ ... }, ":")
  end
  function cache:safe_set(key, value)
    store[key] = { value = value }
    return true
  end
  return cache
end

return _M
