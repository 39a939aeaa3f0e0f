-- kong.service, kong.service.request and kong.service.response (kong/pdk/service*.lua):
-- the connection to the upstream, the request sent to it and the response it returned.
local cjson = require "cjson.safe"
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local fmt = string.format
local lower = string.lower
local find = string.find
local sub = string.sub
local gsub = string.gsub

local service = {}
local request = {}
local response = {}
service.request = request
service.response = response

local function is_int(v)
  return type(v) == "number" and math.floor(v) == v
end

local function balancer_data()
  local ctx = ngx.ctx
  local bd = ctx.balancer_data
  if not bd then
    -- rewrite-phase calls: the runloop merges these into the real balancer data in access
    bd = { pending = true }
    ctx.balancer_data = bd
  end
  return bd
end

----------------------------------------------------------------------------------------------------
-- kong.service

function service.set_upstream(host)
  check(phases.access)
  checks.arg_type(host, "string", "host")
  -- DB-less config of this gateway has no upstream entities
  return nil, "could not find an Upstream named '" .. host .. "'"
end

function service.set_target(host, port)
  check(phases.access_rewrite_balancer_preread)
  checks.arg_type(host, "string", "host")
  if not is_int(port) then
    error("port must be an integer", 2)
  end
  if port < 0 or port > 65535 then
    error("port must be an integer between 0 and 65535: given " .. port, 2)
  end
  local bd = balancer_data()
  bd.host = host
  bd.port = port
  bd.ip = nil
  bd.target_set = true
end

function service.set_target_retry_callback(retry_callback)
  check(phases.access)
  if type(retry_callback) ~= "function" then
    error("retry_callback must be a function", 2)
  end
  balancer_data().retry_callback = retry_callback
end

function service.set_retries(retries)
  check(phases.access)
  if not is_int(retries) then
    error("retries must be an integer", 2)
  end
  if retries < 0 or retries > 32767 then
    error("port must be an integer between 0 and 32767: given " .. retries, 2)
  end
  balancer_data().retries = retries
end

function service.set_timeouts(connect_timeout, write_timeout, read_timeout)
  check(phases.access)
  local max = 2 ^ 31 - 2
  for name, v in pairs({ connect_timeout = connect_timeout, write_timeout = write_timeout,
                         read_timeout = read_timeout }) do
    if not is_int(v) then
      error(name .. " must be an integer", 2)
    end
    if v < 1 or v > max then
      error(fmt("%s must be an integer between 1 and %d: given %d", name, max, v), 2)
    end
  end
  local bd = balancer_data()
  bd.connect_timeout = connect_timeout
  bd.send_timeout = write_timeout
  bd.read_timeout = read_timeout
end

local function tls_unsupported()
  return nil, "not supported by the local gateway (upstream TLS settings need Kong's nginx module)"
end

function service.set_tls_cert_key(chain, key)
  check(phases.access_rewrite_balancer_preread)
  if chain == nil then error("chain must not be nil", 2) end
  if key == nil then error("key must not be nil", 2) end
  return tls_unsupported()
end

function service.set_tls_verify(on)
  check(phases.access_rewrite_balancer_preread)
  if type(on) ~= "boolean" then error("argument must be a boolean", 2) end
  return tls_unsupported()
end

function service.set_tls_verify_depth(depth)
  check(phases.access_rewrite_balancer_preread)
  if not is_int(depth) then error("argument must be an integer", 2) end
  return tls_unsupported()
end

function service.set_tls_verify_store(store)
  check(phases.access_rewrite_balancer_preread)
  if type(store) ~= "table" and type(store) ~= "cdata" then error("argument must be a resty.openssl.x509.store object", 2) end
  return tls_unsupported()
end

----------------------------------------------------------------------------------------------------
-- kong.service.request

local ACCEPTED_METHODS = {
  GET = true, HEAD = true, PUT = true, POST = true, DELETE = true, OPTIONS = true, MKCOL = true,
  COPY = true, MOVE = true, PROPFIND = true, PROPPATCH = true, LOCK = true, UNLOCK = true,
  PATCH = true, TRACE = true,
}

function request.enable_buffering()
  check(phases.access_rewrite_balancer)
  if ngx.req.http_version() >= 2 then
    error("buffered proxying cannot currently be enabled with http/" .. ngx.req.http_version() ..
          ", please use http/1.x instead", 2)
  end
  ngx.ctx.buffered_proxying = true
end

function request.set_scheme(scheme)
  check(phases.access_rewrite_balancer)
  checks.arg_type(scheme, "string", "scheme")
  if scheme ~= "http" and scheme ~= "https" then
    error("invalid scheme: " .. scheme, 2)
  end
  ngx.var.upstream_scheme = scheme
end

function request.set_path(path)
  check(phases.access_rewrite_balancer)
  checks.arg_type(path, "string", "path")
  if sub(path, 1, 1) ~= "/" then
    error("path must start with /", 2)
  end
  if find(path, "[%c ?#]") then
    error("path can only contain characters valid in a URI path (no control characters, spaces, '?' or '#')", 2)
  end
  ngx.var.upstream_uri = path
  ngx.ctx.upstream_path_set = true
end

function request.set_raw_query(query)
  check(phases.access_and_rewrite)
  checks.arg_type(query, "string", "query")
  ngx.req.set_uri_args(query)
end

function request.set_method(method)
  check(phases.access_and_rewrite)
  checks.arg_type(method, "string", "method")
  if not ACCEPTED_METHODS[method] then
    error("invalid method: " .. method, 2)
  end
  ngx.req.set_method(ngx["HTTP_" .. method])
end

local function validate_args(args)
  for k, v in pairs(args) do
    if type(k) ~= "string" then
      error("arg keys must be strings", 3)
    end
    local t = type(v)
    if t == "table" then
      for _, vv in ipairs(v) do
        local tt = type(vv)
        if tt ~= "string" and tt ~= "number" and tt ~= "boolean" then
          error(fmt("attempt to set an invalid value for '%s': %s", k, tt), 3)
        end
      end
    elseif t ~= "string" and t ~= "number" and t ~= "boolean" then
      error(fmt("attempt to set an invalid value for '%s': %s", k, t), 3)
    end
  end
end

-- Kong encodes arguments sorted by name so that upstream URIs are deterministic
local function encode_args(args)
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = args[k]
    local values = type(v) == "table" and v or { v }
    for _, vv in ipairs(values) do
      if vv == true then
        out[#out + 1] = ngx.escape_uri(k)
      elseif vv ~= false then
        out[#out + 1] = ngx.escape_uri(k) .. "=" .. ngx.escape_uri(tostring(vv))
      end
    end
  end
  return table.concat(out, "&")
end

function request.set_query(args)
  check(phases.access_and_rewrite)
  checks.arg_type(args, "table", "args")
  validate_args(args)
  ngx.req.set_uri_args(encode_args(args))
end

function request.clear_query_arg(name)
  check(phases.access_and_rewrite)
  checks.arg_type(name, "string", "query argument name")
  local args = ngx.req.get_uri_args(0)
  if args[name] ~= nil then
    args[name] = nil
    ngx.req.set_uri_args(encode_args(args))
  end
end

-- Host is not sent as a header: it becomes $upstream_host, which the proxy uses.
local function set_upstream_host(value)
  ngx.var.upstream_host = type(value) == "table" and value[1] or tostring(value)
  ngx.ctx.upstream_host_set = true
end

local function set_request_header(name, value)
  if lower(name) == "host" then
    set_upstream_host(value)
  elseif type(value) == "table" then
    ngx.req.set_header(name, value)
  else
    ngx.req.set_header(name, tostring(value))
  end
end

function request.set_header(header, value)
  check(phases.access_rewrite_balancer)
  checks.arg_type(header, "string", "header name")
  checks.validate_header(header, value)
  set_request_header(header, value)
end

function request.add_header(header, value)
  check(phases.access_and_rewrite)
  checks.arg_type(header, "string", "header name")
  checks.validate_header(header, value)
  if lower(header) == "host" then
    set_upstream_host(value)
    return
  end
  local existing = ngx.req.get_headers()[header]
  local list = {}
  if type(existing) == "table" then
    for _, v in ipairs(existing) do list[#list + 1] = v end
  elseif existing ~= nil then
    list[1] = existing
  end
  if type(value) == "table" then
    for _, v in ipairs(value) do list[#list + 1] = v end
  else
    list[#list + 1] = tostring(value)
  end
  ngx.req.set_header(header, list)
end

function request.clear_header(header)
  check(phases.access_and_rewrite)
  checks.arg_type(header, "string", "header name")
  ngx.req.clear_header(header)
end

function request.set_headers(headers)
  check(phases.access_and_rewrite)
  checks.arg_type(headers, "table", "headers")
  checks.validate_headers(headers)
  for name, value in pairs(headers) do
    set_request_header(name, value)
  end
end

function request.set_raw_body(body)
  check(phases.access_rewrite_balancer)
  checks.arg_type(body, "string", "body")
  ngx.req.read_body()
  -- set_body_data also fixes the Content-Length sent upstream
  ngx.req.set_body_data(body)
end

local function serialize_multipart(args, boundary)
  local out = {}
  for k, v in pairs(args) do
    local values = type(v) == "table" and v or { v }
    for _, vv in ipairs(values) do
      out[#out + 1] = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. k ..
                      "\"\r\n\r\n" .. tostring(vv) .. "\r\n"
    end
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out)
end

function request.set_body(args, mime)
  check(phases.access_and_rewrite)
  checks.arg_type(args, "table", "args")
  if mime ~= nil and type(mime) ~= "string" then
    error("mime must be a string", 2)
  end
  local content_type = mime
  if not content_type then
    content_type = ngx.req.get_headers()["Content-Type"]
    if type(content_type) == "table" then content_type = content_type[1] end
    if not content_type then
      return nil, "content type was neither explicitly given as an argument or received as a header"
    end
  end
  local base = lower(content_type):match("^%s*([^;%s]+)")
  local body
  if base == "application/x-www-form-urlencoded" then
    validate_args(args)
    body = encode_args(args)
  elseif base == "application/json" then
    local err
    body, err = cjson.encode(args)
    if not body then
      return nil, err
    end
  elseif base == "multipart/form-data" then
    local boundary = content_type:match("boundary=\"?([^\";]+)") or ("kong" .. tostring(math.random(1e9)))
    body = serialize_multipart(args, boundary)
    content_type = "multipart/form-data; boundary=" .. boundary
  else
    return nil, "unsupported content type '" .. content_type .. "'"
  end
  ngx.req.read_body()
  ngx.req.set_header("Content-Type", content_type)
  ngx.req.set_body_data(body)
  return true
end

function request.disable_tls()
  check(phases.preread_and_balancer)
  return nil, "disable_tls is only available in the stream subsystem"
end

----------------------------------------------------------------------------------------------------
-- kong.service.response

local function upstream_var_name(name)
  return "upstream_http_" .. gsub(lower(name), "-", "_")
end

function response.get_status()
  check(phases.service_response)
  local ctx = ngx.ctx
  if ctx.buffered_status then
    return ctx.buffered_status
  end
  local s = ngx.var.upstream_status
  if not s or s == "" then
    return nil
  end
  return tonumber(sub(s, -3))
end

function response.get_headers(max_headers)
  check(phases.service_response)
  local limit = checks.limit_arg("max_headers", max_headers, 100, 1, 1000)
  local ctx = ngx.ctx
  if ctx.buffered_headers then
    return ctx.buffered_headers
  end
  local headers, err = ngx.resp.get_headers(limit)
  local out = setmetatable({}, getmetatable(headers))
  for k, v in pairs(headers) do
    if ngx.var[upstream_var_name(k)] ~= nil then
      out[k] = v
    end
  end
  return out, err
end

function response.get_header(name)
  check(phases.service_response)
  local value = checks.first_value(response.get_headers, name, "header")
  return value
end

function response.get_raw_body()
  check(phases.service_response)
  local ctx = ngx.ctx
  if not ctx.buffered_proxying then
    error("service body is only available with buffered proxying " ..
          "(see: kong.service.request.enable_buffering function)", 2)
  end
  return ctx.buffered_body or ""
end

function response.get_body(mimetype, max_args)
  check(phases.service_response)
  local ctx = ngx.ctx
  if not ctx.buffered_proxying then
    error("service body is only available with buffered proxying " ..
          "(see: kong.service.request.enable_buffering function)", 2)
  end
  local content_type = mimetype or response.get_header("Content-Type")
  if not content_type then
    return nil, "missing content type"
  end
  local base = lower(content_type):match("^%s*([^;%s]+)") or ""
  local body = ctx.buffered_body or ""
  if base == "application/x-www-form-urlencoded" then
    return ngx.decode_args(body, max_args or 100), nil, base
  elseif base == "application/json" then
    local json = cjson.decode(body)
    if type(json) ~= "table" then
      return nil, "invalid json body", base
    end
    return json, nil, base
  end
  return nil, "unsupported content type '" .. content_type .. "'", base
end

return service
