-- kong.service.response (kong/pdk/service/response.lua): the response the upstream returned.
local cjson = require "cjson.safe"
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local lower = string.lower
local sub = string.sub
local gsub = string.gsub

local response = {}

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

-- the body read by buffered proxying; the error names the caller of get_raw_body/get_body
local function buffered_body()
  local ctx = ngx.ctx
  if not ctx.buffered_proxying then
    error("service body is only available with buffered proxying " ..
          "(see: kong.service.request.enable_buffering function)", 3)
  end
  return ctx.buffered_body or ""
end

function response.get_raw_body()
  check(phases.service_response)
  local body = buffered_body() -- not a tail call: the error level counts this frame
  return body
end

function response.get_body(mimetype, max_args)
  check(phases.service_response)
  local body = buffered_body()
  local content_type = mimetype or response.get_header("Content-Type")
  if not content_type then
    return nil, "missing content type"
  end
  local base = lower(content_type):match("^%s*([^;%s]+)") or ""
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

return response
