-- Loading plugins and resolving their configuration the way Kong 3.9 does
-- (kong/db/dao/plugins.lua, kong/runloop/plugins_iterator.lua).
local fmt = string.format
local concat = table.concat

local _M = {}

local null = ngx and ngx.null

local BUNDLED = {}
for _, name in ipairs({
  "jwt", "acl", "correlation-id", "cors", "oauth2", "tcp-log", "udp-log", "file-log", "http-log",
  "key-auth", "hmac-auth", "basic-auth", "ip-restriction", "request-transformer",
  "response-transformer", "request-size-limiting", "rate-limiting", "response-ratelimiting",
  "syslog", "loggly", "datadog", "ldap-auth", "statsd", "bot-detection", "aws-lambda",
  "request-termination", "prometheus", "proxy-cache", "session", "acme", "grpc-gateway",
  "grpc-web", "pre-function", "post-function", "azure-functions", "zipkin", "opentelemetry",
  "ai-proxy", "ai-prompt-decorator", "ai-prompt-template", "ai-prompt-guard",
  "ai-request-transformer", "ai-response-transformer", "standard-webhooks", "redirect",
}) do
  BUNDLED[name] = true
end
_M.BUNDLED = BUNDLED

local PHASE_METHODS = {
  "init_worker", "configure", "certificate", "rewrite", "access", "response", "header_filter",
  "body_filter", "log",
}
_M.PHASE_METHODS = PHASE_METHODS

-- protocols of the http subsystem (constants.PROTOCOLS_WITH_SUBSYSTEM)
local HTTP_PROTOCOLS = { http = true, https = true, grpc = true, grpcs = true, ws = true, wss = true }

local function nonnull(v)
  if v == null then return nil end
  return v
end

--- Kong's PRIORITY / VERSION / response-vs-filters checks on a loaded handler table.
-- Returns the cleaned handler fields, or nil and Kong's error message.
function _M.validate_handler(name, handler)
  if type(handler) ~= "table" then
    return nil, fmt('Plugin "%s" cannot be loaded because its handler module does not return a table', name)
  end
  local prio = handler.PRIORITY
  if type(prio) ~= "number" or prio ~= prio or prio == math.huge or prio == -math.huge
     or math.floor(prio) ~= prio then
    return nil, fmt('Plugin "%s" cannot be loaded because its PRIORITY field is not a valid integer number', name)
  end
  local version = handler.VERSION
  local ok = false
  if type(version) == "string" then
    local parts = {}
    for p in version:gmatch("[^%.]+") do parts[#parts + 1] = p end
    -- Kong parses with the `version` rock: up to three numeric components, no fourth
    if #parts >= 1 and #parts <= 3 then
      ok = true
      for _, p in ipairs(parts) do
        if not p:match("^%d+$") then ok = false end
      end
      if ok then
        while #parts < 3 do parts[#parts + 1] = "0" end
        handler.VERSION = concat(parts, ".")
      end
    end
  end
  if not ok then
    return nil, fmt('Plugin "%s" cannot be loaded because its VERSION field does not follow the "x.y.z" format', name)
  end
  if type(handler.response) == "function" and
     (type(handler.header_filter) == "function" or type(handler.body_filter) == "function") then
    return nil, fmt('Plugin "%s" can\'t be loaded because it implements both `response` and ' ..
                    '`header_filter` or `body_filter` methods.\n', name)
  end
  return handler
end

--- Whether a Lua module is resolvable on package.path, without running it.
function _M.module_exists(modname)
  return package.searchpath(modname, package.path) ~= nil
end

--- Kong's sort_by_handler_priority: PRIORITY descending, equal non-zero priorities by name
-- descending (reverse alphabetical).
function _M.sort(plugins)
  table.sort(plugins, function(a, b)
    local pa = a.handler.PRIORITY or 0
    local pb = b.handler.PRIORITY or 0
    if pa == pb then
      return a.name > b.name
    end
    return pa > pb
  end)
  return plugins
end

--- Key of a plugin instance's scope.
function _M.combo_key(route_id, service_id, consumer_id)
  return (route_id or "") .. ":" .. (service_id or "") .. ":" .. (consumer_id or "")
end
local combo_key = _M.combo_key

--- Kong's lookup order (plugins_iterator lookup_cfg): the most specific scope wins.
function _M.lookup(configs, route_id, service_id, consumer_id)
  if not configs then return nil end
  local c
  if consumer_id then
    if route_id and service_id then
      c = configs[combo_key(route_id, service_id, consumer_id)]
      if c then return c end
    end
    if route_id then
      c = configs[combo_key(route_id, nil, consumer_id)]
      if c then return c end
    end
    if service_id then
      c = configs[combo_key(nil, service_id, consumer_id)]
      if c then return c end
    end
  end
  if route_id and service_id then
    c = configs[combo_key(route_id, service_id, nil)]
    if c then return c end
  end
  if consumer_id then
    c = configs[combo_key(nil, nil, consumer_id)]
    if c then return c end
  end
  if route_id then
    c = configs[combo_key(route_id, nil, nil)]
    if c then return c end
  end
  if service_id then
    c = configs[combo_key(nil, service_id, nil)]
    if c then return c end
  end
  return configs[combo_key(nil, nil, nil)]
end

--- Kong's should_process_plugin: enabled and at least one protocol of the http subsystem.
function _M.should_process(entity)
  if entity.enabled == false then return false end
  local protocols = nonnull(entity.protocols)
  if not protocols then return true end
  for _, p in ipairs(protocols) do
    if HTTP_PROTOCOLS[p] then return true end
  end
  return false
end

--- The `conf` table Kong passes to handlers: the validated config plus get_plugin_config's keys.
function _M.build_conf(entity, config)
  local conf = config or {}
  local route = nonnull(entity.route)
  local service = nonnull(entity.service)
  local consumer = nonnull(entity.consumer)
  conf.route_id = route and route.id or nil
  conf.service_id = service and service.id or nil
  conf.consumer_id = consumer and consumer.id or nil
  conf.plugin_instance_name = nonnull(entity.instance_name)
  conf.__plugin_id = entity.id
  conf.__key__ = fmt("plugins:%s:%s:%s:%s:default", entity.name, conf.route_id or "", conf.service_id or "",
                     conf.consumer_id or "")
  conf.__seq__ = 0
  return conf
end

return _M
