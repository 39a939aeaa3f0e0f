-- kong.log (kong/pdk/log.lua): one function per nginx level, callable as kong.log(...) = notice,
-- lines written raw as "[kong] <file>:<line> [<namespace>] <message>"; the runloop swaps in a
-- logger namespaced with the running plugin's name around every handler call, as Kong does.
local errlog = require "ngx.errlog"
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"
local cjson = require "cjson.safe"

local raw_log = errlog.raw_log
local getinfo = debug.getinfo
local concat = table.concat
local fmt = string.format
local tostring = tostring
local select = select

local _M = {}

local LEVELS = {
  debug = ngx.DEBUG, info = ngx.INFO, notice = ngx.NOTICE, warn = ngx.WARN,
  err = ngx.ERR, crit = ngx.CRIT, alert = ngx.ALERT, emerg = ngx.EMERG,
}
local LEVEL_ORDER = { "debug", "info", "notice", "warn", "err", "crit", "alert", "emerg" }

-- Kong truncates log lines longer than this (errlog's own limit is 4 KiB per line)
local MAX_MSG = 4000

local pretty
do
  local ok, p = pcall(require, "pl.pretty")
  if ok then
    pretty = function(v)
      if type(v) == "table" then
        local ok2, s = pcall(p.write, v, "  ")
        if ok2 and s then return s end
      end
      if type(v) == "string" then return fmt("%q", v) end
      return tostring(v)
    end
  else
    pretty = function(v)
      if type(v) == "table" then return cjson.encode(v) or tostring(v) end
      if type(v) == "string" then return fmt("%q", v) end
      return tostring(v)
    end
  end
end

local function short_src(level)
  local info = getinfo(level, "Sl")
  if not info then
    return "?", 0
  end
  local src = info.short_src or "?"
  src = src:match("([^/]+)$") or src
  return src, info.currentline or 0
end

local function build(namespace, stack_level, sep, transform, ...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    parts[i] = transform and transform(v) or tostring(v)
  end
  local msg = concat(parts, sep)
  if #msg > MAX_MSG then
    msg = msg:sub(1, MAX_MSG) .. "...(truncated)"
  end
  local file, line = short_src(stack_level)
  if namespace then
    return fmt("[kong] %s:%d [%s] %s", file, line, namespace, msg)
  end
  return fmt("[kong] %s:%d %s", file, line, msg)
end

local function gen_level(lvl, namespace, sep, transform)
  return function(...)
    -- stack seen from short_src: short_src, build, this function, caller
    return raw_log(lvl, build(namespace, 4, sep, transform, ...))
  end
end

local loggers = {}

local log_mt = {}
log_mt.__index = log_mt
log_mt.__call = function(self, ...)
  return raw_log(ngx.NOTICE, build(self._namespace, 4, "", nil, ...))
end

--- A logger for `namespace` (nil = core, no namespace in the line).
function _M.new(namespace)
  local key = namespace or "\0core"
  if loggers[key] then
    return loggers[key]
  end
  local self = setmetatable({ _namespace = namespace }, log_mt)
  for _, name in ipairs(LEVEL_ORDER) do
    self[name] = gen_level(LEVELS[name], namespace, "", nil)
  end
  local inspect_enabled = true
  self.inspect = setmetatable({
    on = function() inspect_enabled = true end,
    off = function() inspect_enabled = false end,
    print = function(...)
      if not inspect_enabled then return end
      return raw_log(ngx.NOTICE, build(namespace, 4, " ", pretty, ...))
    end,
  }, {
    __call = function(_, ...)
      if not inspect_enabled then return end
      return raw_log(ngx.NOTICE, build(namespace, 4, " ", pretty, ...))
    end,
  })
  self.deprecation = setmetatable({}, {
    __call = function(_, ...)
      return raw_log(ngx.WARN, build(namespace, 4, "", nil, ...))
    end,
  })
  self.set_format = function() end
  self.new = function(ns) return _M.new(ns) end
  self.set_serialize_value = _M.set_serialize_value
  self.serialize = _M.serialize
  loggers[key] = self
  return self
end


----------------------------------------------------------------------------------------------------
-- set_serialize_value / serialize

local function is_valid_value(v, visited)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or t == "string" then
    return true
  end
  if t ~= "table" then
    return false
  end
  visited = visited or {}
  if visited[v] then return false end
  visited[v] = true
  for k, val in pairs(v) do
    local tk = type(k)
    if tk ~= "string" and tk ~= "number" then return false end
    if not is_valid_value(val, visited) then return false end
  end
  visited[v] = nil
  return true
end

function _M.set_serialize_value(key, value, options)
  phases.check(phases.with_ctx)
  options = options or {}
  local mode = options.mode or "set"
  checks.arg_type(key, "string", "key")
  if mode ~= "set" and mode ~= "add" and mode ~= "replace" then
    error("mode must be 'set', 'add' or 'replace'", 2)
  end
  if not is_valid_value(value) then
    error("value must be nil, a number, string, boolean or a non-self-referencial table containing numbers, string and booleans", 2)
  end
  local ctx = ngx.ctx
  ctx.serialize_values = ctx.serialize_values or {}
  table.insert(ctx.serialize_values, { key = key, value = value, mode = mode })
end

local function deep_copy(t, seen)
  if type(t) ~= "table" then return t end
  seen = seen or {}
  if seen[t] then return seen[t] end
  local out = {}
  seen[t] = out
  for k, v in pairs(t) do
    out[k] = deep_copy(v, seen)
  end
  return out
end

local function split_key(key)
  local parts = {}
  for p in key:gmatch("[^%.]+") do parts[#parts + 1] = p end
  return parts
end

local function apply_value(root, key, value, mode)
  local parts = split_key(key)
  local t = root
  for i = 1, #parts - 1 do
    local p = parts[i]
    if type(t[p]) ~= "table" then
      if mode == "replace" then return end
      t[p] = {}
    end
    t = t[p]
  end
  local last = parts[#parts]
  local exists = t[last] ~= nil
  if mode == "set" or (mode == "add" and not exists) or (mode == "replace" and exists) then
    t[last] = deep_copy(value)
  end
end

local function redact_headers(headers)
  if headers.authorization then headers.authorization = "REDACTED" end
  if headers["proxy-authorization"] then headers["proxy-authorization"] = "REDACTED" end
  return headers
end

--- The basic log serializer table Kong builds (kong/pdk/log.lua serialize, http subsystem).
function _M.serialize(options) -- luacheck: ignore 212 (Kong's options only tune header redaction)
  phases.check(phases.log)
  local ctx = ngx.ctx
  local var = ngx.var

  local req_headers = ngx.req.get_headers(100)
  req_headers = redact_headers(deep_copy(req_headers))
  local resp_headers = deep_copy(ngx.resp.get_headers(100))

  local authenticated_entity
  if ctx.authenticated_credential then
    authenticated_entity = {
      id = ctx.authenticated_credential.id,
      consumer_id = ctx.authenticated_credential.consumer_id
        or (ctx.authenticated_credential.consumer and ctx.authenticated_credential.consumer.id),
    }
  end

  local request_tls
  if var.https == "on" then
    request_tls = { version = var.ssl_protocol, cipher = var.ssl_cipher, client_verify = var.ssl_client_verify }
  end

  local host_port = ctx.host_port or tonumber(var.server_port)
  local upstream_uri = var.upstream_uri or ""
  if upstream_uri ~= "" and not upstream_uri:find("?", 1, true) then
    local args = var.args
    if args and args ~= "" then
      upstream_uri = upstream_uri .. "?" .. args
    end
  end

  local started_at = ctx.KONG_PROCESSING_START or (ngx.req.start_time() * 1000)
  local response_source = kong and kong.response.get_source(ctx) or nil

  local root = {
    response = {
      status = ngx.status,
      headers = resp_headers,
      size = tonumber(var.bytes_sent) or 0,
    },
    route = deep_copy(ctx.route),
    service = deep_copy(ctx.service),
    request = {
      id = ctx.request_id or var.kong_request_id,
      uri = var.request_uri,
      url = var.scheme .. "://" .. var.host .. ":" .. tostring(host_port) .. var.request_uri,
      querystring = ngx.req.get_uri_args(100),
      method = ngx.req.get_method(),
      headers = req_headers,
      size = tonumber(var.request_length) or 0,
      tls = request_tls,
    },
    upstream_uri = upstream_uri,
    upstream_status = var.upstream_status,
    tries = ctx.balancer_data and deep_copy(ctx.balancer_data.tries) or nil,
    latencies = {
      kong = (ctx.KONG_PROXY_LATENCY or ctx.KONG_RESPONSE_LATENCY or 0) + (ctx.KONG_RECEIVE_TIME or 0),
      proxy = ctx.KONG_WAITING_TIME or -1,
      request = math.floor((tonumber(var.request_time) or 0) * 1000 + 0.5),
      receive = ctx.KONG_RECEIVE_TIME or 0,
    },
    authenticated_entity = authenticated_entity,
    consumer = deep_copy(ctx.authenticated_consumer),
    client_ip = var.remote_addr,
    started_at = started_at,
    source = response_source,
    workspace = "00000000-0000-0000-0000-000000000000",
    workspace_name = "default",
  }

  for _, item in ipairs(ctx.serialize_values or {}) do
    apply_value(root, item.key, item.value, item.mode)
  end
  return root
end


----------------------------------------------------------------------------------------------------
-- kong.log: which plugin's namespace a call belongs to is a property of the request, not of the
-- worker: a plugin that yields (reading a body, a cosocket) lets other requests run their plugins
-- in between. So, as Kong's kong/global.lua set_namespaced_log does with ctx.KONG_LOG, the current
-- logger is kept in ngx.ctx, and kong.log is a proxy that looks it up at each use.

local core = _M.new(nil) -- created last, so it carries set_serialize_value and serialize
_M.core = core

local get_phase = ngx.get_phase
local REQUEST_PHASES = {
  rewrite = true, access = true, content = true, balancer = true,
  header_filter = true, body_filter = true, log = true,
}
-- init_worker and configure run outside any request, one plugin at a time
local worker_logger = core

local function current()
  if REQUEST_PHASES[get_phase()] then
    return ngx.ctx.KONG_LOG or core
  end
  return worker_logger
end

_M.proxy = setmetatable({}, {
  __index = function(_, k) return current()[k] end,
  __call = function(_, ...) return current()(...) end,
  __newindex = function() error("kong.log cannot be modified", 2) end,
})

function _M.set_namespace(name, ctx)
  if ctx then
    ctx.KONG_LOG = _M.new(name)
  else
    worker_logger = _M.new(name)
  end
end

function _M.reset_namespace(ctx)
  if ctx then
    ctx.KONG_LOG = nil
  else
    worker_logger = core
  end
end

return _M
