-- kong.response (kong/pdk/response.lua): the response sent to the client, and Kong's exit
-- semantics: in access (delay_response set by the runloop) exit/error store a delayed response and
-- yield the plugin's coroutine; in header_filter the body is stashed for body_filter; elsewhere
-- the response is sent at once.
local cjson = require "cjson.safe"
local buffer = require "string.buffer"
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local fmt = string.format
local lower = string.lower
local find = string.find
local sub = string.sub
local concat = table.concat
local co_yield = coroutine.yield

local MIN_STATUS_CODE, MAX_STATUS_CODE = 100, 599
local MIN_ERR_STATUS_CODE = 400
local MAX_HEADERS_DEFAULT, MIN_HEADERS, MAX_HEADERS = 100, 1, 1000

local CONTENT_TYPE = "Content-Type"
local CONTENT_LENGTH = "Content-Length"
local CONTENT_TYPE_JSON = "application/json; charset=utf-8"

local _M = {}

-- kong/tools/http.lua HTTP_MESSAGES: Kong's default message per status for kong.response.error
local HTTP_MESSAGES = {
  [400] = "Bad request", [401] = "Unauthorized", [402] = "Payment required", [403] = "Forbidden",
  [404] = "Not found", [405] = "Method not allowed", [406] = "Not acceptable",
  [407] = "Proxy authentication required", [408] = "Request timeout", [409] = "Conflict",
  [410] = "Gone", [411] = "Length required", [412] = "Precondition failed",
  [413] = "Payload too large", [414] = "URI too long", [415] = "Unsupported media type",
  [416] = "Range not satisfiable", [417] = "Expectation failed", [418] = "I'm a teapot",
  [421] = "Misdirected request", [422] = "Unprocessable entity", [423] = "Locked",
  [424] = "Failed dependency", [425] = "Too early", [426] = "Upgrade required",
  [428] = "Precondition required", [429] = "Too many requests",
  [431] = "Request header fields too large", [451] = "Unavailable for legal reasons",
  [494] = "Request header or cookie too large", [500] = "An unexpected error occurred",
  [501] = "Not implemented", [502] = "An invalid response was received from the upstream server",
  [503] = "The upstream server is currently unavailable", [504] = "The upstream server is timing out",
  [505] = "HTTP version not supported", [506] = "Variant also negotiates",
  [507] = "Insufficient storage", [508] = "Loop detected", [510] = "Not extended",
  [511] = "Network authentication required",
}
_M.HTTP_MESSAGES = HTTP_MESSAGES

function _M.get_http_error_message(status)
  return HTTP_MESSAGES[status] or fmt("The upstream server responded with %d", status)
end

local MIME_TYPES = {
  ["application/grpc"] = "",
  ["text/html"] = "text/html; charset=utf-8",
  ["application/json"] = CONTENT_TYPE_JSON,
  ["text/plain"] = "text/plain; charset=utf-8",
  ["application/xml"] = "application/xml; charset=utf-8",
  ["application"] = CONTENT_TYPE_JSON,
  ["text"] = "text/plain; charset=utf-8",
  default = CONTENT_TYPE_JSON,
}

local ERROR_TEMPLATES = {
  [MIME_TYPES["text/html"]] = [[
<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <title>Error</title>
  </head>
  <body>
    <h1>Error</h1>
    <p>%s.</p>
    <p>request_id: %s</p>
  </body>
</html>
]],
  [CONTENT_TYPE_JSON] = "{\n  \"message\":\"%s\",\n  \"request_id\":\"%s\"\n}",
  [MIME_TYPES["text/plain"]] = "%s\nrequest_id: %s\n",
  [MIME_TYPES["application/xml"]] = [[
<?xml version="1.0" encoding="UTF-8"?>
<error>
  <message>%s</message>
  <requestid>%s</requestid>
</error>
]],
}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

--- kong.tools.http get_mime_type
function _M.get_mime_type(content_header)
  content_header = trim(content_header)
  local base = content_header:match("^[^;]*")
  local t, st = base:match("^([^/]+)/(.+)$")
  if t then
    if st == "*" then
      if t == "*" then
        return MIME_TYPES.default
      end
      return MIME_TYPES[t] or MIME_TYPES.default
    end
    return MIME_TYPES[base] or MIME_TYPES.default
  end
  return MIME_TYPES.default
end

--- kong.tools.http get_response_type: the Accept entry with the highest q decides.
function _M.get_response_type(accept_header)
  local content_type = MIME_TYPES.default
  if type(accept_header) == "table" then
    accept_header = concat(accept_header, ",")
  end
  if accept_header ~= nil then
    local max_q = 0
    for value in accept_header:gmatch("[^,]+") do
      value = trim(value)
      local media = value:match("^([%w%-!#$&^_+.*]+/[%w%-!#$&^_+.*]+)")
      if media then
        local q = tonumber(value:match(";%s*q%s*=%s*([%d.]+)")) or 1
        if q > max_q then
          max_q = q
          content_type = _M.get_mime_type(lower(media)) or content_type
        end
      end
    end
  end
  return content_type
end

function _M.request_id()
  local ctx = ngx.ctx
  return ctx.request_id or ngx.var.kong_request_id or ngx.var.request_id or ""
end

local function normalize_multi_header(value)
  local t = type(value)
  if t == "table" then
    local out = {}
    for i, v in ipairs(value) do out[i] = tostring(v) end
    return out
  end
  if t == "string" then return value end
  return tostring(value)
end

-- Level 3: the error blames the plugin that called the PDK function, not this module.
local function check_headers_not_sent()
  if ngx.headers_sent then
    error("headers have already been sent", 3)
  end
end

local function check_status(status, min)
  if type(status) ~= "number" then
    error("code must be a number", 3)
  elseif status < min or status > MAX_STATUS_CODE then
    error(fmt("code must be a number between %u and %u", min, MAX_STATUS_CODE), 3)
  end
end

local function is_grpc_request()
  local ct = ngx.var.content_type
  return ct ~= nil and find(ct, "application/grpc", 1, true) == 1
end

----------------------------------------------------------------------------------------------------

function _M.get_status()
  check(phases.header_body_log)
  return ngx.status
end

function _M.get_headers(max_headers)
  check(phases.header_body_log)
  return ngx.resp.get_headers(checks.limit_arg("max_headers", max_headers, MAX_HEADERS_DEFAULT, MIN_HEADERS, MAX_HEADERS))
end

function _M.get_header(name)
  check(phases.header_body_log)
  local value = checks.first_value(_M.get_headers, name, "header")
  return value
end

function _M.get_source(ctx)
  if ctx == nil then
    check(phases.header_body_log)
    ctx = ngx.ctx
  end
  if ctx.KONG_UNEXPECTED then
    return "error"
  end
  if ctx.KONG_EXITED then
    return "exit"
  end
  if ctx.KONG_PROXIED then
    return "service"
  end
  return "error"
end

function _M.set_status(status)
  check(phases.rewrite_access_header)
  check_headers_not_sent()
  check_status(status, MIN_STATUS_CODE)
  ngx.status = status
end

function _M.set_header(name, value)
  check(phases.rewrite_access_header)
  check_headers_not_sent()
  checks.validate_header(name, value)
  ngx.header[name] = normalize_multi_header(value)
end

function _M.add_header(name, value)
  check(phases.rewrite_access_header)
  check_headers_not_sent()
  checks.validate_header(name, value)
  local new_value = ngx.resp.get_headers()[name]
  if type(new_value) ~= "table" then
    new_value = { new_value }
  end
  local add = normalize_multi_header(value)
  if type(add) == "table" then
    for _, v in ipairs(add) do new_value[#new_value + 1] = v end
  else
    new_value[#new_value + 1] = add
  end
  ngx.header[name] = new_value
end

function _M.clear_header(name)
  check(phases.rewrite_access_header)
  checks.arg_type(name, "string", "header name")
  check_headers_not_sent()
  ngx.header[name] = nil
end

function _M.set_headers(headers)
  check(phases.rewrite_access_header)
  checks.arg_type(headers, "table", "headers")
  check_headers_not_sent()
  checks.validate_headers(headers)
  for name, value in pairs(headers) do
    ngx.header[name] = normalize_multi_header(value)
  end
end

--- body_filter only: buffers chunks, returns the whole body at eof (nil before).
function _M.get_raw_body()
  check(phases.body_filter)
  local ctx = ngx.ctx
  local arg = ngx.arg
  local chunk = arg[1]
  local eof = arg[2]
  local buf = ctx.KONG_BODY_BUFFER
  if eof then
    if buf then
      if chunk ~= "" then
        buf:put(chunk)
      end
      local body = buf:get()
      ctx.KONG_BODY_BUFFER = nil
      arg[1] = body
      return body
    end
    return chunk
  end
  if type(chunk) == "string" and chunk ~= "" then
    if not buf then
      buf = buffer.new()
      ctx.KONG_BODY_BUFFER = buf
    end
    buf:put(chunk)
  end
  arg[1] = nil
  return nil
end

function _M.set_raw_body(body)
  check(phases.body_filter)
  checks.arg_type(body, "string", "body")
  local arg = ngx.arg
  arg[1] = body == "" and "\n" or body
  arg[2] = true
  ngx.ctx.KONG_BODY_BUFFER = nil
end

----------------------------------------------------------------------------------------------------
-- exit / error

local function send(status, body, headers)
  if ngx.headers_sent then
    error("headers have already been sent", 2)
  end
  ngx.status = status
  local has_content_type, has_content_length = false, false
  if headers ~= nil then
    for name, value in pairs(headers) do
      local lname = lower(name)
      if lname == "transfer-encoding" or lname == "transfer_encoding" then
        kong.log.warn("manually setting Transfer-Encoding. Ignored.")
      else
        ngx.header[name] = normalize_multi_header(value)
        if lname == "content-type" then has_content_type = true end
        if lname == "content-length" then has_content_length = true end
      end
    end
  end

  if body ~= nil then
    if type(body) == "table" then
      local json, err = cjson.encode(body)
      if not json then
        error(fmt("body encoding failed while flushing response: %s", err), 2)
      end
      body = json
      if not has_content_type then
        ngx.header[CONTENT_TYPE] = CONTENT_TYPE_JSON
      end
    end
    if not has_content_length then
      ngx.header[CONTENT_LENGTH] = #body
    end
  end

  local ctx = ngx.ctx
  if ctx.KONG_PHASE == "header_filter" then
    ctx.response_body = body or ""
    return ngx.exit(ngx.OK)
  end

  if body ~= nil then
    ngx.print(body)
    return ngx.exit(status)
  end
  return ngx.exit(status)
end
_M.send = send

local function flush(ctx)
  ctx = ctx or ngx.ctx
  local r = ctx.delayed_response
  return send(r.status_code, r.content, r.headers)
end
_M.flush = flush

-- Level 3: the error blames the plugin that called exit/error.
local function check_exit_headers(headers)
  if headers ~= nil then
    if type(headers) ~= "table" then
      error("headers must be a nil or table", 3)
    end
    checks.validate_headers(headers)
  end
end

-- In access the runloop delays the response (delay_response): store it and yield the plugin's
-- coroutine. Tail calls down to send() keep its level-2 errors on the plugin's call.
local function exit_now_or_delayed(status, body, headers)
  local ctx = ngx.ctx
  ctx.KONG_EXITED = true
  if ctx.delay_response and not ctx.delayed_response then
    ctx.delayed_response = { status_code = status, content = body, headers = headers }
    ctx.delayed_response_callback = flush
    co_yield()
    return
  end
  return send(status, body, headers)
end

function _M.exit(status, body, headers)
  check(phases.rewrite_access_header)
  check_headers_not_sent()
  check_status(status, MIN_STATUS_CODE)
  if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
    error("body must be a nil, string or table", 2)
  end
  check_exit_headers(headers)

  return exit_now_or_delayed(status, body, headers)
end

function _M.error(status, message, headers)
  check(phases.rewrite_access_header)
  check_status(status, MIN_ERR_STATUS_CODE)
  if message ~= nil and type(message) ~= "string" then
    error("message must be a nil or a string", 2)
  end
  check_exit_headers(headers)
  headers = headers or {}

  local content_type
  for name, value in pairs(headers) do
    if lower(name) == "content-type" then
      content_type = type(value) == "table" and value[1] or value
    end
  end
  if content_type == nil then
    if is_grpc_request() then
      content_type = "application/grpc"
    else
      local accept = ngx.req.get_headers()["Accept"]
      if type(accept) == "table" then accept = accept[1] end
      content_type = _M.get_response_type(accept)
    end
    headers[CONTENT_TYPE] = content_type
  end

  local body
  if sub(content_type, 1, 16) ~= "application/grpc" then
    local actual = message or _M.get_http_error_message(status)
    local template = ERROR_TEMPLATES[content_type] or ERROR_TEMPLATES[_M.get_mime_type(content_type)]
                     or ERROR_TEMPLATES[CONTENT_TYPE_JSON]
    body = fmt(template, actual, _M.request_id())
  end

  return exit_now_or_delayed(status, body, headers)
end

return _M
