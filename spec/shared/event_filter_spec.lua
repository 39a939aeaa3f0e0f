local event_filter = require("kong.plugins.ai-gateway-shared.event_filter")
local chunking = require("chunking")

local function run(filter, chunks)
  local out = {}
  for _, chunk in ipairs(chunks) do out[#out + 1] = filter:feed(chunk) end
  out[#out + 1] = filter:finish()
  return table.concat(out)
end

-- Reference: what the client should get, computed on the whole stream with plain string
-- operations: events are the pieces between blank lines; the usage-only one goes, and the
-- `,"usage":null` member goes from the others.
local function reference(stream, sep)
  local blank = sep .. sep
  local out, pos = {}, 1
  while pos <= #stream do
    local e = stream:find(blank, pos, true)
    local block = e and stream:sub(pos, e + #blank - 1) or stream:sub(pos)
    pos = e and e + #blank or #stream + 1
    if not (block:find('"choices":[]', 1, true) and block:find('"usage":{', 1, true)) then
      out[#out + 1] = (block:gsub(',"usage":null', ""))
    end
  end
  return table.concat(out)
end

local function to_crlf(s) return (s:gsub("\n", "\r\n")) end
local function to_cr(s) return (s:gsub("\n", "\r")) end

describe("injected usage filter", function()
  local stream = chunking.fixture("openai-usage.sse")
  assert(stream, "spec/fixtures/streams/openai-usage.sse is missing")

  it("removes the usage-only chunk and every usage:null, leaving the other bytes as they were", function()
    local want = reference(stream, "\n")
    assert.is_nil(want:find('"usage"', 1, true))
    assert.is_true(#want < #stream)
    local filter = event_filter.newInjectedUsageFilter()
    assert.are.equal(want, run(filter, { stream }))
    assert.are.equal(1, filter.dropped)
    -- The client's stream still ends with the finish chunk and [DONE].
    assert.is_truthy(want:find('"finish_reason":"length"', 1, true))
    assert.are.equal("data: [DONE]\n\n", want:sub(-14))
  end)

  for _, variant in ipairs({ { "LF", function(s) return s end, "\n" }, { "CRLF", to_crlf, "\r\n" }, { "CR", to_cr, "\r" } }) do
    it("gives the same bytes at every split (" .. variant[1] .. " line endings)", function()
      local s = variant[2](stream)
      local want = reference(s, variant[3])
      chunking.each_split(s, function(chunks, k)
        local got = run(event_filter.newInjectedUsageFilter(), chunks)
        if got ~= want then assert.are.equal(want, got, variant[1] .. " split at " .. k) end
      end)
      for _, v in ipairs(chunking.variants(s)) do
        assert.are.equal(want, run(event_filter.newInjectedUsageFilter(), v[2]), variant[1] .. " " .. v[1])
      end
    end)
  end

  it("removes the whole CRLF of the usage chunk when the chunk ends between CR and LF", function()
    local s = to_crlf(stream)
    local usage_at = s:find('"choices":[]', 1, true)
    local cut = s:find("\r\n\r\n", usage_at, true) + 2 -- right after the blank line's CR
    local got = run(event_filter.newInjectedUsageFilter(), { s:sub(1, cut), s:sub(cut + 1) })
    assert.are.equal(reference(s, "\r\n"), got)
  end)

  it("leaves vLLM (no usage:null), Anthropic and streams without usage unchanged except the usage chunk", function()
    local vllm = chunking.fixture("vllm-usage.sse")
    assert.are.equal(reference(vllm, "\n"), run(event_filter.newInjectedUsageFilter(), chunking.fixed(vllm, 7)))
    for _, name in ipairs({ "anthropic.sse", "openai-no-usage.sse", "openai-tricky-text.sse" }) do
      local s = chunking.fixture(name)
      local want = name == "openai-tricky-text.sse" and reference(s, "\n") or s
      assert.are.equal(want, run(event_filter.newInjectedUsageFilter(), chunking.random(s, 5, 50)), name)
    end
  end)

  it("keeps usage:null when told not to strip it", function()
    local filter = event_filter.newInjectedUsageFilter(false)
    local got = run(filter, chunking.fixed(stream, 100))
    local want = stream:gsub('data: {[^\n]-"choices":%[%],"usage":{.-}}\n\n', "")
    assert.are.equal(want, got)
    assert.are.equal(1, filter.dropped)
  end)

  it("does not drop a usage chunk that still has choices, nor text that merely looks like one", function()
    local s = 'data: {"choices":[{"index":0,"delta":{"content":"\\"choices\\":[],\\"usage\\":{\\"prompt_tokens\\":1}"}}],"usage":null}\n\n'
      .. 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
      .. "data: [DONE]\n\n"
    local filter = event_filter.newInjectedUsageFilter()
    assert.are.equal(s:gsub(',"usage":null', ""), run(filter, chunking.fixed(s, 3)))
    assert.are.equal(0, filter.dropped)
  end)

  it("passes an unfinished last event at the end unchanged", function()
    local s = 'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n'
    assert.are.equal(s, run(event_filter.newInjectedUsageFilter(), { s }))
  end)
end)

-- Reference for any rewrite: cut the whole stream into events by the SSE line rules (LF, CRLF
-- or CR; an event ends with its empty line), rewrite each complete one, keep the unfinished rest.
local function reference_rewrite(stream, rewrite)
  local out, block_start, pos, line_start = {}, 1, 1, 1
  while pos <= #stream do
    local c = stream:sub(pos, pos)
    if c == "\r" or c == "\n" then
      local stop = pos
      if c == "\r" and stream:sub(pos + 1, pos + 1) == "\n" then stop = pos + 1 end
      if pos == line_start then
        local block = stream:sub(block_start, stop)
        local r = rewrite(block)
        out[#out + 1] = r == nil and block or r
        block_start = stop + 1
      end
      pos = stop + 1
      line_start = pos
    else
      pos = pos + 1
    end
  end
  out[#out + 1] = stream:sub(block_start)
  return table.concat(out)
end

describe("event filter against the reference", function()
  local function rewrite(block)
    if block:find("drop", 1, true) then return "" end
    if block:find("up", 1, true) then return block:upper() end
    return nil
  end

  it("matches on pseudo-random streams with mixed line endings at random chunkings", function()
    local lines = { "data: keep", "data: drop", "data: up", ": comment", "event: x", "", "" }
    local ends = { "\n", "\r\n", "\r" }
    local state = 7
    local function rnd(m) state = (state * 1103515245 + 12345) % 2147483648; return state % m + 1 end
    for round = 1, 300 do
      local parts = {}
      for _ = 1, rnd(16) do parts[#parts + 1] = lines[rnd(#lines)] .. ends[rnd(#ends)] end
      if rnd(3) == 1 then parts[#parts + 1] = "data: unfinished" end
      local stream = table.concat(parts)
      local want = reference_rewrite(stream, rewrite)
      for seed = 1, 4 do
        local got = run(event_filter.newEventFilter(rewrite), chunking.random(stream, round * 11 + seed, 5))
        assert.are.equal(want, got, "round " .. round .. " seed " .. seed .. ": " .. stream:gsub("\r", "\\r"):gsub("\n", "\\n"))
      end
      chunking.each_split(stream, function(chunks, k)
        local got = run(event_filter.newEventFilter(rewrite), chunks)
        if got ~= want then assert.are.equal(want, got, "round " .. round .. " split " .. k) end
      end)
    end
  end)
end)

describe("event filter", function()
  it("holds back at most one unfinished event and passes a larger one as it comes", function()
    local seen = 0
    local filter = event_filter.newEventFilter(function(block) seen = seen + 1; return block:upper() end, { maxHoldBytes = 100 })
    local big = "data: " .. string.rep("x", 1000) .. "\n\n"
    local small = "data: y\n\n"
    local out = {}
    for _, chunk in ipairs(chunking.fixed(small .. big .. small, 10)) do
      out[#out + 1] = filter:feed(chunk)
      assert.is_true(filter.bufferedBytes <= 100 + 10)
    end
    out[#out + 1] = filter:finish()
    -- The small events were rewritten; the big one could not be held, so it passed unchanged.
    assert.are.equal(small:upper() .. big .. small:upper(), table.concat(out))
    assert.are.equal(2, seen)
  end)

  it("sends nothing of an event until it is complete, then all of it", function()
    local filter = event_filter.newEventFilter(function() return nil end)
    assert.are.equal("", filter:feed("data: a"))
    assert.are.equal("", filter:feed("bc\n"))
    assert.are.equal("data: abc\n\n", filter:feed("\n"))
    assert.are.equal("data: d\n\n", filter:feed("data: d\n\ndata: e"))
    assert.are.equal("data: e", filter:finish())
  end)

  it("finds needle and cut by their first word character, checking what comes before it", function()
    -- `usage":null` also ends `"my_usage":null` and `x"usage":null`: only `,"usage":null` is cut.
    local stream = 'data: {"my_usage":null,"a":1}\n\n'
      .. 'data: {"my_usage":null,"usage":null}\n\n'
      .. 'data: {x"usage":null,"usage":null,"b":2}\n\n'
      .. 'data: {"usage":null,"c":3}\n\n'
      .. 'data: {"d":",\\"usage\\":null"}\n\n'
    local want = 'data: {"my_usage":null,"a":1}\n\n'
      .. 'data: {"my_usage":null}\n\n'
      .. 'data: {x"usage":null,"b":2}\n\n'
      .. 'data: {"c":3}\n\n'
      .. 'data: {"d":",\\"usage\\":null"}\n\n'
    chunking.each_split(stream, function(chunks, k)
      local got = run(event_filter.newInjectedUsageFilter(true), chunks)
      if got ~= want then assert.are.equal(want, got, "split " .. k) end
    end)
    -- A cut that does not hold the needle applies only to events that have the needle.
    local calls = 0
    local filter = event_filter.newEventFilter(function(block) calls = calls + 1; return block:upper() end, { needle = "up", cut = "-x" })
    assert.are.equal("data: a-x\n\nDATA: UP\n\ndata: up\n\n", run(filter, { "data: a-x\n\ndata: up\n\ndata: up-x\n\n" }))
    assert.are.equal(1, calls)
    assert.are.equal(2, filter.rewritten)
  end)

  it("only consults rewrite for events that contain the needle", function()
    local calls = 0
    local filter = event_filter.newEventFilter(function() calls = calls + 1; return "" end, { needle = "drop" })
    assert.are.equal(": c\n\ndata: keep\n\n", run(filter, { ": c\n\ndata: keep\n\ndata: drop\n\n" }))
    assert.are.equal(1, calls)
    assert.are.equal(1, filter.dropped)
  end)

  it("blockData joins the data lines of an event", function()
    assert.are.equal("a\nb", event_filter.blockData("event: x\r\ndata: a\r\ndata:b\r\n\r\n"))
    assert.is_nil(event_filter.blockData(": comment\n\n"))
  end)

  it("isUsageOnlyChunk needs choices [] and a usage object", function()
    assert.is_true(event_filter.isUsageOnlyChunk('{"choices":[],"usage":{"prompt_tokens":1}}'))
    assert.is_false(event_filter.isUsageOnlyChunk('{"choices":[],"usage":null}'))
    assert.is_false(event_filter.isUsageOnlyChunk('{"choices":[{"index":0}],"usage":{"prompt_tokens":1}}'))
    assert.is_false(event_filter.isUsageOnlyChunk('{"usage":{"prompt_tokens":1}}'))
    assert.is_false(event_filter.isUsageOnlyChunk("[DONE]"))
  end)
end)
