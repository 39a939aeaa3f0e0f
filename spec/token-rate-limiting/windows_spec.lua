-- Window arithmetic of token-rate-limiting (transpiled from plugins/token-rate-limiting/windows.ts).
local windows = require("kong.plugins.token-rate-limiting.windows")

-- 2024-02-29T12:34:56Z: a leap day, so month lengths are exercised.
local T = 1709210096

describe("token-rate-limiting windows", function()
  describe("calendar conversion", function()
    it("round-trips days and civil dates across leap years and centuries", function()
      for _, d in ipairs({ { 1970, 1, 1 }, { 2000, 2, 29 }, { 2100, 3, 1 }, { 2024, 12, 31 }, { 1999, 12, 31 } }) do
        local days = windows.daysFromCivil(d[1], d[2], d[3])
        local y, m, dd = unpack(windows.civilFromDays(days))
        assert.same(d, { y, m, dd })
      end
      assert.equal(0, windows.daysFromCivil(1970, 1, 1))
      assert.equal(19782, windows.daysFromCivil(2024, 2, 29))
    end)

    it("agrees with os.date for every day of 2023-2025", function()
      local start = windows.daysFromCivil(2023, 1, 1)
      for days = start, start + 3 * 366 do
        local t = os.date("!*t", days * 86400)
        assert.same({ t.year, t.month, t.day }, windows.civilFromDays(days))
      end
    end)
  end)

  describe("windowStart and windowLength", function()
    it("aligns fixed periods on epoch multiples", function()
      assert.equal(T, windows.windowStart(T, "second"))
      assert.equal(T, windows.windowStart(T + 0.999, "second"))
      assert.equal(T - 56, windows.windowStart(T, "minute"))
      assert.equal(T - 34 * 60 - 56, windows.windowStart(T, "hour"))
      assert.equal(T - (12 * 3600 + 34 * 60 + 56), windows.windowStart(T, "day"))
      assert.equal(60, windows.windowLength(windows.windowStart(T, "minute"), "minute"))
    end)

    it("uses UTC calendar months", function()
      local feb1 = windows.daysFromCivil(2024, 2, 1) * 86400
      assert.equal(feb1, windows.windowStart(T, "month"))
      assert.equal(29 * 86400, windows.windowLength(feb1, "month"))
      local jan1 = windows.daysFromCivil(2024, 1, 1) * 86400
      assert.equal(jan1, windows.previousWindowStart(feb1, "month"))
      assert.equal(31 * 86400, windows.windowLength(jan1, "month"))
      local dec1 = windows.daysFromCivil(2023, 12, 1) * 86400
      assert.equal(dec1, windows.previousWindowStart(jan1, "month"))
      assert.equal(31 * 86400, windows.windowLength(dec1, "month"))
    end)

    it("puts the exact boundary instant in the new window", function()
      local boundary = windows.daysFromCivil(2024, 3, 1) * 86400
      assert.equal(boundary, windows.windowStart(boundary, "month"))
      assert.equal(boundary - 29 * 86400, windows.windowStart(boundary - 0.001, "month"))
      assert.equal(T - 56 + 60, windows.windowStart(T - 56 + 60, "minute"))
      assert.equal(T - 56, windows.windowStart(T - 56 + 59.999, "minute"))
    end)
  end)

  describe("usedEstimate", function()
    it("is the current count for fixed windows", function()
      local pos = windows.windowPosition(T, "minute")
      assert.equal(30, windows.usedEstimate("fixed", pos, 30, 1000))
    end)

    it("weights the previous window by its overlap for sliding windows", function()
      -- 56 s into the minute: 4/60 of the previous minute still overlaps.
      local pos = windows.windowPosition(T, "minute")
      assert.near(30 + 600 * 4 / 60, windows.usedEstimate("sliding", pos, 30, 600), 1e-9)
      -- At the boundary the previous window counts fully, at the end not at all.
      local at_start = windows.windowPosition(T - 56, "minute")
      assert.equal(630, windows.usedEstimate("sliding", at_start, 30, 600))
      local near_end = windows.windowPosition(T - 56 + 59.999, "minute")
      assert.near(30.01, windows.usedEstimate("sliding", near_end, 30, 600), 1e-6)
    end)
  end)

  describe("remaining, exhaustion and reset", function()
    it("rounds a fractional estimate against the client", function()
      assert.equal(10, windows.remainingTokens(100, 90))
      assert.equal(9, windows.remainingTokens(100, 90.2))
      assert.equal(0, windows.remainingTokens(100, 100))
      assert.equal(0, windows.remainingTokens(100, 250))
    end)

    it("admits while one whole token remains", function()
      assert.is_false(windows.isExhausted(100, 99))
      assert.is_true(windows.isExhausted(100, 99.5))
      assert.is_true(windows.isExhausted(100, 100))
    end)

    it("resets a fixed window at its end, at least one second away", function()
      local pos = windows.windowPosition(T, "minute")
      assert.equal(4, windows.secondsToWindowEnd(pos))
      assert.equal(4, windows.secondsUntilAdmitted("fixed", 100, pos, 100, 0))
      local last = windows.windowPosition(T - 56 + 59.9, "minute")
      assert.equal(1, windows.secondsToWindowEnd(last))
      local first = windows.windowPosition(T - 56, "minute")
      assert.equal(60, windows.secondsToWindowEnd(first))
    end)

    it("finds when a sliding window drops below its limit again", function()
      -- limit 100, current 40, previous 120, 30 s into the minute: used = 40 + 60 = 100.
      local pos = windows.windowPosition(T - 26, "minute")
      assert.equal(100, windows.usedEstimate("sliding", pos, 40, 120))
      local wait = windows.secondsUntilAdmitted("sliding", 100, pos, 40, 120)
      -- needs 40 + 120 * (60 - t) / 60 <= 99  =>  t >= 30.5
      assert.equal(1, wait)
      local after = windows.windowPosition(T - 26 + wait, "minute")
      assert.is_false(windows.isExhausted(100, windows.usedEstimate("sliding", after, 40, 120)))
      local just_before = windows.windowPosition(T - 26 + wait - 0.6, "minute")
      assert.is_true(windows.isExhausted(100, windows.usedEstimate("sliding", just_before, 40, 120)))
    end)

    it("waits into the next sliding window when the current count alone fills the limit", function()
      -- limit 100, current 200 at 56 s: window ends in 4 s, then 200 * (60 - t) / 60 <= 99 => t >= 30.3
      local pos = windows.windowPosition(T, "minute")
      assert.equal(4 + 31, windows.secondsUntilAdmitted("sliding", 100, pos, 200, 0))
    end)
  end)

  it("keeps counters long enough to be read and settled", function()
    assert.equal(120, windows.counterTtl("minute", "fixed"))
    assert.equal(180, windows.counterTtl("minute", "sliding"))
    assert.equal(61, windows.counterTtl("second", "fixed"))
    assert.equal(2 * 86400, windows.counterTtl("day", "fixed"))
  end)
end)
