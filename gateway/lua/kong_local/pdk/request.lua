-- kong.request (kong/pdk/request.lua): the client's request as nginx received it.
local cjson = require "cjson.safe"
local phases = require "kong_local.phases"
local router = require "kong_local.router"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local find = string.find
local sub = string.sub
local lower = string.lower
local fmt = string.format

local MAX_HEADERS_DEFAULT, MIN_HEADERS, MAX_HEADERS = 100, 1, 1000
local MAX_QUERY_ARGS_DEFAULT, MIN_QUERY_ARGS, MAX_QUERY_ARGS = 100, 1, 1000
local MAX_POST_ARGS_DEFAULT, MIN_POST_ARGS, MAX_POST_ARGS = 100, 1, 1000

local _M = {}

local function is_trusted(ip)
  return kong and kong.ip and kong.ip.is_trusted(ip) or false
end

function _M.get_scheme()
  check(phases.request)
  return ngx.var.scheme
end

function _M.get_host()
  check(phases.request)
  return ngx.var.host
end

function _M.get_port()
  phases.check_not("init_worker")
  return tonumber(ngx.var.server_port)
end

function _M.get_forwarded_scheme()
  check(phases.request)
  if is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    local scheme = _M.get_header("X-Forwarded-Proto")
    if scheme then
      return lower(scheme)
    end
  end
  return _M.get_scheme()
end

function _M.get_forwarded_host()
  check(phases.request)
  if is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    local host = _M.get_header("X-Forwarded-Host")
    if host then
      local s = find(host, "@", 1, true)
      if s then host = sub(host, s + 1) end
      s = find(host, ":", 1, true)
      return s and lower(sub(host, 1, s - 1)) or lower(host)
    end
  end
  return _M.get_host()
end

function _M.get_forwarded_port()
  check(phases.request)
  if is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    local port = tonumber(_M.get_header("X-Forwarded-Port"))
    if port and port >= 1 and port <= 65535 then
      return port
    end
    local host = _M.get_header("X-Forwarded-Host")
    if host then
      local s = find(host, ":", 1, true)
      if s then
        port = tonumber(sub(host, s + 1))
        if port and port >= 1 and port <= 65535 then
          return port
        end
      end
    end
  end
  return _M.get_port()
end

function _M.get_forwarded_path()
  check(phases.request)
  if is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    local path = _M.get_header("X-Forwarded-Path")
    if path then
      return path
    end
  end
  return _M.get_raw_path()
end

function _M.get_forwarded_prefix()
  check(phases.request)
  local prefix
  if is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    prefix = _M.get_header("X-Forwarded-Prefix")
    if prefix then
      return prefix
    end
  end
  prefix = ngx.var.upstream_x_forwarded_prefix
  if prefix == "" then
    return nil
  end
  return prefix
end

function _M.get_http_version()
  check(phases.request)
  return ngx.req.http_version()
end

function _M.get_method()
  check(phases.request)
  return ngx.req.get_method()
end

function _M.get_raw_path()
  check(phases.request)
  local uri = ngx.var.request_uri or ""
  local s = find(uri, "?", 2, true)
  return s and sub(uri, 1, s - 1) or uri
end

function _M.get_path()
  return router.normalize(_M.get_raw_path())
end

function _M.get_path_with_query()
  check(phases.request)
  return ngx.var.request_uri or ""
end

function _M.get_raw_query()
  check(phases.request)
  return ngx.var.args or ""
end

function _M.get_query(max_args)
  check(phases.request)
  return ngx.req.get_uri_args(checks.limit_arg("max_args", max_args, MAX_QUERY_ARGS_DEFAULT, MIN_QUERY_ARGS, MAX_QUERY_ARGS))
end

function _M.get_query_arg(name)
  check(phases.request)
  local value = checks.first_value(_M.get_query, name, "query argument")
  return value
end

-- "X-Foo-Bar" -> "http_x_foo_bar", computed once per name
local header_vars = {}
local gsub = string.gsub

-- Kong 3.9 looks up the one header (resty.kong.request.get_header, a C lookup in its own nginx
-- module) instead of building the table of all headers; $http_<name> is the same lookup in stock
-- nginx, and answers the first value of a repeated header as Kong does.
function _M.get_header(name)
  check(phases.request)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  local var_name = header_vars[name]
  if not var_name then
    var_name = "http_" .. gsub(lower(name), "-", "_")
    header_vars[name] = var_name
  end
  return ngx.var[var_name]
end

function _M.get_headers(max_headers)
  check(phases.request)
  return ngx.req.get_headers(checks.limit_arg("max_headers", max_headers, MAX_HEADERS_DEFAULT, MIN_HEADERS, MAX_HEADERS))
end

--- Kong 3.9: bodies over client_body_buffer_size (8k) live in a temp file; without
-- max_allowed_file_size they are refused, with it the file is read up to that size (0 = no limit).
function _M.get_raw_body(max_allowed_file_size)
  check(phases.before_content)
  if max_allowed_file_size ~= nil and type(max_allowed_file_size) ~= "number" then
    error("max_allowed_file_size must be a number", 2)
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  local file = ngx.req.get_body_file()
  if not file then
    return ""
  end
  if not max_allowed_file_size then
    return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
  end
  local f, err = io.open(file, "rb")
  if not f then
    return nil, "failed to open cached request body '" .. file .. "': " .. tostring(err)
  end
  local size = f:seek("end")
  if max_allowed_file_size > 0 and size > max_allowed_file_size then
    f:close()
    return nil, fmt("request body file too big: %d > %d", size, max_allowed_file_size)
  end
  f:seek("set")
  body = f:read("*a")
  f:close()
  return body or ""
end

local function content_type_base(content_type)
  local ct = lower(content_type)
  local s = find(ct, ";", 1, true)
  if s then ct = sub(ct, 1, s - 1) end
  return (ct:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function parse_multipart(body, content_type)
  local boundary = content_type:match("boundary=\"([^\"]+)\"") or content_type:match("boundary=([^;%s]+)")
  if not boundary then return nil end
  local args = {}
  local delim = "--" .. boundary
  local pos = find(body, delim, 1, true)
  if not pos then return nil end
  while true do
    local part_start = pos + #delim
    if sub(body, part_start, part_start + 1) == "--" then break end
    local next_pos = find(body, "\r\n" .. delim, part_start, true)
    if not next_pos then return nil end
    local part = sub(body, part_start + 2, next_pos - 1)
    local header_end = find(part, "\r\n\r\n", 1, true)
    if not header_end then return nil end
    local headers = sub(part, 1, header_end - 1)
    local value = sub(part, header_end + 4)
    local name = headers:match('[Cc]ontent%-[Dd]isposition:[^\r\n]-name="([^"]*)"')
    if name then
      local prev = args[name]
      if prev == nil then
        args[name] = value
      elseif type(prev) == "table" then
        prev[#prev + 1] = value
      else
        args[name] = { prev, value }
      end
    end
    pos = next_pos + 2
  end
  return args
end

function _M.get_body(mimetype, max_args, max_allowed_file_size)
  check(phases.before_content)
  local content_type = mimetype or _M.get_header("Content-Type")
  if not content_type then
    return nil, "missing content type"
  end
  local ct = content_type_base(content_type)
  if find(ct, "application/x-www-form-urlencoded", 1, true) == 1 then
    local limit = checks.limit_arg("max_args", max_args, MAX_POST_ARGS_DEFAULT, MIN_POST_ARGS, MAX_POST_ARGS)
    local body, err = _M.get_raw_body(max_allowed_file_size)
    if not body then
      return nil, err, "application/x-www-form-urlencoded"
    end
    local pargs = ngx.decode_args(body, limit)
    if not pargs then
      return nil, "unable to retrieve request body arguments", "application/x-www-form-urlencoded"
    end
    return pargs, nil, "application/x-www-form-urlencoded"
  elseif find(ct, "application/json", 1, true) == 1 then
    local body, err = _M.get_raw_body(max_allowed_file_size)
    if not body then
      return nil, err, "application/json"
    end
    local json = cjson.decode(body)
    if type(json) ~= "table" then
      return nil, "invalid json body", "application/json"
    end
    return json, nil, "application/json"
  elseif find(ct, "multipart/form-data", 1, true) == 1 then
    local body, err = _M.get_raw_body(max_allowed_file_size)
    if not body then
      return nil, err, "multipart/form-data"
    end
    local args = parse_multipart(body, content_type)
    if not args then
      return nil, "unable to decode multipart body", "multipart/form-data"
    end
    return args, nil, "multipart/form-data"
  end
  return nil, "unsupported content type '" .. content_type .. "'", ct
end

function _M.get_start_time()
  check(phases.request)
  return ngx.ctx.KONG_PROCESSING_START or (ngx.req.start_time() * 1000)
end

function _M.get_uri_captures(ctx)
  check(phases.request)
  ctx = ctx or ngx.ctx
  local captures = ctx.router_matches and ctx.router_matches.uri_captures or {}
  local unnamed, named = {}, {}
  for k, v in pairs(captures) do
    if type(k) == "number" then
      unnamed[k] = v
    elseif type(k) == "string" then
      named[k] = v
    end
  end
  return { unnamed = unnamed, named = named }
end

return _M
