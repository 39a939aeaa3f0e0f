-- Field types and validators of the local gateway's schema library, with
-- Kong 3.9's error wording.
local core = require "kong_local.schema.core"

local null = core.null
local validate_field = core.validate_field

local function check(field, value)
  local ok, err = validate_field(field, value)
  return ok, err
end

local function record(fields, extra)
  local def = { type = "record", fields = fields }
  for k, v in pairs(extra or {}) do
    def[k] = v
  end
  return def
end


describe("schema field types", function()
  it("string: accepts strings, rejects others with 'expected a string'", function()
    assert.is_true(check({ type = "string" }, "x"))
    assert.same({ nil, "expected a string" }, { check({ type = "string" }, 1) })
    assert.same({ nil, "expected a string" }, { check({ type = "string" }, true) })
    assert.same({ nil, "expected a string" }, { check({ type = "string" }, {}) })
  end)

  it("string: empty strings are refused unless len_min allows them", function()
    assert.same({ nil, "length must be at least 1" }, { check({ type = "string" }, "") })
    assert.is_true(check({ type = "string", len_min = 0 }, ""))
  end)

  it("number: any number, not numeric strings", function()
    assert.is_true(check({ type = "number" }, 1.5))
    assert.is_true(check({ type = "number" }, -3))
    assert.same({ nil, "expected a number" }, { check({ type = "number" }, "1") })
  end)

  it("integer: whole finite numbers only", function()
    assert.is_true(check({ type = "integer" }, 42))
    assert.is_true(check({ type = "integer" }, -1))
    assert.same({ nil, "expected an integer" }, { check({ type = "integer" }, 1.5) })
    assert.same({ nil, "expected an integer" }, { check({ type = "integer" }, 1 / 0) })
    assert.same({ nil, "expected an integer" }, { check({ type = "integer" }, -1 / 0) })
    assert.same({ nil, "expected an integer" }, { check({ type = "integer" }, "3") })
  end)

  it("boolean", function()
    assert.is_true(check({ type = "boolean" }, false))
    assert.same({ nil, "expected a boolean" }, { check({ type = "boolean" }, "true") })
    assert.same({ nil, "expected a boolean" }, { check({ type = "boolean" }, 0) })
  end)

  it("function", function()
    assert.is_true(check({ type = "function" }, print))
    assert.same({ nil, "expected a function" }, { check({ type = "function" }, "print") })
  end)

  it("array: a sequence whose elements are checked one by one", function()
    local f = { type = "array", elements = { type = "integer" } }
    assert.is_true(check(f, { 1, 2, 3 }))
    assert.is_true(check(f, {}))
    assert.same({ nil, "expected an array" }, { check(f, { a = 1 }) })
    assert.same({ nil, "expected an array" }, { check(f, { [1] = 1, [3] = 3 }) })
    assert.same({ nil, "expected an array" }, { check(f, "1,2") })
    assert.same({ nil, { [2] = "expected an integer", [4] = "expected an integer" } },
                { check(f, { 1, "x", 3, 4.5 }) })
  end)

  it("array: null elements are 'required field missing'", function()
    local f = { type = "array", elements = { type = "string" } }
    assert.same({ nil, { [2] = "required field missing" } }, { check(f, { "a", null }) })
  end)

  it("set: like an array, with its own type message", function()
    local f = { type = "set", elements = { type = "string", one_of = { "a", "b" } } }
    assert.is_true(check(f, { "a", "b", "a" }))
    assert.same({ nil, "expected a set" }, { check(f, { x = "a" }) })
    assert.same({ nil, { [1] = "expected one of: a, b" } }, { check(f, { "c" }) })
  end)

  it("map: keys and values are validated, the first failure is reported", function()
    local f = { type = "map", keys = { type = "string" }, values = { type = "integer" } }
    assert.is_true(check(f, { a = 1, b = 2 }))
    assert.is_true(check(f, {}))
    assert.same({ nil, "expected a map" }, { check(f, "a=1") })
    assert.same({ nil, "expected a string" }, { check(f, { [1] = 1 }) })
    assert.same({ nil, "expected an integer" }, { check(f, { a = "1" }) })
  end)

  it("record: nested fields, unknown keys, nested error tables", function()
    local f = record({
      { host = { type = "string", required = true } },
      { port = { type = "integer", between = { 1, 65535 } } },
    })
    assert.is_true(check(f, { host = "h", port = 80 }))
    assert.same({ nil, "expected a record" }, { check(f, "h:80") })
    assert.same({ nil, { host = "required field missing" } }, { check(f, { port = 80 }) })
    assert.same({ nil, { port = "value should be between 1 and 65535", extra = "unknown field" } },
                { check(f, { host = "h", port = 0, extra = 1 }) })
  end)

  it("foreign: a reference (string or table); eq = null refuses any value", function()
    assert.is_true(check({ type = "foreign", reference = "consumers" }, "alice"))
    assert.is_true(check({ type = "foreign", reference = "consumers" }, { id = "x" }))
    assert.same({ nil, "value must be null" },
                { check({ type = "foreign", reference = "consumers", eq = null }, "alice") })
    assert.is_true(check({ type = "foreign", reference = "consumers", eq = null }, null))
  end)

  it("an unknown type is reported as a schema error", function()
    assert.same({ nil, "invalid type: float" }, { check({ type = "float" }, 1) })
  end)

  it("a json field accepts any value (no JSON-schema check here)", function()
    assert.is_true(check({ type = "json" }, { a = { 1, 2 } }))
  end)
end)


describe("null values", function()
  it("are fine for optional fields", function()
    assert.is_true(check({ type = "string" }, null))
  end)

  it("are 'required field missing' for required ones", function()
    assert.same({ nil, "required field missing" }, { check({ type = "string", required = true }, null) })
  end)

  it("fail ne = null with 'value must not be null'", function()
    assert.same({ nil, "value must not be null" }, { check({ type = "string", ne = null }, null) })
  end)

  it("fail an eq with a non-null value", function()
    assert.same({ nil, "value must be x" }, { check({ type = "string", eq = "x" }, null) })
  end)
end)


describe("validators", function()
  it("between (inclusive), with %d formatting", function()
    local f = { type = "number", between = { 0, 2147483648 } }
    assert.is_true(check(f, 0))
    assert.is_true(check(f, 2147483648))
    assert.same({ nil, "value should be between 0 and 2147483648" }, { check(f, -1) })
    assert.same({ nil, "value should be between 0 and 2147483648" }, { check(f, 2147483649) })
    -- LuaJIT's %d truncates fractional limits, as in Kong
    assert.same({ nil, "value should be between 0 and 3600" },
                { check({ type = "number", between = { 0.001, 3600 } }, 0) })
  end)

  it("gt", function()
    assert.is_true(check({ type = "number", gt = 0 }, 0.1))
    assert.same({ nil, "value must be greater than 0" }, { check({ type = "number", gt = 0 }, 0) })
  end)

  it("eq and ne", function()
    assert.is_true(check({ type = "string", eq = "a" }, "a"))
    assert.same({ nil, "value must be a" }, { check({ type = "string", eq = "a" }, "b") })
    assert.is_true(check({ type = "integer", ne = 3 }, 4))
    assert.same({ nil, "value must not be 3" }, { check({ type = "integer", ne = 3 }, 3) })
  end)

  it("one_of lists the options joined with ', '", function()
    local f = { type = "string", one_of = { "local", "redis" } }
    assert.is_true(check(f, "redis"))
    assert.same({ nil, "expected one of: local, redis" }, { check(f, "cluster") })
    assert.same({ nil, "expected one of: -1, 1" },
                { check({ type = "integer", one_of = { -1, 1 } }, 2) })
  end)

  it("not_one_of", function()
    local f = { type = "string", not_one_of = { "admin", "root" } }
    assert.is_true(check(f, "alice"))
    assert.same({ nil, "must not be one of: admin, root" }, { check(f, "root") })
  end)

  it("len_eq, len_min, len_max on strings", function()
    assert.same({ nil, "length must be 3" }, { check({ type = "string", len_eq = 3 }, "ab") })
    assert.is_true(check({ type = "string", len_eq = 3 }, "abc"))
    assert.same({ nil, "length must be at least 2" }, { check({ type = "string", len_min = 2 }, "a") })
    assert.same({ nil, "length must be at most 2" }, { check({ type = "string", len_max = 2 }, "abc") })
  end)

  it("len_min and len_max on arrays, and on maps (counted by keys)", function()
    local a = { type = "array", elements = { type = "string" }, len_min = 1, len_max = 2 }
    assert.same({ nil, "length must be at least 1" }, { check(a, {}) })
    assert.same({ nil, "length must be at most 2" }, { check(a, { "a", "b", "c" }) })
    local m = { type = "map", keys = { type = "string" }, values = { type = "string" }, len_min = 1 }
    assert.same({ nil, "length must be at least 1" }, { check(m, {}) })
    assert.is_true(check(m, { a = "b" }))
  end)

  it("match and not_match use Lua patterns and say 'invalid value: <value>'", function()
    local f = { type = "string", match = "^%d+$" }
    assert.is_true(check(f, "123"))
    assert.same({ nil, "invalid value: 12a" }, { check(f, "12a") })
    local g = { type = "string", not_match = "%s" }
    assert.is_true(check(g, "nospace"))
    assert.same({ nil, "invalid value: has space" }, { check(g, "has space") })
  end)

  it("match_all, match_none and match_any report their own messages", function()
    local all = { type = "string", match_all = {
      { pattern = "^a", err = "must start with a" },
      { pattern = "z$", err = "must end with z" },
    } }
    assert.is_true(check(all, "abcz"))
    assert.same({ nil, "must end with z" }, { check(all, "abc") })

    local none = { type = "string", match_none = { { pattern = "//", err = "must not have empty segments" } } }
    assert.same({ nil, "must not have empty segments" }, { check(none, "/a//b") })

    local any = { type = "string", match_any = { patterns = { "^/", "^~/" }, err = "bad start" } }
    assert.is_true(check(any, "~/x"))
    assert.same({ nil, "bad start" }, { check(any, "x") })
  end)

  it("starts_with", function()
    assert.same({ nil, "should start with: /" }, { check({ type = "string", starts_with = "/" }, "a/") })
  end)

  it("is_regex compiles the value with PCRE", function()
    local f = { type = "string", is_regex = true }
    assert.is_true(check(f, "^/v[0-9]+/(chat|completions)$"))
    assert.same({ nil, "not a valid regex: (unclosed" }, { check(f, "(unclosed") })
    assert.same({ nil, "not a valid regex: a{2,1}" }, { check(f, "a{2,1}") })
  end)

  it("uuid", function()
    local f = { type = "string", uuid = true }
    assert.is_true(check(f, "6a8d3b5e-0f7c-4a19-9c2e-1b2c3d4e5f60"))
    assert.is_true(check(f, "6A8D3B5E-0F7C-4A19-9C2E-1B2C3D4E5F60"))
    assert.same({ nil, "expected a valid UUID" }, { check(f, "6a8d3b5e-0f7c-4a19-9c2e-1b2c3d4e5f6") })
    assert.same({ nil, "expected a valid UUID" }, { check(f, "6a8d3b5e-0f7c-4a19-9c2e-1b2c3d4e5fzz") })
  end)

  it("timestamp", function()
    local f = { type = "number", timestamp = true }
    assert.is_true(check(f, 1700000000))
    assert.same({ nil, "expected a valid timestamp" }, { check(f, 0) })
  end)

  it("contains (arrays)", function()
    local f = { type = "array", elements = { type = "string" }, contains = "exp" }
    assert.is_true(check(f, { "nbf", "exp" }))
    assert.same({ nil, "expected to contain: exp" }, { check(f, { "nbf" }) })
  end)

  it("mutually_exclusive_subsets", function()
    local f = { type = "set", elements = { type = "string" },
                mutually_exclusive_subsets = { { "http", "https" }, { "tcp", "tls" } } }
    assert.is_true(check(f, { "http", "https" }))
    assert.same({ nil, "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls')" },
                { check(f, { "http", "tcp" }) })
  end)

  it("custom_validator: its message is used, or 'failed validating: <value>'", function()
    local f = { type = "string", custom_validator = function(v)
      if v == "ok" then return true end
      if v == "silent" then return nil end
      return nil, "not ok: " .. v
    end }
    assert.is_true(check(f, "ok"))
    assert.same({ nil, "not ok: bad" }, { check(f, "bad") })
    assert.same({ nil, "failed validating: silent" }, { check(f, "silent") })
  end)

  it("custom_validator runs last, after the built-in validators", function()
    local called = false
    local f = { type = "string", len_max = 2, custom_validator = function() called = true; return true end }
    assert.same({ nil, "length must be at most 2" }, { check(f, "abc") })
    assert.is_false(called)
  end)

  it("eq runs before one_of (Kong's validator order)", function()
    local f = { type = "string", eq = "a", one_of = { "b" } }
    assert.same({ nil, "value must be a" }, { check(f, "c") })
  end)

  it("a field's `err` replaces the validator's message", function()
    local f = { type = "string", match = "^%d+$", err = "digits only" }
    assert.same({ nil, "digits only" }, { check(f, "x") })
  end)

  it("a vault reference skips the checks of a referenceable string", function()
    local f = { type = "string", referenceable = true, match = "^%d+$" }
    assert.is_true(check(f, "{vault://env/redis-password}"))
    assert.same({ nil, "invalid value: {vault:/env/x}" }, { check(f, "{vault:/env/x}") })
    assert.same({ nil, "invalid value: {vault://env/x}" },
                { check({ type = "string", match = "^%d+$" }, "{vault://env/x}") })
  end)
end)
