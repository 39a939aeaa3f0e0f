-- Runs inside the nginx that spec/gateway-schema/schema-in-nginx.test.ts
-- starts: the schema library where the gateway uses it, with ngx.re and the
-- cosocket-era ngx.null instead of busted's stand-ins.
local cjson = require "cjson"
local schema = require "kong_local.schema"
local typedefs = require "kong.db.schema.typedefs"

local _M = {}

local plugin_schema = {
  name = "demo",
  fields = {
    { consumer = typedefs.no_consumer },
    { protocols = typedefs.protocols_http },
    { config = { type = "record", fields = {
      { pattern = { type = "string", is_regex = true } },
      { id = { type = "string", uuid = true } },
      { header = typedefs.header_name },
      { upstream = typedefs.host },
      { limit = { type = "integer", default = 10, between = { 1, 100 } } },
      { redis = require("kong.tools.redis.schema").config_schema },
    } } },
  },
}

-- results computed in init_by_lua, where the gateway validates its config
local at_init

local function run_all()
  local out = {}
  local function try(name, config)
    local conf, err = schema.process_plugin_config("demo", plugin_schema, { name = "demo", config = config })
    -- on success the second value is the processed entry, not an error
    out[name] = conf and { conf = conf } or { err = err }
  end
  try("valid", { pattern = "^/v1/(chat|completions)$", id = "6a8d3b5e-0f7c-4a19-9c2e-1b2c3d4e5f60",
                 header = "X-Tenant", upstream = "::1" })
  try("bad_regex", { pattern = "(unclosed" })
  try("bad_uuid", { id = "6a8d3b5e-0f7c-4a19-9c2e-1b2c3d4e5f6" })
  try("bad_header", { header = "x y" })
  try("bad_host", { upstream = "example.com:80" })
  try("bad_limit", { limit = 0 })
  out.null_is_ngx_null = schema.null == ngx.null
  return out
end

function _M.init()
  at_init = run_all()
end

function _M.content()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ init = at_init, request = run_all() }))
end

return _M
