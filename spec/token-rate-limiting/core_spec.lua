-- Cost, identifiers, counter keys, limits, admission, headers and the failure gate of
-- token-rate-limiting (pure modules, transpiled from plugins/token-rate-limiting/*.ts).
local cost = require("kong.plugins.token-rate-limiting.cost")
local limits = require("kong.plugins.token-rate-limiting.limits")
local admission = require("kong.plugins.token-rate-limiting.admission")
local windows = require("kong.plugins.token-rate-limiting.windows")
local failures = require("kong.plugins.token-rate-limiting.policies.failures")

local T = 1709210096 -- 56 s into a minute

describe("token-rate-limiting cost", function()
  local function conf(count, pw, cw)
    return { tokens_count = count, prompt_weight = pw or 1, completion_weight = cw or 1 }
  end

  it("counts total, prompt or completion tokens", function()
    assert.equal(150, cost.costOf(conf("total"), 100, 50))
    assert.equal(100, cost.costOf(conf("prompt"), 100, 50))
    assert.equal(50, cost.costOf(conf("completion"), 100, 50))
  end)

  it("weights prompt and completion for cost, rounding up per request", function()
    assert.equal(100 * 0.5 + 50 * 2, cost.costOf(conf("cost", 0.5, 2), 100, 50))
    assert.equal(3, cost.costOf(conf("cost", 0.1, 0), 30, 0)) -- 0.1 * 30 is 3.0000000000000004 in binary
    assert.equal(1, cost.costOf(conf("cost", 0.001, 0.001), 10, 10))
    assert.equal(0, cost.costOf(conf("cost", 0, 0), 10, 10))
  end)

  it("never counts negative tokens", function()
    assert.equal(5, cost.costOf(conf("total"), -3, 5))
  end)

  it("reserves the prompt estimate plus max_tokens capped by the configured cap", function()
    assert.equal(100 + 256, cost.reservationOf(conf("total"), 100, 256, 1024))
    assert.equal(100 + 1024, cost.reservationOf(conf("total"), 100, 5000, 1024))
    assert.equal(100 + 1024, cost.reservationOf(conf("total"), 100, nil, 1024))
    assert.equal(100, cost.reservationOf(conf("prompt"), 100, 256, 1024))
    assert.equal(256, cost.reservationOf(conf("completion"), 100, 256, 1024))
    assert.equal(50 + 512, cost.reservationOf(conf("cost", 0.5, 2), 100, 256, 1024))
  end)

  it("settles the difference between the real cost and the reservation", function()
    local reserved = cost.reservationOf(conf("total"), 100, 256, 1024)
    assert.equal(-200, cost.settlementDelta(156, reserved))
    assert.equal(44, cost.settlementDelta(400, reserved))
    -- Without reservation the whole cost is settled.
    assert.equal(156, cost.settlementDelta(156, 0))
  end)
end)

describe("token-rate-limiting identifier", function()
  local function facts(t)
    return {
      consumerId = function() return t.consumer end,
      credentialId = function() return t.credential end,
      consumerGroups = function() return t.groups end,
      forwardedIp = function() return t.ip or "10.0.0.1" end,
      header = function(name) return t.headers and t.headers[name] end,
      path = function() return t.path or "/" end,
      serviceId = function() return t.service end,
      routeId = function() return t.route end,
    }
  end

  it("limits by consumer, then credential, then IP", function()
    assert.equal("consumer:c1", limits.identifierOf({ limit_by = "consumer" }, facts({ consumer = "c1", credential = "k1" })))
    assert.equal("consumer:k1", limits.identifierOf({ limit_by = "consumer" }, facts({ credential = "k1" })))
    assert.equal("ip:10.0.0.1", limits.identifierOf({ limit_by = "consumer" }, facts({})))
  end)

  it("limits by credential, service, route or IP", function()
    assert.equal("credential:k1", limits.identifierOf({ limit_by = "credential" }, facts({ consumer = "c1", credential = "k1" })))
    assert.equal("ip:10.0.0.1", limits.identifierOf({ limit_by = "credential" }, facts({ consumer = "c1" })))
    assert.equal("service:s1", limits.identifierOf({ limit_by = "service" }, facts({ service = "s1" })))
    assert.equal("route:r1", limits.identifierOf({ limit_by = "route" }, facts({ route = "r1" })))
    assert.equal("ip:192.0.2.7", limits.identifierOf({ limit_by = "ip" }, facts({ ip = "192.0.2.7", consumer = "c1" })))
  end)

  it("limits by a header, falling back to IP when it is missing or empty", function()
    local conf = { limit_by = "header", header_name = "x-team" }
    assert.equal("header:blue", limits.identifierOf(conf, facts({ headers = { ["x-team"] = "blue" } })))
    assert.equal("ip:10.0.0.1", limits.identifierOf(conf, facts({ headers = { ["x-team"] = "" } })))
    assert.equal("ip:10.0.0.1", limits.identifierOf(conf, facts({})))
  end)

  it("limits by path only for the configured path, as Kong's rate-limiting", function()
    local conf = { limit_by = "path", path = "/v1/chat/completions" }
    assert.equal("path:/v1/chat/completions", limits.identifierOf(conf, facts({ path = "/v1/chat/completions" })))
    assert.equal("ip:10.0.0.1", limits.identifierOf(conf, facts({ path = "/v1/embeddings" })))
  end)

  it("limits by consumer group where groups exist, else by consumer", function()
    local conf = { limit_by = "consumer_group" }
    assert.equal("group:gold,silver", limits.identifierOf(conf, facts({ groups = { "silver", "gold" }, consumer = "c1" })))
    assert.equal("consumer:c1", limits.identifierOf(conf, facts({ consumer = "c1" })))
    assert.equal("consumer:c1", limits.identifierOf(conf, facts({ groups = {}, consumer = "c1" })))
    assert.equal("ip:10.0.0.1", limits.identifierOf(conf, facts({})))
  end)

  it("treats ngx.null-like values as absent", function()
    local null = newproxy(false)
    assert.equal("ip:10.0.0.1", limits.identifierOf({ limit_by = "header", header_name = null }, facts({})))
  end)
end)

describe("token-rate-limiting keys", function()
  local function hash(s) return "H" .. #s end

  it("names counters by scope, identifier, model, period and window start", function()
    assert.equal("token_rate_limiting:{r1:s1:consumer%3Ac1}:*:minute:1709210040",
      windows.counterKey({ route_id = "r1", service_id = "s1" }, "consumer:c1", "*", "minute", 1709210040, hash))
    assert.equal("token_rate_limiting:{00000000-0000-0000-0000-000000000000:00000000-0000-0000-0000-000000000000:ip%3A1.2.3.4}:gpt%3A4%25:hour:3600",
      windows.counterKey({}, "ip:1.2.3.4", "gpt:4%", "hour", 3600, hash))
  end)

  it("escapes separators and hash-tag braces so distinct parts never collide", function()
    assert.equal("a%3Ab%7Bc%7D%25", windows.escapePart("a:b{c}%"))
    local a = windows.counterKey({}, "header:a:b", "*", "minute", 0, hash)
    local b = windows.counterKey({}, "header:a", "b:*", "minute", 0, hash)
    assert.not_equal(a, b)
  end)

  it("hashes client-supplied parts longer than 128 bytes", function()
    local long = "header:" .. string.rep("x", 500)
    local key = windows.counterKey({}, long, "*", "day", 0, hash)
    assert.truthy(key:find(":#H507}:", 1, true))
    assert.is_true(#key < 150)
  end)
end)

describe("token-rate-limiting limits", function()
  it("collects plugin-wide limits and those of the request's model", function()
    local conf = {
      minute = 1000, day = 50000,
      model_limits = { { model = "gpt-4o", minute = 100 }, { model = "small", second = 5 } },
    }
    local applied = limits.limitsFor(conf, "gpt-4o")
    assert.same({
      { model = "*", period = "minute", tokens = 1000 },
      { model = "*", period = "day", tokens = 50000 },
      { model = "gpt-4o", period = "minute", tokens = 100 },
    }, applied)
    assert.equal(2, #limits.limitsFor(conf, "other"))
    assert.equal(2, #limits.limitsFor(conf, nil))
  end)

  it("ignores unset and null periods", function()
    local null = newproxy(false)
    assert.same({ { model = "*", period = "hour", tokens = 0 } }, limits.limitsFor({ second = null, hour = 0 }, nil))
    assert.is_false(limits.hasAnyLimit({ minute = null }))
    assert.is_true(limits.hasAnyLimit({ model_limits = { { model = "m", day = 1 } } }))
    assert.is_false(limits.hasAnyLimit({ model_limits = { { model = "m" } } }))
  end)
end)

describe("token-rate-limiting admission and headers", function()
  local function count(period, limit, current, previous, now, model)
    return {
      limit = { model = model or "*", period = period, tokens = limit },
      pos = windows.windowPosition(now or T, period),
      current = current,
      previous = previous or 0,
    }
  end

  it("admits with one token left and refuses at exactly the limit", function()
    local ok = admission.admit("fixed", { count("minute", 100, 99) }, 0)
    assert.is_true(ok.admitted)
    assert.equal(1, ok.windows[1].remaining)
    local h = admission.rateLimitHeaders(ok)
    assert.same({
      ["X-RateLimit-Limit-Tokens-Minute"] = "100",
      ["X-RateLimit-Remaining-Tokens-Minute"] = "1",
      ["RateLimit-Limit"] = "100",
      ["RateLimit-Remaining"] = "1",
      ["RateLimit-Reset"] = "4",
    }, h)

    local no = admission.admit("fixed", { count("minute", 100, 100) }, 0)
    assert.is_false(no.admitted)
    assert.same({
      ["X-RateLimit-Limit-Tokens-Minute"] = "100",
      ["X-RateLimit-Remaining-Tokens-Minute"] = "0",
      ["RateLimit-Limit"] = "100",
      ["RateLimit-Remaining"] = "0",
      ["RateLimit-Reset"] = "4",
      ["Retry-After"] = "4",
    }, admission.rateLimitHeaders(no))
  end)

  it("reports the remaining budget after the reservation of an admitted request", function()
    local ok = admission.admit("fixed", { count("minute", 1000, 100) }, 300)
    assert.is_true(ok.admitted)
    assert.equal(600, ok.windows[1].remaining)
    -- A reservation larger than what is left is still admitted (the window had budget): remaining 0.
    local big = admission.admit("fixed", { count("minute", 1000, 900) }, 300)
    assert.is_true(big.admitted)
    assert.equal(0, big.windows[1].remaining)
  end)

  it("picks the most restrictive window for RateLimit-* and waits for every exhausted one", function()
    local adm = admission.admit("fixed", {
      count("second", 10, 10),
      count("minute", 1000, 1000),
      count("hour", 100000, 50),
    }, 0)
    assert.is_false(adm.admitted)
    local h = admission.rateLimitHeaders(adm)
    assert.equal("0", h["X-RateLimit-Remaining-Tokens-Second"])
    assert.equal("0", h["X-RateLimit-Remaining-Tokens-Minute"])
    assert.equal("99950", h["X-RateLimit-Remaining-Tokens-Hour"])
    -- Both second and minute are exhausted: the minute resets later, so it is the one reported.
    assert.equal("1000", h["RateLimit-Limit"])
    assert.equal("4", h["RateLimit-Reset"])
    assert.equal("4", h["Retry-After"])
  end)

  it("shows per period the tighter of the plugin-wide and the model limit", function()
    local adm = admission.admit("fixed", {
      count("minute", 1000, 10),
      count("minute", 100, 10, 0, T, "gpt-4o"),
    }, 0)
    local h = admission.rateLimitHeaders(adm)
    assert.equal("100", h["X-RateLimit-Limit-Tokens-Minute"])
    assert.equal("90", h["X-RateLimit-Remaining-Tokens-Minute"])
  end)

  it("uses the sliding estimate for decisions and remaining", function()
    -- 56 s in: previous 600 weighs 40, current 50 => used 90 of 100.
    local adm = admission.admit("sliding", { count("minute", 100, 50, 600) }, 0)
    assert.is_true(adm.admitted)
    assert.equal(10, adm.windows[1].remaining)
    local full = admission.admit("sliding", { count("minute", 100, 60, 600) }, 0)
    assert.is_false(full.admitted)
    -- needs 60 + 600 * (60 - t) / 60 <= 99 => t >= 56.1: one second from 56.
    assert.equal(1, full.retryAfter)
  end)
end)

describe("token-rate-limiting failure gate", function()
  it("lets traffic through when fault tolerant, refuses otherwise", function()
    assert.equal("allow", failures.onStoreFailure(true))
    assert.equal("reject", failures.onStoreFailure(false))
  end)

  it("opens once per interval and counts what it held back", function()
    local gate = failures.newLogGate(30)
    assert.is_true(gate:open(100))
    assert.is_false(gate:open(100.5))
    assert.is_false(gate:open(129.9))
    assert.is_true(gate:open(130))
    assert.equal(2, gate.suppressed)
    assert.is_false(gate:open(131))
  end)
end)
