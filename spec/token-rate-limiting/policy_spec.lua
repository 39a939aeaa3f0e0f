-- The local policy's reserve / check / settle arithmetic against a stand-in shared dict, and the
-- reserve-then-reconcile rule across a window boundary.
local windows_mod = require("kong.plugins.token-rate-limiting.windows")
local cost = require("kong.plugins.token-rate-limiting.cost")
local limits = require("kong.plugins.token-rate-limiting.limits")

-- A dict with lua-nginx-module's get/incr semantics (init, init_ttl, "not found").
local function fake_dict()
  local data, ttl = {}, {}
  local d = { data = data, ttl = ttl }
  function d:get(key) return data[key] end
  function d:incr(key, value, init, init_ttl)
    if data[key] == nil then
      if init == nil then return nil, "not found" end
      data[key] = init + value
      ttl[key] = init_ttl
      return data[key]
    end
    data[key] = data[key] + value
    return data[key]
  end
  return d
end

local T = 1709210096 -- 56 s into a minute
local dict

local function plan(conf, now, identifier)
  local applied = limits.limitsFor(conf, conf.model)
  return windows_mod.counterWindows(applied, conf.window_type or "fixed", now or T, { route_id = "r" }, identifier or "consumer:c", function(s) return s end)
end

describe("token-rate-limiting local policy", function()
  local local_policy

  before_each(function()
    dict = fake_dict()
    _G.ngx = { shared = { kong_rate_limiting_counters = dict } }
    package.loaded["kong.plugins.token-rate-limiting.policies.local"] = nil
    local_policy = require("kong.plugins.token-rate-limiting.policies.local")
  end)

  after_each(function()
    _G.ngx = nil
  end)

  it("reads without writing when nothing is reserved", function()
    local windows = plan({ minute = 100 })
    dict.data[windows[1].key] = 40
    local values, admitted = local_policy.acquire(windows, "fixed", 0)
    assert.same({ { current = 40, previous = 0 } }, values)
    assert.is_true(admitted)
    assert.equal(40, dict.data[windows[1].key])
  end)

  it("reserves in every window and takes it back when one window is exhausted", function()
    local windows = plan({ minute = 1000, hour = 100 })
    local values, admitted = local_policy.acquire(windows, "fixed", 60)
    assert.is_true(admitted)
    assert.same({ { current = 0, previous = 0 }, { current = 0, previous = 0 } }, values)
    assert.equal(60, dict.data[windows[1].key])
    assert.equal(60, dict.data[windows[2].key])
    assert.equal(120, dict.ttl[windows[1].key])
    -- Second request: the hour has 40 left, so it is admitted and pushes the hour to 120.
    assert.is_true(select(2, local_policy.acquire(windows, "fixed", 60)))
    -- Third: the hour is exhausted; nothing is reserved anywhere.
    local _, third = local_policy.acquire(windows, "fixed", 60)
    assert.is_false(third)
    assert.equal(120, dict.data[windows[1].key])
    assert.equal(120, dict.data[windows[2].key])
  end)

  it("admits N concurrent reservations only while budget remains, then reconciles exactly", function()
    local conf = { minute = 1000, tokens_count = "total", prompt_weight = 1, completion_weight = 1 }
    local windows = plan(conf)
    local reserve = cost.reservationOf(conf, 50, 200, 4096) -- 250 each
    local admitted = 0
    for _ = 1, 10 do
      local _, ok = local_policy.acquire(windows, "fixed", reserve)
      if ok then admitted = admitted + 1 end
    end
    assert.equal(4, admitted) -- 0, 250, 500, 750 were below 1000; at 1000 the window is full
    -- Each admitted request really cost 120: settlement adds real - reserved.
    for _ = 1, admitted do
      local err = local_policy.settle(windows_mod.adjustments(windows, cost.settlementDelta(120, reserve)))
      assert.is_nil(err)
    end
    assert.equal(4 * 120, dict.data[windows[1].key])
  end)

  it("settles into the window the request was admitted in, across a boundary", function()
    local conf = { minute = 1000 }
    local admitted_in = plan(conf, T)
    local_policy.acquire(admitted_in, "fixed", 100)
    -- The stream ends in the next minute: settlement still targets the admitted window.
    local next_minute = plan(conf, T + 10)
    assert.not_equal(admitted_in[1].key, next_minute[1].key)
    local_policy.settle(windows_mod.adjustments(admitted_in, cost.settlementDelta(130, 100)))
    assert.equal(130, dict.data[admitted_in[1].key])
    assert.is_nil(dict.data[next_minute[1].key])
  end)

  it("never turns an expired counter negative when a reservation was larger than the cost", function()
    local windows = plan({ minute = 1000 })
    local_policy.settle(windows_mod.adjustments(windows, -50))
    assert.is_nil(dict.data[windows[1].key])
    local_policy.settle(windows_mod.adjustments(windows, 30))
    assert.equal(30, dict.data[windows[1].key])
    assert.equal(120, dict.ttl[windows[1].key])
  end)

  it("weighs the previous window in sliding mode", function()
    local conf = { minute = 100, window_type = "sliding" }
    local windows = plan(conf)
    dict.data[windows[1].prevKey] = 600 -- 4/60 of it overlaps at 56 s: 40
    dict.data[windows[1].key] = 59
    assert.is_true(select(2, local_policy.acquire(windows, "sliding", 0)))
    dict.data[windows[1].key] = 60
    assert.is_false(select(2, local_policy.acquire(windows, "sliding", 0)))
  end)

  it("reports a missing dict as a store failure", function()
    _G.ngx.shared.kong_rate_limiting_counters = nil
    local values, admitted, err = local_policy.acquire(plan({ minute = 1 }), "fixed", 0)
    assert.is_nil(values)
    assert.is_nil(admitted)
    assert.matches("not declared", err)
  end)
end)
