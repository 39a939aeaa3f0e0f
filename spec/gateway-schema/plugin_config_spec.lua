-- process_plugin_config / validate_plugin_schema: a declarative plugin entry
-- validated as Kong's `plugins` entity specialised by the plugin's schema.
local schema = require "kong_local.schema"
local typedefs = require "kong.db.schema.typedefs"
local redis_schema = require "kong.tools.redis.schema"

local null = schema.null


local function limiting_schema()
  return {
    name = "token-rate-limiting",
    fields = {
      { consumer = typedefs.no_consumer },
      { protocols = typedefs.protocols_http },
      { config = {
          type = "record",
          fields = {
            { minute = { type = "number", gt = 0 } },
            { hour = { type = "number", between = { 0, 2147483648 } } },
            { policy = { type = "string", default = "local", one_of = { "local", "redis" } } },
            { limit_by = { type = "string", default = "consumer", one_of = { "consumer", "ip", "header" } } },
            { header_name = typedefs.header_name },
            { redis = redis_schema.config_schema },
            { error_code = { type = "integer", default = 429, between = { 400, 599 } } },
            { hide_client_headers = { type = "boolean", required = true, default = false } },
            { models = { type = "array", elements = { type = "string" }, default = {} } },
          },
          entity_checks = {
            { at_least_one_of = { "minute", "hour" } },
          },
      } },
    },
    entity_checks = {
      { conditional = { if_field = "config.policy", if_match = { eq = "redis" },
                        then_field = "config.redis.host", then_match = { required = true } } },
      { conditional = { if_field = "config.limit_by", if_match = { eq = "header" },
                        then_field = "config.header_name", then_match = { required = true } } },
    },
  }
end


describe("process_plugin_config", function()
  local s = limiting_schema()

  it("returns the config with defaults, nested record defaults included", function()
    local conf, entity = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = { minute = 10 } })
    assert.is_table(conf)
    assert.equal(10, conf.minute)
    assert.equal("local", conf.policy)
    assert.equal("consumer", conf.limit_by)
    assert.equal(429, conf.error_code)
    assert.equal(false, conf.hide_client_headers)
    assert.same({}, conf.models)
    -- the redis record gets its defaults although the entry has none
    assert.equal(6379, conf.redis.port)
    assert.equal(2000, conf.redis.timeout)
    assert.equal(0, conf.redis.database)
    assert.equal(false, conf.redis.ssl)
    assert.equal(false, conf.redis.ssl_verify)
    -- unset optional fields are nil, as a handler sees them in Kong
    assert.is_nil(conf.hour)
    assert.is_nil(conf.header_name)
    assert.is_nil(conf.redis.host)
    assert.is_nil(conf.redis.password)
    -- the entry itself, with its own defaults
    assert.equal("token-rate-limiting", entity.name)
    assert.equal(true, entity.enabled)
    assert.same({ "grpc", "grpcs", "http", "https" },
                { entity.protocols[1], entity.protocols[2], entity.protocols[3], entity.protocols[4] })
    assert.is_true(entity.protocols.http)
    assert.is_nil(entity.consumer)
    assert.equal(conf, entity.config)
  end)

  it("keeps what the entry sets", function()
    local conf, entity = schema.process_plugin_config("token-rate-limiting", s, {
      name = "token-rate-limiting", enabled = false, protocols = { "https" },
      config = { hour = 100, policy = "redis", redis = { host = "127.0.0.1", port = 6380 } },
    })
    assert.equal("redis", conf.policy)
    assert.equal("127.0.0.1", conf.redis.host)
    assert.equal(6380, conf.redis.port)
    assert.equal(2000, conf.redis.timeout)
    assert.equal(false, entity.enabled)
    assert.same({ "https" }, { entity.protocols[1], entity.protocols[2] })
  end)

  it("fills the config when the entry has none at all", function()
    local s2 = { name = "p", fields = { { config = { type = "record", fields = {
      { flag = { type = "boolean", default = true } } } } } } }
    local conf = schema.process_plugin_config("p", s2, { name = "p" })
    assert.same({ flag = true }, conf)
  end)

  it("does not modify the entry it was given", function()
    local entry = { name = "token-rate-limiting", config = { minute = 1 } }
    schema.process_plugin_config("token-rate-limiting", s, entry)
    assert.same({ name = "token-rate-limiting", config = { minute = 1 } }, entry)
  end)

  it("names plugin, field path and rule: between", function()
    local conf, err, err_t = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = { hour = 2147483649 } })
    assert.is_nil(conf)
    assert.equal("in 'plugins' (token-rate-limiting): config.hour: value should be between 0 and 2147483648", err)
    assert.same({ config = { hour = "value should be between 0 and 2147483648" } }, err_t)
  end)

  it("gt, one_of, type and header name errors, all reported at once", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s, {
      name = "token-rate-limiting",
      config = { minute = 0, policy = "cluster", error_code = "429", header_name = "x y" },
    })
    assert.equal("in 'plugins' (token-rate-limiting): "
      .. "config.error_code: expected an integer; "
      .. "config.header_name: bad header name 'x y', allowed characters are A-Z, a-z, 0-9, '_', and '-'; "
      .. "config.minute: value must be greater than 0; "
      .. "config.policy: expected one of: local, redis", err)
  end)

  it("unknown fields, in the config and in the entry", function()
    local _, err, err_t = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", configs = {}, config = { minute = 1, minutes = 2 } })
    assert.equal("in 'plugins' (token-rate-limiting): config.minutes: unknown field; configs: unknown field", err)
    assert.equal("unknown field", err_t.configs)
  end)

  it("a record's entity check is reported under the record", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = {} })
    assert.equal("in 'plugins' (token-rate-limiting): config: at least one of these fields must be non-empty: 'minute', 'hour'", err)
  end)

  it("the schema's own entity checks see the filled-in config", function()
    local _, err, err_t = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = { minute = 1, policy = "redis" } })
    assert.equal("in 'plugins' (token-rate-limiting): failed conditional validation given value of field 'config.policy'; "
      .. "config.redis.host: required field missing", err)
    assert.equal("required field missing", err_t.config.redis.host)
  end)

  it("nested record fields are validated with their typedefs", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s, {
      name = "token-rate-limiting",
      config = { minute = 1, policy = "redis", redis = { host = "redis:6379", port = 70000, timeout = -1 } },
    })
    -- the conditional's then_match inherits the host validator, so Kong
    -- reports the conditional as failed too
    assert.equal("in 'plugins' (token-rate-limiting): "
      .. "failed conditional validation given value of field 'config.policy'; "
      .. "config.redis.host: must not have a port; "
      .. "config.redis.port: value should be between 0 and 65535; "
      .. "config.redis.timeout: value should be between 0 and 2147483646", err)
  end)

  it("no_consumer: a consumer-scoped entry fails with 'value must be null'", function()
    local _, err, err_t = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", consumer = "alice", config = { minute = 1 } })
    assert.equal("in 'plugins' (token-rate-limiting): consumer: value must be null", err)
    assert.same({ consumer = "value must be null" }, err_t)
  end)

  it("route and service scopes are allowed when the schema does not forbid them", function()
    local conf, entity = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", route = "chat", service = { id = "x" }, config = { minute = 1 } })
    assert.is_table(conf)
    assert.equal("chat", entity.route)
    assert.same({ id = "x" }, entity.service)
  end)

  it("protocols_http: other protocols are refused per entry", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", protocols = { "http", "tcp" }, config = { minute = 1 } })
    assert.equal("in 'plugins' (token-rate-limiting): protocols.2: expected one of: grpc, grpcs, http, https", err)
  end)

  it("the plugins entity's own fields: enabled, tags, instance_name, id", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s, {
      name = "token-rate-limiting", enabled = "yes", tags = { "a,b" }, instance_name = "bad name",
      id = "not-a-uuid", config = { minute = 1 },
    })
    assert.equal("in 'plugins' (token-rate-limiting): enabled: expected a boolean; "
      .. "id: expected a valid UUID; "
      .. "instance_name: invalid value 'bad name': the only accepted ascii characters are alphanumerics or ., -, _, and ~; "
      .. "tags.1: invalid tag 'a,b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences", err)
  end)

  it("a null config is 'required field missing' (records are required in plugin schemas)", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = null })
    assert.equal("in 'plugins' (token-rate-limiting): config: required field missing", err)
  end)

  it("a config that is not a table", function()
    local _, err = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = "minute=1" })
    assert.equal("in 'plugins' (token-rate-limiting): config: expected a record", err)
  end)

  it("a plugin that is not installed", function()
    local conf, err = schema.process_plugin_config("nope", nil, { name = "nope" })
    assert.is_nil(conf)
    assert.equal("in 'plugins' (nope): name: plugin 'nope' not enabled; add it to the 'plugins' configuration property", err)
  end)

  it("an entry that is not a table", function()
    local conf, err = schema.process_plugin_config("token-rate-limiting", s, "x")
    assert.is_nil(conf)
    assert.equal("in 'plugins' (token-rate-limiting): expected an input table", err)
  end)

  it("fills in the name when the entry leaves it out", function()
    local _, entity = schema.process_plugin_config("token-rate-limiting", s, { config = { minute = 1 } })
    assert.equal("token-rate-limiting", entity.name)
  end)

  it("handlers get fresh tables: two calls do not share defaults", function()
    local a = schema.process_plugin_config("token-rate-limiting", s, { config = { minute = 1 } })
    local b = schema.process_plugin_config("token-rate-limiting", s, { config = { minute = 1 } })
    assert.are_not.equal(a.redis, b.redis)
    assert.are_not.equal(a.models, b.models)
  end)

  it("leaves the plugin's schema table as it was", function()
    local fresh = limiting_schema()
    schema.process_plugin_config("token-rate-limiting", fresh, { config = { minute = 1 } })
    local cfg = fresh.fields[3].config
    assert.is_nil(cfg.required)
    assert.is_nil(cfg.fields[6].redis.required)
  end)

  it("a record marked required = false stays optional (no nested defaults)", function()
    local s2 = { name = "p", fields = { { config = { type = "record", fields = {
      { opt = { type = "record", required = false, fields = { { x = { type = "integer", default = 1 } } } } },
    } } } } }
    local conf = schema.process_plugin_config("p", s2, { config = {} })
    assert.is_nil(conf.opt)
  end)
end)


describe("pretty_print_error", function()
  it("prints Kong's declarative error layout", function()
    local s = limiting_schema()
    local _, _, err_t = schema.process_plugin_config("token-rate-limiting", s,
      { name = "token-rate-limiting", config = { minute = 1, hour = -1 } })
    assert.equal(table.concat({
      "in 'plugins':",
      "  - in entry 2 of 'plugins':",
      "    in 'config':",
      "      in 'hour': value should be between 0 and 2147483648",
    }, "\n"), schema.pretty_print_error({ plugins = { [2] = err_t } }))
  end)
end)


describe("validate_plugin_schema", function()
  it("accepts a well-formed schema", function()
    assert.is_true(schema.validate_plugin_schema("token-rate-limiting", limiting_schema()))
    assert.is_true(schema.validate_plugin_schema("key-auth", require "kong.plugins.key-auth.schema"))
  end)

  it("needs a schema table", function()
    local ok, err = schema.validate_plugin_schema("x", nil)
    assert.is_nil(ok)
    assert.equal("error loading plugin schemas: on plugin 'x': no configuration schema found for plugin: x", err)
  end)

  it("needs a name", function()
    local _, err = schema.validate_plugin_schema("x", { fields = { { config = { type = "record", fields = {} } } } })
    assert.equal("error loading plugin schemas: on plugin 'x': schema violation (name: required field missing)", err)
  end)

  it("needs a fields table", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x" })
    assert.equal("error loading plugin schemas: on plugin 'x': schema violation ('fields' must be a table)", err)
  end)

  it("needs a config record", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x", fields = {
      { protocols = typedefs.protocols_http },
    } })
    assert.equal("error loading plugin schemas: on plugin 'x': schema violation "
      .. "(config: a plugin schema must declare a 'config' field)", err)
  end)

  it("refuses fields the plugins entity does not have", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x", fields = {
      { config = { type = "record", fields = {} } },
      { settings = { type = "record", fields = {} } },
    } })
    assert.equal("error loading plugin schemas: on plugin 'x': error initializing schema for plugin: "
      .. "error in definition of 'x': settings: cannot create a new field", err)
  end)

  it("refuses a field of another type than the plugins entity's", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x", fields = {
      { config = { type = "string" } },
    } })
    assert.equal("error loading plugin schemas: on plugin 'x': error initializing schema for plugin: "
      .. "error in definition of 'x': config: cannot change type in a specialized field", err)
  end)

  it("checks field definitions: types and their companion attributes", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x", fields = {
      { config = { type = "record", fields = {
        { a = { type = "array" } },
        { b = { type = "map", keys = { type = "string" } } },
        { c = { type = "float" } },
        { d = { default = 1 } },
        { e = { type = "record", fields = { { f = { type = "set" } } } } },
      } } },
    } })
    assert.equal("error loading plugin schemas: on plugin 'x': schema violation ("
      .. "config.a: field of type 'array' must declare 'elements'; "
      .. "config.b: field of type 'map' must declare 'values'; "
      .. "config.c: invalid type: float; "
      .. "config.d: missing type declaration; "
      .. "config.e.f: field of type 'set' must declare 'elements')", err)
  end)

  it("refuses unknown entity checks", function()
    local _, err = schema.validate_plugin_schema("x", { name = "x",
      fields = { { config = { type = "record", fields = {} } } },
      entity_checks = { { at_most_one_of = { "a" } } } })
    assert.equal("error loading plugin schemas: on plugin 'x': schema violation (entity_checks.1: unknown entity check: at_most_one_of)", err)
  end)

  it("process_plugin_config reports a broken schema the same way", function()
    local conf, err = schema.process_plugin_config("x", { name = "x", fields = {
                                                     { config = { type = "record", fields = {} } },
                                                     { nope = { type = "string" } } } },
                                                   { name = "x" })
    assert.is_nil(conf)
    assert.matches("cannot create a new field", err, 1, true)
  end)
end)


describe("the bundled key-auth schema", function()
  local ka = require "kong.plugins.key-auth.schema"

  it("has Kong 3.9's defaults", function()
    local conf = schema.process_plugin_config("key-auth", ka, { name = "key-auth" })
    assert.same({
      key_names = { "apikey" },
      hide_credentials = false,
      key_in_header = true,
      key_in_query = true,
      key_in_body = false,
      run_on_preflight = true,
    }, conf)
  end)

  it("refuses key names that are not header names", function()
    local _, err = schema.process_plugin_config("key-auth", ka,
      { name = "key-auth", config = { key_names = { "api key" } } })
    assert.equal("in 'plugins' (key-auth): config.key_names.1: bad header name 'api key', "
      .. "allowed characters are A-Z, a-z, 0-9, '_', and '-'", err)
  end)

  it("cannot be scoped to a consumer", function()
    local _, err = schema.process_plugin_config("key-auth", ka, { name = "key-auth", consumer = "bob" })
    assert.equal("in 'plugins' (key-auth): consumer: value must be null", err)
  end)

  it("keeps anonymous and realm when set", function()
    local conf = schema.process_plugin_config("key-auth", ka,
      { name = "key-auth", config = { anonymous = "guest", realm = "api" } })
    assert.equal("guest", conf.anonymous)
    assert.equal("api", conf.realm)
  end)
end)
