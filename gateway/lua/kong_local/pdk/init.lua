-- The PDK part of the `kong` global (kong/pdk/init.lua): kong.configuration and one module per
-- file of kong/pdk/, each in the same-named file here. kong_local.global adds the rest.
local state = require "kong_local.state"
local log = require "kong_local.pdk.log"

local _M = {}

-- Kong's pdk_version of 3.9 (kong/pdk/init.lua)
local PDK_MAJOR_VERSION = 1
local PDK_VERSION = "1.5.0"

-- modules with per-gateway state are built by their new(); the others are plain tables
local MODULES = { "table", "node", "ctx", "ip", "router", "nginx", "cluster", "vault", "tracing", "plugin",
                  "telemetry" }

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

--- Fills `self` (the `kong` global) with the PDK.
function _M.new(self)
  self.pdk_major_version = PDK_MAJOR_VERSION
  self.pdk_version = PDK_VERSION
  self.log = log.proxy
  self.request = require "kong_local.pdk.request"
  self.response = require "kong_local.pdk.response"
  self.service = require "kong_local.pdk.service"
  self.client = require "kong_local.pdk.client"
  for _, name in ipairs(MODULES) do
    self[name] = require("kong_local.pdk." .. name).new()
  end
  -- kong.configuration is built lazily: the plugin list is known only after loading
  setmetatable(self, {
    __index = function(t, k)
      if k == "configuration" then
        local c = new_configuration()
        rawset(t, "configuration", c)
        return c
      end
    end,
  })
  return self
end

--- Per-worker setup after fork: the configuration now lists the loaded plugins.
function _M.init_worker(self)
  rawset(self, "configuration", new_configuration())
end

return _M
