--- kong.tools.redis.schema as in Kong 3.9: the `redis` record that
-- rate-limiting style plugins embed in their config.
local typedefs = require "kong.db.schema.typedefs"

local DEFAULT_TIMEOUT = 2000

return {
  config_schema = {
    type = "record",
    fields = {
      { host = typedefs.host },
      { port = typedefs.port({ default = 6379 }) },
      { timeout = typedefs.timeout { default = DEFAULT_TIMEOUT } },
      { username = { type = "string", referenceable = true } },
      { password = { type = "string", encrypted = true, referenceable = true, len_min = 0 } },
      { database = { type = "integer", default = 0 } },
      { ssl = { type = "boolean", required = false, default = false } },
      { ssl_verify = { type = "boolean", required = false, default = false } },
      { server_name = typedefs.sni { required = false } },
    },
  },
}
