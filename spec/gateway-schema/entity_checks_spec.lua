-- Entity checks: cross-field rules, run on the defaults-filled record.
local core = require "kong_local.schema.core"

local null = core.null


-- Defaults first, then validation: what Kong does to a record value.
local function run(def, input)
  local data = assert(core.process_auto_fields(def, input, "insert"))
  return core.validate(def, data)
end


local function fields(...)
  local out = {}
  for _, name in ipairs({ ... }) do
    out[#out + 1] = { [name] = { type = "string" } }
  end
  return out
end


describe("entity check", function()
  describe("at_least_one_of", function()
    local def = { fields = fields("second", "minute", "hour"),
                  entity_checks = { { at_least_one_of = { "second", "minute", "hour" } } } }

    it("passes when one is set", function()
      assert.is_true(run(def, { minute = "5" }))
    end)

    it("fails when none is set, quoting every name", function()
      local ok, err = run(def, {})
      assert.is_nil(ok)
      assert.same({ ["@entity"] = {
        "at least one of these fields must be non-empty: 'second', 'minute', 'hour'" } }, err)
    end)

    it("counts empty strings and empty tables as not set", function()
      local d = { fields = { { a = { type = "string", len_min = 0 } },
                             { b = { type = "array", elements = { type = "string" } } } },
                  entity_checks = { { at_least_one_of = { "a", "b" } } } }
      local ok, err = run(d, { a = "", b = {} })
      assert.is_nil(ok)
      assert.same({ "at least one of these fields must be non-empty: 'a', 'b'" }, err["@entity"])
    end)
  end)

  describe("only_one_of", function()
    local def = { fields = fields("a", "b"), entity_checks = { { only_one_of = { "a", "b" } } } }

    it("passes with exactly one", function()
      assert.is_true(run(def, { a = "x" }))
    end)

    it("fails with both, in Kong 3.9's words", function()
      local _, err = run(def, { a = "x", b = "y" })
      assert.same({ "exactly one of these fields must be non-empty: 'a', 'b'" }, err["@entity"])
    end)

    it("fails with none", function()
      local _, err = run(def, {})
      assert.same({ "exactly one of these fields must be non-empty: 'a', 'b'" }, err["@entity"])
    end)
  end)

  describe("mutually_required", function()
    local def = { fields = fields("host", "port"), entity_checks = { { mutually_required = { "host", "port" } } } }

    it("passes with all or none", function()
      assert.is_true(run(def, {}))
      assert.is_true(run(def, { host = "h", port = "1" }))
    end)

    it("fails with some", function()
      local _, err = run(def, { host = "h" })
      assert.same({ "all or none of these fields must be set: 'host', 'port'" }, err["@entity"])
    end)
  end)

  describe("mutually_exclusive", function()
    local def = { fields = fields("a", "b", "c"), entity_checks = { { mutually_exclusive = { "a", "b", "c" } } } }

    it("passes with one or none", function()
      assert.is_true(run(def, {}))
      assert.is_true(run(def, { b = "x" }))
    end)

    it("fails with two", function()
      local _, err = run(def, { a = "x", c = "y" })
      assert.same({ "only one or none of these fields must be set: 'a', 'b', 'c'" }, err["@entity"])
    end)
  end)

  describe("mutually_exclusive_sets", function()
    local def = { fields = fields("sentinel_master", "sentinel_role", "host", "port"),
                  entity_checks = { { mutually_exclusive_sets = {
                    set1 = { "sentinel_master", "sentinel_role" }, set2 = { "host", "port" } } } } }

    it("passes when only one set is used", function()
      assert.is_true(run(def, { host = "h", port = "1" }))
    end)

    it("fails naming the fields set on each side", function()
      local _, err = run(def, { sentinel_master = "m", host = "h" })
      assert.same({ "these sets are mutually exclusive: ('sentinel_master'), ('host')" }, err["@entity"])
    end)
  end)

  describe("distinct", function()
    local def = { fields = fields("a", "b"), entity_checks = { { distinct = { "a", "b" } } } }

    it("passes with different values", function()
      assert.is_true(run(def, { a = "x", b = "y" }))
    end)

    it("fails with equal values", function()
      local _, err = run(def, { a = "x", b = "x" })
      assert.same({ "values of these fields must be distinct: 'a', 'b'" }, err["@entity"])
    end)
  end)

  describe("conditional", function()
    local def = {
      fields = {
        { policy = { type = "string", default = "local", one_of = { "local", "redis" } } },
        { redis_host = { type = "string" } },
        { limit = { type = "integer" } },
      },
      entity_checks = {
        { conditional = { if_field = "policy", if_match = { eq = "redis" },
                          then_field = "redis_host", then_match = { required = true } } },
        { conditional = { if_field = "policy", if_match = { eq = "redis" },
                          then_field = "limit", then_match = { between = { 1, 10 } },
                          then_err = "limit out of range when %s is redis" } },
      },
    }

    it("does nothing when the if-field does not match", function()
      assert.is_true(run(def, {}))
    end)

    it("requires the then-field, marking it and the entity", function()
      local ok, err = run(def, { policy = "redis" })
      assert.is_nil(ok)
      assert.equal("required field missing", err.redis_host)
      assert.same({ "failed conditional validation given value of field 'policy'" }, err["@entity"])
    end)

    it("checks the then-field against then_match, with a custom then_err", function()
      local _, err = run(def, { policy = "redis", redis_host = "h", limit = 50 })
      assert.equal("value should be between 1 and 10", err.limit)
      assert.same({ "limit out of range when policy is redis" }, err["@entity"])
    end)

    it("passes when the then-field satisfies the rule", function()
      assert.is_true(run(def, { policy = "redis", redis_host = "h", limit = 5 }))
    end)

    it("works on dotted paths into nested records", function()
      local nested = {
        fields = { { config = { type = "record", required = true, fields = {
          { policy = { type = "string", default = "local" } },
          { redis = { type = "record", required = true, fields = { { host = { type = "string" } } } } },
        } } } },
        entity_checks = { { conditional = {
          if_field = "config.policy", if_match = { eq = "redis" },
          then_field = "config.redis.host", then_match = { required = true } } } },
      }
      local _, err = run(nested, { config = { policy = "redis" } })
      assert.equal("required field missing", err.config.redis.host)
      assert.same({ "failed conditional validation given value of field 'config.policy'" }, err["@entity"])
      assert.is_true(run(nested, { config = { policy = "redis", redis = { host = "h" } } }))
    end)
  end)

  describe("conditional_at_least_one_of", function()
    local def = {
      fields = fields("mode", "a", "b", "c"),
      entity_checks = { { conditional_at_least_one_of = {
        if_field = "mode", if_match = { one_of = { "x" } },
        then_at_least_one_of = { "a", "b" },
        else_match = { one_of = { "y" } },
        else_then_at_least_one_of = { "c" },
        else_then_err = "mode y needs %s",
      } } },
    }

    it("then-branch", function()
      assert.is_true(run(def, { mode = "x", b = "1" }))
      local _, err = run(def, { mode = "x" })
      assert.same({ "at least one of these fields must be non-empty: 'a', 'b'" }, err["@entity"])
    end)

    it("else-branch, with its custom message", function()
      assert.is_true(run(def, { mode = "y", c = "1" }))
      local _, err = run(def, { mode = "y" })
      assert.same({ "mode y needs 'c'" }, err["@entity"])
    end)

    it("neither branch matches: passes", function()
      assert.is_true(run(def, { mode = "z" }))
    end)
  end)

  describe("custom_entity_check", function()
    local seen
    local def = {
      fields = { { a = { type = "integer" } }, { b = { type = "integer" } }, { c = { type = "integer" } } },
      entity_checks = { { custom_entity_check = {
        field_sources = { "a", "b" },
        fn = function(entity)
          seen = entity
          if entity.a ~= null and entity.b ~= null and entity.a > entity.b then
            return nil, "a must not exceed b"
          end
          return true
        end,
      } } },
    }

    it("gets only the fields it asked for", function()
      assert.is_true(run(def, { a = 1, b = 2, c = 3 }))
      assert.same({ a = 1, b = 2 }, seen)
    end)

    it("reports its own message", function()
      local _, err = run(def, { a = 3, b = 2 })
      assert.same({ "a must not exceed b" }, err["@entity"])
    end)

    it("does not run when one of its fields is invalid", function()
      seen = nil
      local _, err = run(def, { a = "x", b = 2 })
      assert.is_nil(seen)
      assert.equal("expected an integer", err.a)
      assert.is_nil(err["@entity"])
    end)
  end)

  it("a field of the check absent from the record: 'field required for entity check'", function()
    local def = { fields = { { rec = { type = "record", fields = { { a = { type = "string" } } } } } },
                  entity_checks = { { only_one_of = { "rec.a", "rec.b" } } } }
    -- rec.b is not in the schema, so it stays nil (not null) after defaults
    local ok, err = core.validate(def, { rec = { a = "x" } })
    assert.is_nil(ok)
    assert.same({ rec = { b = "field required for entity check" } }, err)
  end)

  it("a check whose fields are all absent does not run", function()
    local def = { fields = { { rec = { type = "record", fields = { { a = { type = "string" } } } } } },
                  entity_checks = { { only_one_of = { "rec.a", "rec.b" } } } }
    assert.is_true(core.validate(def, { rec = null }))
  end)

  it("several failing checks all report", function()
    local def = { fields = fields("a", "b"),
                  entity_checks = { { at_least_one_of = { "a" } }, { at_least_one_of = { "b" } } } }
    local _, err = run(def, {})
    assert.same({ "at least one of these fields must be non-empty: 'a'",
                  "at least one of these fields must be non-empty: 'b'" }, err["@entity"])
  end)
end)
