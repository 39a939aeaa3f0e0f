-- kong.service.request (kong/pdk/service/request.lua): the request the gateway sends upstream.
local cjson = require "cjson.safe"
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local fmt = string.format
local lower = string.lower
local find = string.find
local sub = string.sub

local request = {}

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

return request
