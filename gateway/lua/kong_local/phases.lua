-- Kong's PDK phase bookkeeping (kong/pdk/private/phases.lua): the phase a PDK function is called
-- in is ngx.ctx.KONG_PHASE, set by each phase driver, and a function restricted to some phases
-- raises "function cannot be called in <phase> phase (only in: ...)".
local get_request = require("resty.core.base").get_request
local concat = table.concat
local fmt = string.format

local _M = {}

-- Kong's order (the bit order of its PHASES constants): error messages list phases in this order.
local ORDER = {
  "init_worker", "certificate", "client_hello", "rewrite", "access", "balancer", "response",
  "header_filter", "body_filter", "log", "preread", "error", "admin_api", "cluster_listener",
}
_M.ORDER = ORDER

local RANK = {}
for i, name in ipairs(ORDER) do
  RANK[name] = i
end

-- Phase of the worker outside of requests (init_worker, configure); nil elsewhere.
local worker_phase

function _M.set_worker_phase(name)
  worker_phase = name
end

--- Builds an accepted-phase set from names, kept in Kong's order for the error message.
function _M.new(...)
  local names = { ... }
  table.sort(names, function(a, b) return RANK[a] < RANK[b] end)
  local set = { list = concat(names, ", ") }
  for _, n in ipairs(names) do
    set[n] = true
  end
  return set
end

function _M.current()
  local ngx_phase = ngx.get_phase()
  if ngx_phase == "init" or ngx_phase == "init_worker" then
    return worker_phase or "init_worker"
  end
  -- ngx.ctx raises outside a request: ask for the request first (no closure, no pcall).
  if not get_request() then
    return nil
  end
  local ctx = ngx.ctx
  local phase = ctx.KONG_PHASE
  if not phase and ngx_phase == "content" then
    return "admin_api"
  end
  return phase
end

--- Raises like Kong when the current phase is not in `accepted` (built with _M.new).
function _M.check(accepted)
  local current = _M.current()
  if not current then
    error("no phase in kong.ctx.core.phase", 3)
  end
  if accepted[current] then
    return
  end
  error(fmt("function cannot be called in %s phase (only in: %s)", current, accepted.list), 3)
end

function _M.check_not(rejected_name)
  local current = _M.current()
  if not current then
    error("no phase in kong.ctx.core.phase", 3)
  end
  if current == rejected_name then
    error(fmt("function cannot be called in %s phase", current), 3)
  end
end

-- The phase groups Kong's PDK modules use (names from the phases_code column of pdk-functions.tsv).
_M.request = _M.new("rewrite", "access", "balancer", "response", "header_filter", "body_filter", "log",
                    "error", "admin_api", "cluster_listener")
_M.before_content = _M.new("rewrite", "access", "response", "error", "admin_api")
_M.header_body_log = _M.new("response", "header_filter", "body_filter", "log", "error", "admin_api")
_M.rewrite_access_header = _M.new("rewrite", "access", "balancer", "response", "header_filter", "error",
                                  "admin_api")
_M.body_filter = _M.new("body_filter")
_M.auth_and_later = _M.new("access", "response", "header_filter", "body_filter", "log")
_M.access = _M.new("access")
_M.router = _M.new("access", "response", "header_filter", "body_filter", "log")
_M.access_rewrite_balancer = _M.new("rewrite", "access", "balancer")
_M.access_and_rewrite = _M.new("rewrite", "access")
_M.access_rewrite_balancer_preread = _M.new("rewrite", "access", "balancer", "preread")
_M.service_response = _M.new("response", "header_filter", "body_filter", "log")
_M.with_ctx = _M.new("rewrite", "access", "response", "header_filter", "body_filter", "log")
_M.log = _M.new("log")
_M.certificate = _M.new("certificate")
_M.client_hello = _M.new("client_hello")
_M.rewrite_and_later = _M.new("rewrite", "access", "balancer", "response", "log")
_M.rewrite_before_log = _M.new("rewrite", "access", "balancer", "response")
_M.preread_and_balancer = _M.new("balancer", "preread")

return _M
