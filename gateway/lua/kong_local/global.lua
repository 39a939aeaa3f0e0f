-- Builds the `kong` global as kong/global.lua does: the version fields, the PDK (kong_local.pdk),
-- then what Kong creates outside the PDK: caches, timer, events, db and dns.
-- luacheck: ignore 212/self (DAO methods keep Kong's `:` signatures)
local meta = require "kong.meta"
local pdk = require "kong_local.pdk"
local db = require "kong_local.db"

local _M = {}

-- kong.db: read-only DAOs over the declarative entities (consumers, keyauth_credentials)
local function new_db()
  local consumers = {}
  function consumers:select(pk)
    if type(pk) ~= "table" or type(pk.id) ~= "string" then
      return nil, "primary key must be a table with an id"
    end
    return db.find_consumer(pk.id, false)
  end
  function consumers:select_by_username(username)
    return db.find_consumer(username, true)
  end
  function consumers:select_by_custom_id(custom_id)
    return db.find_consumer_by_custom_id(custom_id)
  end
  function consumers:cache_key(id)
    return "consumers:" .. tostring(id) .. ":::::"
  end
  local keyauth = {}
  function keyauth:select_by_key(key)
    return db.find_keyauth_credential(key)
  end
  function keyauth:cache_key(key)
    return "keyauth_credentials:" .. tostring(key) .. ":::::"
  end
  return { consumers = consumers, keyauth_credentials = keyauth, strategy = "off" }
end

-- worker_events and cluster_events: one gateway with nothing to tell other nodes
local function noop_events()
  return {
    register = function() end,
    unregister = function() end,
    post = function() return true end,
    post_local = function() return true end,
    broadcast = function() return true end,
    subscribe = function() end,
    poll = function() return "done" end,
  }
end

function _M.new()
  local v = meta._VERSION_TABLE
  local kong = {
    version = meta._VERSION,
    -- 3.9.1 -> 3009001, as kong/global.lua computes it
    version_num = tonumber(string.format("%d%.2d%.2d", v.major * 100, v.minor * 10, v.patch)),
  }
  pdk.new(kong)
  kong.cache = require("kong_local.cache").new()
  kong.core_cache = require("kong_local.cache").new()
  kong.timer = require("kong_local.timer").new()
  kong.worker_events = noop_events()
  kong.cluster_events = noop_events()
  kong.db = new_db()
  kong.dns = {
    toip = function(_, host)
      return require("kong_local.resolver").resolve(host)
    end,
  }
  _M.kong = kong
  return kong
end

function _M.init_worker()
  if _M.kong then
    pdk.init_worker(_M.kong)
  end
end

return _M
