-- kong.service (kong/pdk/service.lua): where the request goes (target, retries, timeouts, TLS);
-- kong.service.request and kong.service.response are its two sub-modules, as in Kong.
local phases = require "kong_local.phases"
local checks = require "kong_local.pdk.checks"

local check = phases.check
local fmt = string.format

local service = {
  request = require "kong_local.pdk.service.request",
  response = require "kong_local.pdk.service.response",
}

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

return service
