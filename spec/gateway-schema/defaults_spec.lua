-- Default filling ("insert") and the clean-up Kong does before a handler
-- sees its conf ("select").
local core = require "kong_local.schema.core"
local cjson = require "cjson"

local null = core.null
local process = core.process_auto_fields


describe("defaults on insert", function()
  local def = {
    fields = {
      { policy = { type = "string", default = "local" } },
      { limit = { type = "integer" } },
      { names = { type = "array", elements = { type = "string" }, default = { "apikey" } } },
      { redis = { type = "record", required = true, fields = {
          { host = { type = "string" } },
          { port = { type = "integer", default = 6379 } },
          { tls = { type = "record", required = true, fields = {
              { verify = { type = "boolean", default = false } },
          } } },
      } } },
      { optional_rec = { type = "record", fields = {
          { x = { type = "integer", default = 1 } },
      } } },
      { defaulted_rec = { type = "record", default = { x = 5 }, fields = {
          { x = { type = "integer", default = 1 } },
          { y = { type = "integer", default = 2 } },
      } } },
    },
  }

  it("fills scalar and array defaults and leaves given values alone", function()
    local out = process(def, { policy = "redis" }, "insert")
    assert.equal("redis", out.policy)
    assert.same({ "apikey" }, out.names)
  end)

  it("marks unset optional fields as null", function()
    local out = process(def, {}, "insert")
    assert.equal(null, out.limit)
  end)

  it("gives a missing required record its nested defaults, recursively", function()
    local out = process(def, {}, "insert")
    assert.equal(null, out.redis.host)
    assert.equal(6379, out.redis.port)
    assert.same({ verify = false }, out.redis.tls)
  end)

  it("fills defaults inside a record that was given in part", function()
    local out = process(def, { redis = { host = "h" } }, "insert")
    assert.equal("h", out.redis.host)
    assert.equal(6379, out.redis.port)
    assert.equal(false, out.redis.tls.verify)
  end)

  it("leaves a missing optional record null (no nested defaults)", function()
    local out = process(def, {}, "insert")
    assert.equal(null, out.optional_rec)
  end)

  it("uses a record's own default as is, without filling its fields", function()
    local out = process(def, {}, "insert")
    assert.same({ x = 5 }, out.defaulted_rec)
  end)

  it("fills a given optional record's defaults", function()
    local out = process(def, { optional_rec = {} }, "insert")
    assert.same({ x = 1 }, out.optional_rec)
  end)

  it("keeps an explicit null for a record null", function()
    local out = process(def, { redis = null }, "insert")
    assert.equal(null, out.redis)
  end)

  it("copies defaults, so two configs never share a table", function()
    local a = process(def, {}, "insert")
    local b = process(def, {}, "insert")
    a.names[1] = "changed"
    assert.equal("apikey", b.names[1])
    assert.equal("apikey", def.fields[3].names.default[1])
  end)

  it("does not touch its input", function()
    local input = { redis = { host = "h" } }
    process(def, input, "insert")
    assert.same({ redis = { host = "h" } }, input)
  end)

  it("gives array defaults the array metatable (cjson's, where it has one)", function()
    local env = require "kong_local.schema.env"
    local d = { fields = { { list = { type = "array", elements = { type = "string" }, default = {} } } } }
    local out = process(d, {}, "insert")
    assert.equal(env.array_mt, getmetatable(out.list))
    if cjson.array_mt then
      assert.equal(cjson.array_mt, env.array_mt)
      assert.equal('{"list":[]}', cjson.encode(out))
    else
      print("note: this lua-cjson has no array_mt, so an empty array encodes as {} (as without Kong's cjson)")
    end
  end)

  it("fills the defaults of records inside arrays", function()
    local d = { fields = { { targets = { type = "array", elements = { type = "record", fields = {
      { host = { type = "string" } },
      { weight = { type = "integer", default = 100 } },
    } } } } } }
    local out = process(d, { targets = { { host = "a" }, { host = "b", weight = 5 } } }, "insert")
    assert.equal(100, out.targets[1].weight)
    assert.equal(5, out.targets[2].weight)
  end)

  it("removes duplicates from sets and lets them be indexed by value", function()
    local d = { fields = { { protocols = { type = "set", elements = { type = "string" } } } } }
    local out = process(d, { protocols = { "http", "https", "http" } }, "insert")
    assert.same({ "http", "https" }, { out.protocols[1], out.protocols[2] })
    assert.equal(2, #out.protocols)
    assert.is_true(out.protocols.http)
    assert.is_nil(out.protocols.grpc)
  end)
end)


describe("select clean-up", function()
  local def = {
    fields = {
      { a = { type = "string" } },
      { b = { type = "string", len_min = 0 } },
      { c = { type = "integer" } },
      { rec = { type = "record", required = true, fields = {
          { x = { type = "string" } },
          { y = { type = "number", default = 1.5 } },
      } } },
    },
  }

  it("turns nulls into nil, recursively", function()
    local out = process(def, process(def, {}, "insert"), "select")
    assert.is_nil(out.a)
    assert.is_nil(out.rec.x)
    assert.equal(1.5, out.rec.y)
  end)

  it("drops empty strings where the field forbids them, keeps them where allowed", function()
    local out = process(def, { a = "", b = "" }, "select")
    assert.is_nil(out.a)
    assert.equal("", out.b)
  end)

  it("drops keys the schema does not know", function()
    local out = process(def, { a = "x", zzz = 1 }, "select")
    assert.is_nil(out.zzz)
    assert.equal("x", out.a)
  end)

  it("floors integers", function()
    local out = process(def, { c = 3.0 }, "select")
    assert.equal(3, out.c)
  end)
end)


describe("shorthand fields", function()
  local def = {
    fields = {
      { redis = { type = "record", required = true, fields = {
          { host = { type = "string" } },
          { port = { type = "integer", default = 6379 } },
      } } },
    },
    shorthand_fields = {
      { redis_host = { type = "string", func = function(value)
          return { redis = { host = value } }
      end } },
      { redis_port = { type = "integer", deprecation = { message = "use redis.port" },
          func = function(value) return { redis = { port = value } } end } },
    },
  }

  it("moves the shorthand value into the new field", function()
    local out = process(def, { redis_host = "cache" }, "insert")
    assert.is_nil(out.redis_host)
    assert.equal("cache", out.redis.host)
    assert.equal(6379, out.redis.port)
  end)

  it("a deprecated shorthand loses to the new field when both are given", function()
    local out = process(def, { redis_port = 1, redis = { port = 2 } }, "insert")
    assert.equal(2, out.redis.port)
  end)

  it("reports a shorthand of the wrong type", function()
    local out, err = process(def, { redis_host = 5 }, "insert")
    assert.is_nil(out)
    assert.same({ redis_host = "expected a string" }, err)
  end)
end)
