-- The phase drivers of the local gateway: Kong.rewrite/access/balancer/header_filter/body_filter/
-- log/handle_error from kong/init.lua and kong/runloop/handler.lua, reduced to what a plugin can
-- observe. Plugins run in Kong's order with Kong's instance resolution (kong_local.plugins).
local meta = require "kong.meta"
local state = require "kong_local.state"
local plugins = require "kong_local.plugins"
local resolver = require "kong_local.resolver"
local log = require "kong_local.pdk.log"

local lower = string.lower
local sub = string.sub
local find = string.find
local co_create = coroutine.create
local co_resume = coroutine.resume

local lookup = plugins.lookup
local combo_key = plugins.combo_key
local GLOBAL_KEY = combo_key(nil, nil, nil)

local SERVER_HEADER = meta._SERVER_TOKENS
-- the HTTP version of the proxy_pass connection (proxy_http_version 1.1 in every proxy location)
local DEFAULT_PROXY_HTTP_VERSION = "1.1"

local _M = {}

local function now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

----------------------------------------------------------------------------------------------------
-- ngx.ctx survives internal redirects (error_page, named locations) through $ctx_ref, as Kong's
-- kong.resty.ctx does; entries are released in the log phase.

local stash = {}
local stash_seq = 0

local function stash_ref(ctx)
  if ctx.KONG_CTX_REF then return end
  stash_seq = stash_seq + 1
  stash[stash_seq] = ctx
  ctx.KONG_CTX_REF = stash_seq
  ngx.var.ctx_ref = stash_seq
end

local function apply_ref()
  local ctx = ngx.ctx
  if ctx.KONG_CTX_REF then
    return ctx
  end
  local ref = tonumber(ngx.var.ctx_ref)
  local orig = ref and stash[ref]
  if orig then
    ngx.ctx = orig
    return orig
  end
  return ctx
end

local function release_ref(ctx)
  if ctx.KONG_CTX_REF then
    stash[ctx.KONG_CTX_REF] = nil
  end
end

----------------------------------------------------------------------------------------------------
-- plugin invocation

local function setup_plugin(ctx, plugin, conf)
  ctx.plugin_id = conf.__plugin_id
  ctx.KONG_CURRENT_PLUGIN = plugin.name
  log.set_namespace(plugin.name, ctx)
end

local function reset_plugin(ctx)
  ctx.KONG_LAST_PLUGIN = ctx.KONG_CURRENT_PLUGIN
  ctx.KONG_CURRENT_PLUGIN = nil
  log.reset_namespace(ctx)
end

-- Non-collecting phases (rewrite) and the fallback of collected phases: global instances only.
local function run_global(ctx, phase)
  for _, p in ipairs(state.plugins) do
    local fn = p.handler[phase]
    if fn then
      local configs = state.configs[p.name]
      local conf = configs and configs[GLOBAL_KEY]
      if conf then
        setup_plugin(ctx, p, conf)
        fn(p.handler, conf)
        reset_plugin(ctx)
      end
    end
  end
end

local COLLECTED_PHASES = { "response", "header_filter", "body_filter", "log" }

-- Collected phases (header_filter, body_filter, log): the instances chosen in access, in order;
-- the global instances when access never ran (no route, exit in rewrite, nginx errors).
local function run_collected(ctx, phase)
  local collected = ctx.plugins
  if not collected then
    return run_global(ctx, phase)
  end
  local list = collected[phase]
  for i = 1, #list, 2 do
    local p, conf = list[i], list[i + 1]
    setup_plugin(ctx, p, conf)
    p.handler[phase](p.handler, conf)
    reset_plugin(ctx)
  end
end

----------------------------------------------------------------------------------------------------
-- router and upstream preparation (runloop access.before / access.after)

-- The runloop's header lookup (kong.tools.http.get_header with ctx): the request's headers are
-- read once per request, and a repeated header counts with its first value only.
local function request_header(ctx, name)
  local headers = ctx.cached_request_headers
  if not headers then
    headers = ngx.req.get_headers()
    ctx.cached_request_headers = headers
  end
  local value = headers[name]
  return type(value) == "table" and value[1] or value
end

local function request_host_port()
  local host = ngx.var.http_host
  local port
  if host then
    local h, p = host:match("^(.-):(%d+)$")
    if h and not host:find("^%[") then
      host, port = h, tonumber(p)
    elseif host:find("^%[") then
      local h6, p6 = host:match("^(%[.-%]):?(%d*)$")
      host, port = h6 or host, tonumber(p6)
    end
  end
  host = lower(host or ngx.var.host or "")
  return host, port or tonumber(ngx.var.server_port)
end

-- the request headers read here are the ones request_header reads later
local function route_request(ctx)
  local var = ngx.var
  local uri = var.request_uri or "/"
  local q = find(uri, "?", 2, true)
  local raw_path = q and sub(uri, 1, q - 1) or uri
  local path = state.router.normalize(raw_path)
  local host, port = request_host_port()
  local headers = ngx.req.get_headers(100)
  ctx.cached_request_headers = headers
  local match = state.router:select({
    method = ngx.req.get_method(),
    path = path,
    host = host,
    port = port,
    headers = headers,
  })
  return match, path
end

local function prepare_upstream(ctx, match)
  local var = ngx.var
  local route, service = match.route, match.service
  ctx.route = route
  ctx.service = service
  ctx.router_matches = {
    uri = match.matched_path,
    uri_captures = match.uri_captures,
  }

  local pending = ctx.balancer_data
  if service then
    var.upstream_scheme = service.protocol == "https" and "https" or "http"
    var.upstream_uri = match.upstream_uri or "/"
    local bd = {
      scheme = service.protocol,
      type = "name",
      host = service.host,
      port = service.port,
      retries = service.retries,
      connect_timeout = service.connect_timeout,
      send_timeout = service.write_timeout,
      read_timeout = service.read_timeout,
      try_count = 0,
      tries = {},
    }
    -- kong.service.set_target & co called in rewrite
    if pending and pending.pending then
      for k, v in pairs(pending) do
        if k ~= "pending" then bd[k] = v end
      end
    end
    ctx.balancer_data = bd
  end

  if route.preserve_host then
    var.upstream_host = var.http_host or var.host
  end

  -- X-Forwarded-Proto/Host/Port/Path/Prefix: a trusted client's values are kept
  local realip_remote_addr = var.realip_remote_addr or var.remote_addr
  local proto, fhost, fport, fpath, fprefix
  if kong.ip.is_trusted(realip_remote_addr) then
    proto = request_header(ctx, "x_forwarded_proto")
    fhost = request_header(ctx, "x_forwarded_host")
    fport = request_header(ctx, "x_forwarded_port")
    fpath = request_header(ctx, "x_forwarded_path")
    fprefix = request_header(ctx, "x_forwarded_prefix")
  end
  var.upstream_x_forwarded_proto = proto or var.scheme
  var.upstream_x_forwarded_host = fhost or var.host
  var.upstream_x_forwarded_port = fport or tostring(ctx.host_port or var.server_port)
  var.upstream_x_forwarded_path = fpath or kong.request.get_raw_path()
  if fprefix then
    var.upstream_x_forwarded_prefix = fprefix
  elseif route.strip_path and match.matched_path and match.matched_path ~= "/" then
    var.upstream_x_forwarded_prefix = match.matched_path
  end

  -- X-Forwarded-For is appended to whoever sent it, trusted or not; the address appended is the
  -- connecting client's even when the realip module replaced remote_addr
  local xff = request_header(ctx, "x_forwarded_for")
  var.upstream_x_forwarded_for = xff and (xff .. ", " .. realip_remote_addr) or var.remote_addr

  -- Via: this hop is named with the client's HTTP version (a number: HTTP/1.0 gives "1")
  local protocol_version = ngx.req.http_version()
  local inbound_via = protocol_version and (protocol_version .. " " .. SERVER_HEADER) or SERVER_HEADER
  local req_via = request_header(ctx, "via")
  var.upstream_via = req_via and (req_via .. ", " .. inbound_via) or inbound_via
end

-- access.after: query string, Upgrade/Connection/TE, DNS, Host header
local function finish_upstream(ctx)
  local var = ngx.var
  local upstream_uri = var.upstream_uri
  if var.is_args == "?" or sub(var.request_uri or "", -1) == "?" then
    var.upstream_uri = upstream_uri .. "?" .. (var.args or "")
  end

  local upgrade = var.http_upgrade
  if upgrade and lower(upgrade) == "websocket" then
    var.upstream_connection = "keep-alive, Upgrade"
    var.upstream_upgrade = "websocket"
  else
    var.upstream_connection = "keep-alive"
  end
  if var.http_te == "trailers" then
    var.upstream_te = "trailers"
  end

  local bd = ctx.balancer_data
  local ip, err, moved_port = resolver.resolve(bd.host)
  if not ip then
    kong.log.err("failed the initial dns/balancer resolve for '", bd.host, "' with: ", err)
    return nil, "name resolution failed", 503
  end
  bd.ip = ip
  -- the Host header keeps the configured port; only the connection goes where KONG_LOCAL_HOSTS says
  bd.moved_port = moved_port
  bd.hostname = bd.host

  local upstream_host = var.upstream_host
  if not upstream_host or upstream_host == "" then
    upstream_host = bd.host
    local scheme = var.upstream_scheme
    if (scheme == "http" and bd.port ~= 80) or (scheme == "https" and bd.port ~= 443) then
      upstream_host = upstream_host .. ":" .. bd.port
    end
    var.upstream_host = upstream_host
  end
  return true
end

local function flush_delayed_response(ctx)
  ctx.delay_response = nil
  ctx.buffered_proxying = nil
  if type(ctx.delayed_response_callback) == "function" then
    ctx.delayed_response_callback(ctx)
    return
  end
  local dr = ctx.delayed_response
  local message = type(dr.content) == "table" and dr.content.message or dr.content
  kong.response.error(dr.status_code, message, dr.headers)
end

----------------------------------------------------------------------------------------------------
-- buffered proxying (Kong.response): the upstream response is read whole through a subrequest,
-- the `response` handlers see it, then it is sent.

local HTTP_METHODS = {
  GET = ngx.HTTP_GET, HEAD = ngx.HTTP_HEAD, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST,
  DELETE = ngx.HTTP_DELETE, OPTIONS = ngx.HTTP_OPTIONS, MKCOL = ngx.HTTP_MKCOL, COPY = ngx.HTTP_COPY,
  MOVE = ngx.HTTP_MOVE, PROPFIND = ngx.HTTP_PROPFIND, PROPPATCH = ngx.HTTP_PROPPATCH,
  LOCK = ngx.HTTP_LOCK, UNLOCK = ngx.HTTP_UNLOCK, PATCH = ngx.HTTP_PATCH, TRACE = ngx.HTTP_TRACE,
}

local HOP_BY_HOP = {
  ["connection"] = true, ["keep-alive"] = true, ["proxy-authenticate"] = true,
  ["proxy-authorization"] = true, ["te"] = true, ["trailers"] = true,
  ["transfer-encoding"] = true, ["upgrade"] = true, ["content-length"] = true,
}

local function buffered_response(ctx)
  ctx.KONG_PHASE = "response"
  ngx.req.read_body()
  local method = ngx.req.get_method()
  local res = ngx.location.capture("/kong_buffered_http", {
    method = HTTP_METHODS[method] or ngx.HTTP_GET,
    always_forward_body = true,
    share_all_vars = true,
    ctx = ctx,
  })
  if res.truncated and method ~= "HEAD" then
    ctx.KONG_PHASE = "error"
    ngx.status = 502
    return ngx.exit(502)
  end
  ctx.KONG_PHASE = "response"
  ctx.buffered_status = res.status
  ctx.buffered_headers = res.header
  ctx.buffered_body = res.body

  ngx.status = res.status
  for name, value in pairs(res.header) do
    if not HOP_BY_HOP[lower(name)] then
      ngx.header[name] = value
    end
  end

  local collected = ctx.plugins and ctx.plugins.response or {}
  for i = 1, #collected, 2 do
    local p, conf = collected[i], collected[i + 1]
    setup_plugin(ctx, p, conf)
    p.handler.response(p.handler, conf)
    reset_plugin(ctx)
  end

  local body = ctx.buffered_body
  if body and body ~= "" then
    ngx.header["Content-Length"] = #body
    ngx.print(body)
  end
  return ngx.exit(ngx.status)
end

----------------------------------------------------------------------------------------------------
-- phase drivers

function _M.rewrite()
  if ngx.var.kong_proxy_mode == "unbuffered" then
    apply_ref()
    return
  end
  local ctx = ngx.ctx
  ctx.KONG_PROCESSING_START = ctx.KONG_PROCESSING_START or ngx.req.start_time() * 1000
  ctx.KONG_REWRITE_START = now_ms()
  ctx.KONG_PHASE = "rewrite"
  ctx.request_id = ngx.var.kong_request_id
  -- the port the client connected to (Kong's rewrite.before; no port_maps here), not the Host's
  ctx.host_port = tonumber(ngx.var.server_port)
  stash_ref(ctx)

  run_global(ctx, "rewrite")

  ctx.KONG_REWRITE_ENDED_AT = now_ms()
  ctx.KONG_REWRITE_TIME = ctx.KONG_REWRITE_ENDED_AT - ctx.KONG_REWRITE_START
end

function _M.access()
  if ngx.var.kong_proxy_mode == "unbuffered" then
    apply_ref()
    return
  end
  local ctx = ngx.ctx
  ctx.KONG_ACCESS_START = now_ms()
  ctx.KONG_PHASE = "access"

  local match = route_request(ctx)
  if not match then
    ctx.KONG_ACCESS_ENDED_AT = now_ms()
    ctx.KONG_RESPONSE_LATENCY = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_PROCESSING_START
    return kong.response.error(404, "no Route matched with those values")
  end
  prepare_upstream(ctx, match)

  -- the collecting iterator: each plugin's instance is chosen at its turn, with the consumer
  -- known at that moment; exit (delayed) skips the remaining access handlers only
  local collected = { response = {}, header_filter = {}, body_filter = {}, log = {} }
  ctx.plugins = collected
  ctx.delay_response = true
  local route_id = ctx.route.id
  local service_id = ctx.service and ctx.service.id or nil
  for _, p in ipairs(state.plugins) do
    local configs = state.configs[p.name]
    if configs and next(configs) then
      local consumer = ctx.authenticated_consumer
      local conf = lookup(configs, route_id, service_id, consumer and consumer.id or nil)
      if conf then
        local handler = p.handler
        for _, phase in ipairs(COLLECTED_PHASES) do
          if handler[phase] then
            local list = collected[phase]
            list[#list + 1] = p
            list[#list + 1] = conf
          end
        end
        if #collected.response > 0 then
          ctx.buffered_proxying = true
        end
        if handler.access and not ctx.delayed_response then
          setup_plugin(ctx, p, conf)
          local co = co_create(handler.access)
          local ok, err = co_resume(co, handler, conf)
          if not ok then
            kong.log.err(err)
            ctx.delayed_response = {
              status_code = 500,
              content = { message = "An unexpected error occurred" },
            }
            ctx.KONG_UNEXPECTED = true
          end
          reset_plugin(ctx)
        end
      end
    end
  end

  ctx.KONG_ACCESS_ENDED_AT = now_ms()
  ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START

  if ctx.delayed_response then
    ctx.KONG_RESPONSE_LATENCY = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_PROCESSING_START
    return flush_delayed_response(ctx)
  end
  ctx.delay_response = nil

  if not ctx.service then
    ctx.KONG_RESPONSE_LATENCY = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_PROCESSING_START
    ctx.buffered_proxying = nil
    return kong.response.error(503, "no Service found with those values")
  end

  local ok, err, code = finish_upstream(ctx)
  if not ok then
    return kong.response.exit(code, { message = err })
  end

  ctx.KONG_PROXIED = true

  if ctx.buffered_proxying and ngx.var.upstream_upgrade == "" then
    return buffered_response(ctx)
  end
  if ctx.buffered_proxying then
    ctx.buffered_proxying = nil
    kong.log.notice("response buffering was turned off: connection upgrade (", ngx.var.upstream_upgrade, ")")
  end

  local route = ctx.route
  local req_buf, res_buf = route.request_buffering ~= false, route.response_buffering ~= false
  if not req_buf and not res_buf then
    return ngx.exec("@unbuffered")
  elseif not req_buf then
    return ngx.exec("@unbuffered_request")
  elseif not res_buf then
    return ngx.exec("@unbuffered_response")
  end
end

function _M.balancer()
  local ctx = ngx.ctx
  local balancer = require "ngx.balancer"
  local bd = ctx.balancer_data
  local now = now_ms()
  ctx.KONG_BALANCER_START = ctx.KONG_BALANCER_START or now
  local previous_phase = ctx.KONG_PHASE
  ctx.KONG_PHASE = "balancer"

  local tries = bd.tries
  local try_count = bd.try_count + 1
  bd.try_count = try_count
  local current = { balancer_start = now }
  tries[try_count] = current

  if try_count > 1 then
    local previous = tries[try_count - 1]
    previous.state, previous.code = balancer.get_last_failure()
    if bd.retry_callback then
      local ok, err = pcall(bd.retry_callback)
      if not ok then
        ngx.log(ngx.ERR, "retry callback failed: ", tostring(err))
      end
      local ip = resolver.resolve(bd.host)
      bd.ip = ip or bd.ip
    end
  elseif bd.retries and bd.retries > 0 then
    balancer.set_more_tries(bd.retries)
  end

  local port = bd.moved_port or bd.port
  current.ip, current.port = bd.ip, port
  local ok, err = balancer.set_current_peer(bd.ip, port)
  if not ok then
    ngx.log(ngx.ERR, "failed to set the current peer (address: ", tostring(bd.ip), " port: ",
            tostring(bd.port), "): ", tostring(err))
    ctx.KONG_PHASE = previous_phase
    return ngx.exit(500)
  end
  ok, err = balancer.set_timeouts(bd.connect_timeout / 1000, bd.send_timeout / 1000, bd.read_timeout / 1000)
  if not ok then
    ngx.log(ngx.ERR, "could not set upstream timeouts: ", err)
  end

  local ended = now_ms()
  current.balancer_latency = ended - current.balancer_start
  ctx.KONG_BALANCER_ENDED_AT = ended
  ctx.KONG_BALANCER_TIME = ended - ctx.KONG_BALANCER_START
  ctx.KONG_PROXY_LATENCY = ended - ctx.KONG_PROCESSING_START
  ctx.KONG_PHASE = previous_phase
end

-- header_filter.after: Kong's own response headers, written once the plugins' header_filter ran
-- (so a plugin cannot remove them, and it sees the upstream's Via and Server, not Kong's)
local function set_kong_response_headers(ctx)
  local header = ngx.header
  if ctx.KONG_PROXIED then
    header["X-Kong-Upstream-Latency"] = ctx.KONG_WAITING_TIME
    header["X-Kong-Proxy-Latency"] = ctx.KONG_PROXY_LATENCY
    local proxy_http_version = ctx.proxy_http_version or kong.configuration.proxy_http_version
                               or DEFAULT_PROXY_HTTP_VERSION
    local outbound_via = proxy_http_version .. " " .. SERVER_HEADER
    local resp_via = ngx.var.upstream_http_via
    header["Via"] = resp_via and (resp_via .. ", " .. outbound_via) or outbound_via
    -- the upstream's own Server header is passed through (proxy_pass_header Server)
    if not header["Server"] then
      header["Server"] = SERVER_HEADER
    end
  else
    header["X-Kong-Response-Latency"] = ctx.KONG_RESPONSE_LATENCY
    -- a plugin that answered with Kong's token in Via keeps its response free of Server
    if header["Via"] ~= SERVER_HEADER then
      header["Server"] = SERVER_HEADER
    end
  end
  header["X-Kong-Request-Id"] = ctx.request_id or ngx.var.kong_request_id
end

function _M.header_filter()
  local ctx = apply_ref()
  ctx.KONG_PROCESSING_START = ctx.KONG_PROCESSING_START or ngx.req.start_time() * 1000
  local now = now_ms()
  ctx.KONG_HEADER_FILTER_START = now
  ctx.KONG_PHASE = "header_filter"

  if ctx.KONG_PROXIED then
    local proxied_at = ctx.KONG_BALANCER_ENDED_AT or ctx.KONG_ACCESS_ENDED_AT or now
    ctx.KONG_WAITING_TIME = math.floor(now - proxied_at + 0.5)
    ctx.KONG_PROXY_LATENCY = math.floor((ctx.KONG_PROXY_LATENCY or (proxied_at - ctx.KONG_PROCESSING_START)) + 0.5)
  else
    ctx.KONG_RESPONSE_LATENCY = math.floor((ctx.KONG_RESPONSE_LATENCY or (now - ctx.KONG_PROCESSING_START)) + 0.5)
  end

  run_collected(ctx, "header_filter")
  set_kong_response_headers(ctx)

  ctx.KONG_HEADER_FILTER_ENDED_AT = now_ms()
end

function _M.body_filter()
  local ctx = apply_ref()
  ctx.KONG_PHASE = "body_filter"
  local arg = ngx.arg
  if ctx.response_body then
    arg[1] = ctx.response_body
    arg[2] = true
  end

  run_collected(ctx, "body_filter")

  if arg[2] then
    ctx.KONG_BODY_FILTER_ENDED_AT = now_ms()
  end
end

function _M.log()
  local ctx = apply_ref()
  ctx.KONG_PHASE = "log"
  local ok, err = pcall(run_collected, ctx, "log")
  release_ref(ctx)
  if not ok then
    error(err, 0)
  end
end

-- kong/error_handlers.lua: the body of nginx-generated errors (502, 504, 500, 400, ...)
function _M.handle_error()
  local ctx = apply_ref()
  ctx.KONG_PHASE = "error"
  ctx.KONG_UNEXPECTED = true

  local response = kong.response
  local accept = kong.request.get_header("Accept")
  if accept == nil then
    accept = kong.request.get_header("Content-Type")
    if accept == nil then
      accept = kong.configuration.error_default_type
    end
  end
  local status = ngx.status
  if not status or status < 400 then
    status = 500
  end
  local message = response.get_http_error_message(status)
  local headers
  if find(accept, "application/grpc", 1, true) == 1 then
    message = { message = message }
  else
    local mime = response.get_mime_type(accept)
    local templates = {
      ["application/json; charset=utf-8"] = "{\n  \"message\":\"%s\",\n  \"request_id\":\"%s\"\n}",
      ["text/plain; charset=utf-8"] = "%s\nrequest_id: %s\n",
      ["text/html; charset=utf-8"] = "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n" ..
        "    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>%s.</p>\n" ..
        "    <p>request_id: %s</p>\n  </body>\n</html>\n",
      ["application/xml; charset=utf-8"] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n" ..
        "  <message>%s</message>\n  <requestid>%s</requestid>\n</error>\n",
    }
    local template = templates[mime] or templates["application/json; charset=utf-8"]
    message = string.format(template, message, response.request_id())
    headers = { ["Content-Type"] = mime }
  end

  ctx.buffered_proxying = nil
  ctx.response_body = nil
  ctx.delay_response = nil
  ctx.delayed_response = nil
  ctx.delayed_response_callback = nil

  return response.exit(status, message, headers)
end

return _M
