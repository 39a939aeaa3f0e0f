-- Reading recorded upstream streams through token-rate-limiting's meter (shared usage reader,
-- event filter, gzip decoding) and what a request is counted at for them.
local cjson = require("cjson")
local chunking = require("chunking")
local meter = require("kong.plugins.token-rate-limiting.meter")
local cost = require("kong.plugins.token-rate-limiting.cost")

local DIR = "spec/fixtures/streams/"
local TOTAL = { tokens_count = "total", prompt_weight = 1, completion_weight = 1 }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function fixture(name)
  local expected = cjson.decode(read(DIR .. name .. ".expected.json"))
  return read(DIR .. expected.file), expected
end

local function content_type(expected)
  if expected.framing == "ndjson" then return "application/x-ndjson" end
  if expected.framing == "json" then return "application/json" end
  return "text/event-stream; charset=utf-8"
end

-- Feeds `body` cut at the given positions (each cut ends a chunk); returns client bytes and report.
local function run(body, cuts, opts)
  local m = meter.newMeter({
    format = opts.format or "auto",
    contentType = opts.contentType,
    contentEncoding = opts.contentEncoding,
    injected = opts.injected or false,
  })
  local out, from = {}, 1
  for i = 1, #cuts + 1 do
    local to = cuts[i] or #body
    out[#out + 1] = m:process(body:sub(from, to), i == #cuts + 1)
    from = to + 1
  end
  return table.concat(out), m:finish(), m
end

local STREAMS = {
  "openai-usage", "openai-crlf-comments", "openai-tricky-text", "openai-completions",
  "vllm-usage", "vllm-continuous", "sglang-usage", "anthropic", "anthropic-cache", "ollama",
}

describe("token-rate-limiting meter", function()
  for _, name in ipairs(STREAMS) do
    it("counts " .. name .. " exactly, whatever the chunk boundary, and passes every byte", function()
      local body, expected = fixture(name)
      local opts = { contentType = content_type(expected) }
      local usage = expected.usage
      -- Two chunks cut at every byte, then one byte per chunk.
      for cut = 0, #body do
        local out, report = run(body, cut > 0 and cut < #body and { cut } or {}, opts)
        assert.equal(body, out)
        assert.equal(usage.prompt_tokens, report.prompt_tokens, "cut at " .. cut)
        assert.equal(usage.completion_tokens, report.completion_tokens, "cut at " .. cut)
        assert.is_true(report.terminated)
      end
      local every = {}
      for i = 1, #body - 1 do every[i] = i end
      local out, report = run(body, every, opts)
      assert.equal(body, out)
      local counted = cost.countTokens(TOTAL, { exited = false, upstreamStatus = 200, report = report, promptEstimate = 999 })
      assert.same({ prompt = usage.prompt_tokens, completion = usage.completion_tokens, total = usage.total_tokens,
        cost = usage.total_tokens, estimated = false, source = "usage" }, counted)
    end)
  end

  it("reads the usage of the last event of a 1 MB stream in random chunks, holding one event at most", function()
    -- openai-usage with its content events repeated past 1 MB; the usage chunk stays last.
    local source, expected = fixture("openai-usage")
    local events = {}
    for event in source:gmatch("(.-\n\n)") do events[#events + 1] = event end
    local content = events[2]
    local parts = { events[1] }
    local size = #events[1]
    while size < 1024 * 1024 do
      parts[#parts + 1] = content
      size = size + #content
    end
    for i = 3, #events do parts[#parts + 1] = events[i] end
    local body = table.concat(parts)
    math.randomseed(42)
    local m = meter.newMeter({ format = "auto", contentType = "text/event-stream", injected = false })
    local at, out, most = 1, {}, 0
    while at <= #body do
      local to = math.min(#body, at + math.random(1, 9000) - 1)
      out[#out + 1] = m:process(body:sub(at, to), to == #body)
      at = to + 1
    end
    local report = m:finish()
    assert.equal(body, table.concat(out))
    assert.equal(expected.usage.total_tokens, report.total_tokens)
    assert.truthy(content:find('"content":"', 1, true))
    assert.is_true(report.text_bytes >= #parts - #events, "every repeated content event was read")
    assert.is_false(m.plan.filter)
    -- Memory: the meter holds at most the unfinished event, in the reader and in the filter.
    local largest = 0
    for _, e in ipairs(events) do largest = math.max(largest, #e) end
    local filtered = meter.newMeter({ format = "auto", contentType = "text/event-stream", injected = true })
    for i = 1, #body, 4096 do
      filtered:process(body:sub(i, i + 4095), false)
      most = math.max(most, filtered:bufferedBytes())
    end
    assert.is_true(most > 0)
    assert.is_true(most <= 2 * largest, "held " .. most .. " bytes, largest event " .. largest)
  end)

  it("estimates a stream without usage from its text and the prompt", function()
    local body, expected = fixture("openai-no-usage")
    local _, report = run(body, { 100, 2000 }, { contentType = "text/event-stream" })
    assert.is_false(report.reported)
    local counted = cost.countTokens(TOTAL, { exited = false, upstreamStatus = 200, report = report, promptEstimate = 9 })
    local completion = math.ceil(chunking.json_text_bytes(expected.text) / 4)
    assert.same({ prompt = 9, completion = completion, total = 9 + completion, cost = 9 + completion,
      estimated = true, source = "estimate" }, counted)
  end)

  it("counts a stream cut by a client abort from what was streamed", function()
    local body = fixture("openai-usage")
    local half = body:sub(1, math.floor(#body / 2))
    local m = meter.newMeter({ format = "auto", contentType = "text/event-stream", injected = false })
    m:process(half, false) -- no eof: the client went away
    local report = m:finish()
    assert.is_false(report.reported)
    assert.is_false(report.terminated)
    local counted = cost.countTokens(TOTAL, { exited = false, upstreamStatus = 200, report = report, promptEstimate = 20 })
    assert.is_true(counted.estimated)
    assert.is_true(counted.completion > 0)
    assert.equal(20 + counted.completion, counted.cost)
  end)

  it("counts at least the streamed text when an Anthropic stream stops after message_start", function()
    local body = fixture("anthropic")
    local cut = body:find("event: message_delta", 1, true) - 1
    local m = meter.newMeter({ format = "auto", contentType = "text/event-stream", injected = false })
    m:process(body:sub(1, cut), false)
    local report = m:finish()
    assert.equal(18, report.prompt_tokens) -- real prompt from message_start
    assert.equal(1, report.completion_tokens) -- message_start's starting value
    local counted = cost.countTokens(TOTAL, { exited = false, upstreamStatus = 200, report = report, promptEstimate = 5 })
    assert.equal(18, counted.prompt)
    assert.is_true(counted.completion > 1)
    assert.is_true(counted.estimated)
    assert.equal("partial_usage", counted.source)
  end)

  describe("injected include_usage", function()
    -- What the client would have received without include_usage: no usage-only chunk and no
    -- "usage":null member (OpenAI adds both only when usage is requested).
    local function without_usage(body)
      local events = {}
      for event in body:gmatch("(.-\n\n)") do
        if not event:find('"choices":[]', 1, true) then
          events[#events + 1] = (event:gsub(',"usage":null', ""))
        end
      end
      return table.concat(events)
    end

    it("removes the usage chunk and the null usage members at any chunk boundary", function()
      local body = fixture("openai-usage")
      local wanted = without_usage(body)
      assert.is_nil(wanted:find('"usage"', 1, true))
      assert.truthy(wanted:find("data: [DONE]", 1, true))
      for cut = 1, #body - 1, 7 do
        local out, report = run(body, { cut }, { contentType = "text/event-stream", injected = true })
        assert.equal(wanted, out, "cut at " .. cut)
        assert.equal(32, report.total_tokens)
      end
    end)

    it("leaves streams of other content types alone", function()
      local body = fixture("ollama")
      local out, _, m = run(body, { 10 }, { contentType = "application/x-ndjson", injected = true })
      assert.equal(body, out)
      assert.is_false(m.plan.filter)
    end)
  end)

  describe("gzip from the upstream", function()
    local function gzip(s)
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      f:write(s)
      f:close()
      local p = assert(io.popen("gzip -c < " .. tmp, "r"))
      local z = p:read("*a")
      p:close()
      os.remove(tmp)
      return z
    end

    it("decodes for counting and passes the compressed bytes to the client", function()
      local body = fixture("vllm-usage")
      local z = gzip(body)
      for _, step in ipairs({ 1, 13, 500, #z }) do
        local cuts = {}
        for at = step, #z - 1, step do cuts[#cuts + 1] = at end
        local out, report, m = run(z, cuts, { contentType = "text/event-stream", contentEncoding = "gzip" })
        assert.equal(z, out)
        assert.is_true(m.plan.decode)
        assert.is_false(m.plan.sendDecoded)
        assert.equal(47, report.total_tokens)
      end
    end)

    it("sends the stream decoded when it must remove the injected usage chunk", function()
      local body = fixture("openai-usage")
      local z = gzip(body)
      local out, report, m = run(z, { 50, 51, 400 }, { contentType = "text/event-stream", contentEncoding = "gzip", injected = true })
      assert.is_true(m.plan.sendDecoded)
      assert.is_nil(out:find('"usage"', 1, true))
      assert.equal(32, report.total_tokens)
      assert.truthy(out:find("data: [DONE]", 1, true))
    end)

    it("counts an estimate for an encoding it cannot decode", function()
      local body = fixture("openai-usage")
      local out, report, m = run(body, { 100 }, { contentType = "text/event-stream", contentEncoding = "br" })
      assert.equal(body, out)
      assert.is_true(m.plan.unreadable)
      assert.is_false(report.reported)
    end)

    it("stops decoding a corrupt body without failing the response", function()
      local z = gzip(fixture("openai-usage"))
      local corrupt = z:sub(1, 20) .. string.rep("\255", 64) .. z:sub(85)
      local out, report, m = run(corrupt, { 30 }, { contentType = "text/event-stream", contentEncoding = "gzip" })
      assert.equal(corrupt, out)
      assert.truthy(m.stoppedReading)
      assert.is_false(report.reported)
    end)
  end)
end)

describe("token-rate-limiting settlement rules", function()
  local report = { reported = false, terminated = false, text_bytes = 40 }

  it("counts nothing for gateway exits and upstream refusals", function()
    assert.equal(0, cost.countTokens(TOTAL, { exited = true, report = report, promptEstimate = 50, upstreamStatus = 200 }).cost)
    local refused = cost.countTokens(TOTAL, { exited = false, report = { reported = false, text_bytes = 0 }, promptEstimate = 50, upstreamStatus = 400 })
    assert.same({ prompt = 0, completion = 0, total = 0, cost = 0, estimated = false, source = "upstream_error" }, refused)
  end)

  it("estimates when the upstream never answered or failed", function()
    local c = cost.countTokens(TOTAL, { exited = false, report = nil, promptEstimate = 50, upstreamStatus = nil })
    assert.same({ prompt = 50, completion = 0, total = 50, cost = 50, estimated = true, source = "estimate" }, c)
    local c5 = cost.countTokens(TOTAL, { exited = false, report = report, promptEstimate = 50, upstreamStatus = 502 })
    assert.equal(60, c5.cost)
  end)

  it("derives a missing count from the reported total", function()
    local r = { reported = true, terminated = true, text_bytes = 0, total_tokens = 30, completion_tokens = 10 }
    local c = cost.countTokens(TOTAL, { exited = false, report = r, promptEstimate = 5, upstreamStatus = 200 })
    assert.same({ prompt = 20, completion = 10, total = 30, cost = 30, estimated = false, source = "usage" }, c)
  end)

  it("applies the cost weights", function()
    local r = { reported = true, terminated = true, text_bytes = 0, prompt_tokens = 100, completion_tokens = 10 }
    local conf = { tokens_count = "cost", prompt_weight = 0.25, completion_weight = 3 }
    assert.equal(55, cost.countTokens(conf, { exited = false, report = r, promptEstimate = 0, upstreamStatus = 200 }).cost)
  end)
end)
