-- kong_local.plugins without nginx: handler checks, execution order, scope lookup.
local plugins = require "kong_local.plugins"

describe("validate_handler", function()
  it("accepts integer priorities and x.y.z versions, and completes short versions", function()
    local h = { PRIORITY = 10, VERSION = "1.2" }
    assert.truthy(plugins.validate_handler("p", h))
    assert.equal("1.2.0", h.VERSION)
  end)

  it("rejects non-integer, NaN and infinite priorities with Kong's message", function()
    for _, prio in ipairs({ 1.5, 0 / 0, math.huge, "10" }) do
      local ok, err = plugins.validate_handler("p", { PRIORITY = prio, VERSION = "1.0.0" })
      assert.is_nil(ok)
      assert.equal('Plugin "p" cannot be loaded because its PRIORITY field is not a valid integer number', err)
    end
  end)

  it("rejects versions that are not x.y.z", function()
    for _, v in ipairs({ "1.0.0.1", "v1", "", 1 }) do
      local ok, err = plugins.validate_handler("p", { PRIORITY = 1, VERSION = v })
      assert.is_nil(ok)
      assert.matches('VERSION field does not follow the "x.y.z" format', err, 1, true)
    end
  end)

  it("rejects response together with header_filter or body_filter", function()
    local ok, err = plugins.validate_handler("p", {
      PRIORITY = 1, VERSION = "1.0.0", response = function() end, body_filter = function() end,
    })
    assert.is_nil(ok)
    assert.matches("implements both `response` and `header_filter` or `body_filter` methods", err, 1, true)
  end)
end)

describe("sort", function()
  it("orders by PRIORITY descending, ties reverse-alphabetically", function()
    local list = plugins.sort({
      { name = "b", handler = { PRIORITY = 5 } },
      { name = "z", handler = { PRIORITY = 1 } },
      { name = "c", handler = { PRIORITY = 5 } },
      { name = "a", handler = { PRIORITY = 100 } },
      { name = "m", handler = {} },
    })
    local names = {}
    for i, p in ipairs(list) do names[i] = p.name end
    assert.same({ "a", "c", "b", "z", "m" }, names)
  end)
end)

describe("lookup", function()
  local key = plugins.combo_key
  local function configs(scopes)
    local out = {}
    for _, s in ipairs(scopes) do
      out[key(s[1], s[2], s[3])] = { tag = (s[1] and "r" or "") .. (s[2] and "s" or "") .. (s[3] and "c" or "") }
    end
    return out
  end
  local all = configs({ { "R", "S", "C" }, { "R", nil, "C" }, { nil, "S", "C" }, { "R", "S", nil },
                        { nil, nil, "C" }, { "R", nil, nil }, { nil, "S", nil }, { nil, nil, nil } })

  it("follows Kong's precedence from the most specific scope to global", function()
    local order = { "rsc", "rc", "sc", "rs", "c", "r", "s", "" }
    local remaining = {}
    for k, v in pairs(all) do remaining[k] = v end
    for _, expected in ipairs(order) do
      local conf = plugins.lookup(remaining, "R", "S", "C")
      assert.equal(expected, conf.tag)
      for k, v in pairs(remaining) do
        if v == conf then remaining[k] = nil end
      end
    end
    assert.is_nil(plugins.lookup(remaining, "R", "S", "C"))
  end)

  it("ignores instances of other routes, services and consumers", function()
    assert.equal("", plugins.lookup(all, "R2", "S2", "C2").tag)
    assert.equal("c", plugins.lookup(all, "R2", "S2", "C").tag)
    assert.equal("s", plugins.lookup(all, "R2", "S", nil).tag)
  end)
end)

describe("should_process", function()
  it("needs enabled and an http-subsystem protocol", function()
    assert.is_true(plugins.should_process({ enabled = true }))
    assert.is_false(plugins.should_process({ enabled = false }))
    assert.is_true(plugins.should_process({ protocols = { "grpc", "http" } }))
    assert.is_false(plugins.should_process({ protocols = { "tcp" } }))
  end)
end)
