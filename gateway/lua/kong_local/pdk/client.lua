-- kong.client (kong/pdk/client.lua): who is calling, and the authenticated consumer/credential.
local phases = require "kong_local.phases"
local db = require "kong_local.db"

local check = phases.check

local _M = {}

local UUID_PATTERN = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

function _M.get_ip()
  phases.check_not("init_worker")
  return ngx.var.realip_remote_addr or ngx.var.remote_addr
end

function _M.get_forwarded_ip()
  phases.check_not("init_worker")
  -- the realip module (when trusted_ips is set) has already rewritten remote_addr
  return ngx.var.remote_addr
end

function _M.get_port()
  phases.check_not("init_worker")
  return tonumber(ngx.var.realip_remote_port or ngx.var.remote_port)
end

function _M.get_forwarded_port()
  phases.check_not("init_worker")
  return tonumber(ngx.var.remote_port)
end

function _M.get_credential()
  check(phases.auth_and_later)
  return ngx.ctx.authenticated_credential
end

function _M.load_consumer(consumer_id, search_by_username)
  check(phases.auth_and_later)
  if not consumer_id or type(consumer_id) ~= "string" then
    error("consumer_id must be a string", 2)
  end
  if not consumer_id:match(UUID_PATTERN) and not search_by_username then
    error("cannot load a consumer with an id that is not a uuid", 2)
  end
  local consumer = db.find_consumer(consumer_id, false)
  if not consumer and search_by_username then
    consumer = db.find_consumer(consumer_id, true)
  end
  return consumer
end

function _M.get_consumer()
  check(phases.auth_and_later)
  return ngx.ctx.authenticated_consumer
end

function _M.authenticate(consumer, credential)
  check(phases.access)
  if not consumer and not credential then
    error("either credential or consumer must be provided", 2)
  end
  if consumer ~= nil and type(consumer) ~= "table" then
    error("consumer must be a table or nil", 2)
  end
  if credential ~= nil and type(credential) ~= "table" then
    error("credential must be a table or nil", 2)
  end
  local ctx = ngx.ctx
  ctx.authenticated_consumer = consumer
  ctx.authenticated_credential = credential
end

function _M.get_protocol(allow_terminated)
  check(phases.auth_and_later)
  if allow_terminated ~= nil and type(allow_terminated) ~= "boolean" then
    error("allow_terminated must be a boolean", 2)
  end
  local route = ngx.ctx.route
  if not route then
    return nil, "No active route found"
  end
  local protocols = route.protocols
  if protocols and #protocols == 1 then
    return protocols[1]
  end
  local scheme = ngx.var.scheme
  if scheme == "https" then
    return "https"
  end
  if allow_terminated and kong.ip.is_trusted(ngx.var.realip_remote_addr or ngx.var.remote_addr) then
    local forwarded = ngx.req.get_headers()["X-Forwarded-Proto"]
    if type(forwarded) == "table" then forwarded = forwarded[1] end
    if forwarded and forwarded:lower() == "https" then
      return "https"
    end
  end
  return "http"
end

-- kong.client.tls: this gateway listens in plain HTTP, so there is never a client certificate
_M.tls = {}

function _M.tls.request_client_certificate()
  check(phases.certificate)
  return nil, "the local gateway has no TLS listener"
end

function _M.tls.disable_session_reuse()
  check(phases.certificate)
  return nil, "the local gateway has no TLS listener"
end

function _M.tls.get_full_client_certificate_chain()
  check(phases.rewrite_and_later)
  return nil
end

function _M.tls.set_client_verify(v)
  check(phases.rewrite_before_log)
  if v ~= "SUCCESS" and v ~= "NONE" and not (type(v) == "string" and v:find("^FAILED:")) then
    error("unknown client verify value: " .. tostring(v) ..
          " accepted values are: \"SUCCESS\", \"NONE\" or \"FAILED:<reason>\"", 2)
  end
end

function _M.tls.disable_http2_alpn()
  check(phases.client_hello)
  return nil, "the local gateway has no TLS listener"
end

return _M
