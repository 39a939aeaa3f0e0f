-- token-rate-limiting's schema, validated the way Kong does (the local gateway's copy of
-- Kong's schema library: gateway/lua/kong_local/schema).
local kong_schema = require("kong_local.schema")
local schema = require("kong.plugins.token-rate-limiting.schema")

local function validate(config)
  return kong_schema.process_plugin_config("token-rate-limiting", schema, { name = "token-rate-limiting", config = config })
end

describe("token-rate-limiting schema", function()
  it("is a valid plugin schema", function()
    assert.is_true(kong_schema.validate_plugin_schema("token-rate-limiting", schema))
  end)

  it("fills Kong-style defaults", function()
    local conf = assert(validate({ minute = 1000 }))
    assert.equal(1000, conf.minute)
    assert.equal("consumer", conf.limit_by)
    assert.equal("local", conf.policy)
    assert.equal("total", conf.tokens_count)
    assert.equal("fixed", conf.window_type)
    assert.is_true(conf.fault_tolerant)
    assert.is_true(conf.inject_stream_usage)
    assert.is_false(conf.reserve_max_tokens)
    assert.is_false(conf.hide_client_headers)
    assert.equal(429, conf.error_code)
    assert.equal(1, conf.prompt_weight)
    assert.equal(6379, conf.redis.port)
    assert.equal(2000, conf.redis.timeout)
  end)

  it("accepts model limits alone", function()
    local conf = assert(validate({ model_limits = { { model = "gpt-4o", day = 100000 } } }))
    assert.equal("gpt-4o", conf.model_limits[1].model)
  end)

  local refused = {
    { "no limit at all", {}, "at least one of these fields must be non-empty: 'config.second', 'config.minute'" },
    { "an empty model_limits", { model_limits = {} }, "at least one of these fields must be non-empty" },
    { "a negative limit", { minute = -1 }, "config.minute: value should be between 0 and" },
    { "a fractional limit", { hour = 1.5 }, "config.hour: expected an integer" },
    { "a negative prompt weight", { minute = 5, tokens_count = "cost", prompt_weight = -0.5 }, "config.prompt_weight: value should be between 0 and" },
    { "a negative completion weight", { minute = 5, completion_weight = -1 }, "config.completion_weight: value should be between 0 and" },
    { "redis without host", { minute = 5, policy = "redis" }, "config.redis.host: required field missing" },
    { "limit_by header without header_name", { minute = 5, limit_by = "header" }, "config.header_name: required field missing" },
    { "limit_by path without path", { minute = 5, limit_by = "path" }, "config.path: required field missing" },
    { "an unknown limit_by", { minute = 5, limit_by = "planet" }, "config.limit_by: expected one of:" },
    { "an unknown tokens_count", { minute = 5, tokens_count = "words" }, "config.tokens_count: expected one of: total, prompt, completion, cost" },
    { "a model limit without any period", { model_limits = { { model = "m" } } }, "config.model_limits.1: at least one of these fields must be non-empty: 'second'" },
    { "a model limit without model", { model_limits = { { minute = 1 } } }, "config.model_limits.1.model: required field missing" },
    { "a model named *", { model_limits = { { model = "*", minute = 1 } } }, "config.model_limits.1.model: must not be one of: *" },
    { "a success status as error_code", { minute = 5, error_code = 200 }, "config.error_code: value should be between 400 and 599" },
    { "an unknown field", { minute = 5, minutes = 5 }, "config.minutes: unknown field" },
  }
  for _, case in ipairs(refused) do
    it("refuses " .. case[1], function()
      local conf, err = validate(case[2])
      assert.is_nil(conf)
      assert.matches(case[3], err, 1, true)
    end)
  end

  it("accepts a redis policy with its host", function()
    local conf = assert(validate({ minute = 5, policy = "redis", redis = { host = "127.0.0.1", port = 6380, database = 2 } }))
    assert.equal(6380, conf.redis.port)
    assert.equal(2, conf.redis.database)
  end)
end)
