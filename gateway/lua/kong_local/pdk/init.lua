-- Assembles the `kong` global (kong/pdk/init.lua + kong/global.lua) from the PDK modules.
-- luacheck: ignore 212/self (DAO and cache methods keep Kong's `:` signatures)
local state = require "kong_local.state"
local phases = require "kong_local.phases"
local log = require "kong_local.pdk.log"
local db = require "kong_local.db"

local fmt = string.format

local _M = {}

local VERSION = "3.9.1"
local VERSION_NUM = 3009001

----------------------------------------------------------------------------------------------------
-- kong.ctx: `shared` per request, `plugin` per request and plugin (the runloop names the plugin)

local function new_ctx()
  return setmetatable({}, {
    __index = function(_, k)
      if k ~= "shared" and k ~= "core" and k ~= "plugin" then
        return nil
      end
      local ok, nctx = pcall(function() return ngx.ctx end)
      if not ok or nctx == nil or not require("resty.core.base").get_request() then
        return nil
      end
      if k == "shared" then
        local t = nctx.KONG_SHARED_CTX
        if not t then
          t = {}
          nctx.KONG_SHARED_CTX = t
        end
        return t
      elseif k == "core" then
        local t = nctx.KONG_CORE_CTX
        if not t then
          t = {}
          nctx.KONG_CORE_CTX = t
        end
        return t
      end
      local name = nctx.KONG_CURRENT_PLUGIN or nctx.KONG_LAST_PLUGIN
      if not name then
        return nil
      end
      local all = nctx.KONG_PLUGIN_CTX
      if not all then
        all = {}
        nctx.KONG_PLUGIN_CTX = all
      end
      local t = all[name]
      if not t then
        t = {}
        all[name] = t
      end
      return t
    end,
  })
end

----------------------------------------------------------------------------------------------------
-- kong.node

local function read_first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line
end

local function uuid_v4()
  local b = {}
  for i = 1, 16 do b[i] = math.random(0, 255) end
  b[7] = bit.bor(bit.band(b[7], 0x0f), 0x40)
  b[9] = bit.bor(bit.band(b[9], 0x3f), 0x80)
  return fmt("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", unpack(b))
end

local function new_node()
  local node = {}
  function node.get_id()
    return state.node_id
  end
  function node.get_hostname()
    return state.hostname
  end
  node.hostname = nil
  function node.get_memory_stats(unit, scale)
    unit = unit or "b"
    if type(unit) ~= "string" then error("invalid unit", 2) end
    local divisors = { b = 1, k = 1024, m = 1024 * 1024, g = 1024 * 1024 * 1024 }
    local div = divisors[unit:lower()]
    if not div then
      error("invalid unit '" .. unit .. "' (expected 'k/K', 'm/M', or 'g/G')", 2)
    end
    scale = scale or 2
    local function conv(bytes)
      if unit:lower() == "b" then return bytes end
      return fmt("%." .. scale .. "f %s%s", bytes / div, unit:upper(), "iB")
    end
    local dicts = {}
    for name, dict in pairs(ngx.shared) do
      local capacity = dict:capacity()
      dicts[name] = {
        allocated_slabs = conv(capacity - dict:free_space()),
        capacity = conv(capacity),
      }
    end
    return {
      lua_shared_dicts = dicts,
      workers_lua_vms = {
        { http_allocated_gc = conv(collectgarbage("count") * 1024), pid = ngx.worker.pid() },
      },
    }
  end
  return node
end

----------------------------------------------------------------------------------------------------
-- kong.ip: trusted_ips from KONG_TRUSTED_IPS (Kong's default is none)

local function ipv4_to_int(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

local function new_ip()
  local trusted = {}
  local trust_all = false
  for item in (os.getenv("KONG_TRUSTED_IPS") or ""):gmatch("[^,%s]+") do
    if item == "0.0.0.0/0" or item == "::/0" or item == "unix:" then
      trust_all = true
    else
      local addr, bits = item:match("^([^/]+)/(%d+)$")
      addr = addr or item
      bits = tonumber(bits) or 32
      local n = ipv4_to_int(addr)
      if n then
        local size = 2 ^ (32 - bits)
        local base = math.floor(n / size) * size
        trusted[#trusted + 1] = { from = base, to = base + size - 1 }
      else
        trusted[#trusted + 1] = { exact = addr }
      end
    end
  end
  return {
    is_trusted = function(address)
      if trust_all then return true end
      if type(address) ~= "string" then return false end
      local n = ipv4_to_int(address)
      for _, r in ipairs(trusted) do
        if r.exact and r.exact == address then return true end
        if n and r.from and n >= r.from and n <= r.to then return true end
      end
      return false
    end,
  }
end

----------------------------------------------------------------------------------------------------
-- kong.cache: per-worker memoisation with Kong's get(key, opts, cb, ...) signature

local function new_cache()
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

----------------------------------------------------------------------------------------------------
-- kong.timer (lua-resty-timer-ng subset over ngx.timer)

local function new_timer()
  local timer = {}
  local named = {}
  local function wrap(cb)
    return function(premature, ...)
      return cb(premature, ...)
    end
  end
  function timer:at(delay, cb, ...)
    return ngx.timer.at(delay, wrap(cb), ...)
  end
  function timer:every(interval, cb, ...)
    return ngx.timer.every(interval, wrap(cb), ...)
  end
  function timer:named_at(name, delay, cb, ...)
    named[name] = true
    return ngx.timer.at(delay, function(premature, ...)
      if named[name] then return cb(premature, ...) end
    end, ...)
  end
  function timer:named_every(name, interval, cb, ...)
    named[name] = true
    return ngx.timer.every(interval, function(premature, ...)
      if named[name] then return cb(premature, ...) end
    end, ...)
  end
  function timer:cancel(name)
    named[name] = nil
    return true
  end
  function timer:is_managed() return true end
  return timer
end

----------------------------------------------------------------------------------------------------
-- kong.tracing: no-op tracer (no tracing backend in the local gateway)

local function new_tracing()
  local noop_span = {}
  local span_mt = { __index = function() return function() end end }
  setmetatable(noop_span, span_mt)
  local tracing = {
    name = "noop",
    active_span = function() return nil end,
    set_active_span = function() end,
    start_span = function() return noop_span end,
    create_span = function() return noop_span end,
    link_span = function() end,
    process_span = function(processor)
      phases.check(phases.log)
      if type(processor) ~= "function" then error("processor must be a function", 2) end
    end,
    set_should_sample = function() end,
    get_sampling_decision = function() return false end,
    init_spans = function() end,
    get_spans = function() return {} end,
    get_root_span = function() return nil end,
  }
  tracing.new = function() return tracing end
  tracing.set_global_tracer = function() end
  return setmetatable(tracing, { __call = function() return tracing end })
end

----------------------------------------------------------------------------------------------------
-- kong.vault: references are recognised, never resolved (no vault backends)

local function new_vault()
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

----------------------------------------------------------------------------------------------------
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
  local keyauth = {}
  function keyauth:select_by_key(key)
    return db.find_keyauth_credential(key)
  end
  function keyauth:cache_key(key)
    return "keyauth_credentials:" .. tostring(key) .. ":::::"
  end
  function consumers:cache_key(id)
    return "consumers:" .. tostring(id) .. ":::::"
  end
  return { consumers = consumers, keyauth_credentials = keyauth, strategy = "off" }
end

----------------------------------------------------------------------------------------------------

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

local function new_configuration()
  local gw = state.gateway or {}
  local names = {}
  for _, p in ipairs(state.plugins or {}) do names[#names + 1] = p.name end
  local conf = {
    prefix = state.prefix,
    database = "off",
    role = "traditional",
    router_flavor = "traditional_compatible",
    log_level = gw.log_level or "notice",
    proxy_listeners = { { ip = "127.0.0.1", port = gw.proxy_port, ssl = false, http2 = false } },
    proxy_listen = { gw.listen },
    admin_listen = {},
    status_listen = {},
    plugins = names,
    loaded_plugins = {},
    headers = { "server_tokens", "latency_tokens", "x-kong-request-id" },
    headers_upstream = { "x-kong-request-id" },
    trusted_ips = {},
    real_ip_header = "X-Real-IP",
    real_ip_recursive = "off",
    error_default_type = "text/plain",
    client_body_buffer_size = "8k",
    client_max_body_size = "0",
    upstream_keepalive_pool_size = 60,
    upstream_keepalive_max_requests = 10000,
    upstream_keepalive_idle_timeout = 60,
    mem_cache_size = "128m",
    nginx_http_lua_shared_dict = os.getenv("KONG_NGINX_HTTP_LUA_SHARED_DICT"),
    lua_package_path = package.path,
    dns_order = { "LAST", "SRV", "A", "CNAME" },
    worker_consistency = "eventual",
    anonymous_reports = false,
    untrusted_lua = "sandbox",
    allow_debug_header = false,
    tracing_instrumentations = { "off" },
    tracing_sampling_rate = 0.01,
  }
  for _, n in ipairs(names) do conf.loaded_plugins[n] = true end
  -- Kong's configuration table is read-only for plugins
  return setmetatable({}, {
    __index = conf,
    __newindex = function() error("cannot write to Kong configuration", 2) end,
    __pairs = function() return next, conf, nil end,
  })
end

function _M.new()
  state.node_id = state.node_id or uuid_v4()
  state.hostname = state.hostname or read_first_line("/proc/sys/kernel/hostname")
                   or read_first_line("/etc/hostname") or "localhost"

  local service = require "kong_local.pdk.service"
  local kong = {
    version = VERSION,
    version_num = VERSION_NUM,
    pdk_major_version = 1,
    pdk_version = "1.5.0",
    log = log.proxy,
    ctx = new_ctx(),
    request = require "kong_local.pdk.request",
    response = require "kong_local.pdk.response",
    service = service,
    client = require "kong_local.pdk.client",
    node = new_node(),
    ip = new_ip(),
    cache = new_cache(),
    core_cache = new_cache(),
    timer = new_timer(),
    tracing = new_tracing(),
    vault = new_vault(),
    db = new_db(),
    worker_events = noop_events(),
    cluster_events = noop_events(),
    dns = nil,
    router = {
      get_route = function()
        phases.check(phases.router)
        return ngx.ctx.route
      end,
      get_service = function()
        phases.check(phases.router)
        return ngx.ctx.service
      end,
    },
    plugin = {
      get_id = function()
        return ngx.ctx.plugin_id
      end,
    },
    nginx = {
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
    },
    table = {
      new = require "table.new",
      clear = require "table.clear",
      merge = function(t1, t2)
        local res = {}
        if t1 then for k, v in pairs(t1) do res[k] = v end end
        if t2 then for k, v in pairs(t2) do res[k] = v end end
        return res
      end,
    },
    cluster = {
      get_id = function()
        return state.node_id
      end,
    },
    telemetry = {
      log = function() end,
    },
  }
  kong.dns = {
    toip = function(_, host)
      return require("kong_local.resolver").resolve(host)
    end,
  }
  -- kong.configuration is built lazily: the plugin list is known only after loading
  setmetatable(kong, {
    __index = function(t, k)
      if k == "configuration" then
        local c = new_configuration()
        rawset(t, "configuration", c)
        return c
      end
    end,
  })
  _M.kong = kong
  return kong
end

--- Per-worker setup after fork.
function _M.init_worker()
  -- rebuild the configuration so that it lists the loaded plugins
  if _M.kong then
    rawset(_M.kong, "configuration", new_configuration())
  end
end

return _M
