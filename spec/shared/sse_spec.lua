local sse = require("kong.plugins.ai-gateway-shared.sse")
local chunking = require("chunking")

-- A reference interpretation of a whole event stream, written from the WHATWG text line by
-- line (no chunks, no speed tricks), to compare the incremental reader with.
local function reference(stream)
  local events, data, name, last_id = {}, nil, nil, nil
  local s = stream:gsub("^\239\187\191", "")
  local lines, pos = {}, 1
  while pos <= #s do
    local e = s:find("[\r\n]", pos)
    if not e then break end -- an unfinished last line is never interpreted
    lines[#lines + 1] = s:sub(pos, e - 1)
    if s:sub(e, e + 1) == "\r\n" then pos = e + 2 else pos = e + 1 end
  end
  for _, line in ipairs(lines) do
    if line == "" then
      if data then events[#events + 1] = { data = table.concat(data, "\n"), event = name, id = last_id } end
      data, name = nil, nil
    elseif line:sub(1, 1) ~= ":" then
      local field, value = line:match("^([^:]*):(.*)$")
      if not field then field, value = line, "" end
      value = value:gsub("^ ", "")
      if field == "data" then data = data or {}; data[#data + 1] = value
      elseif field == "event" then name = value ~= "" and value or nil
      elseif field == "id" and not value:find("\0", 1, true) then last_id = value ~= "" and value or nil
      end
    end
  end
  return events
end

local function read_all(chunks, opts)
  local reader = sse.newSseReader(opts)
  local events, counts = {}, 0
  for _, chunk in ipairs(chunks) do
    counts = counts + reader:feed(chunk, function(data, event, id)
      events[#events + 1] = { data = data, event = event, id = id }
    end)
  end
  assert.are.equal(#events, counts) -- feed returns how many events each chunk completed
  return events, reader
end

local SAMPLES = {
  lf = "data: one\n\ndata: two\n\n",
  crlf = "data: one\r\n\r\ndata: two\r\n\r\n",
  cr = "data: one\r\rdata: two\r\r",
  mixed = "data: a\r\ndata: b\n\rdata: c\r\r\n\n",
  comments = ": ping\n\n: another\ndata: x\n: inside\n\n",
  multiline = "data: first\ndata:second\ndata:  two spaces\n\n",
  named = "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {}\n\n",
  ids = "id: 1\ndata: a\n\nid\ndata: b\n\nid: 3\0x\ndata: c\n\n",
  empty_data = "data\n\ndata:\n\ndata: \n\n",
  unknown_fields = "retry: 1000\nfoo: bar\ndatax: nope\ndata: yes\n\n",
  no_data = "event: lonely\n\ndata: after\n\n",
  bom = "\239\187\191data: bom\n\n",
  utf8 = "data: {\"text\":\"模型 🚀 déjà\"}\n\n",
  unfinished = "data: complete\n\ndata: never ended\n",
  blank_runs = "\n\n\ndata: a\n\n\n\n",
}

describe("sse reader", function()
  for label, stream in pairs(SAMPLES) do
    it("matches the reference interpretation for " .. label .. " at every split", function()
      local want = reference(stream)
      assert.are.same(want, (read_all({ stream })))
      chunking.each_split(stream, function(chunks, k)
        local got = read_all(chunks)
        assert.are.same(want, got, label .. " split at " .. k)
      end)
      for _, v in ipairs(chunking.variants(stream)) do
        assert.are.same(want, (read_all(v[2])), label .. " " .. v[1])
      end
    end)
  end

  it("reads LF, CRLF and CR line endings alike", function()
    local lf = read_all({ SAMPLES.lf })
    assert.are.same({ { data = "one" }, { data = "two" } }, lf)
    assert.are.same(lf, (read_all({ SAMPLES.crlf })))
    assert.are.same(lf, (read_all({ SAMPLES.cr })))
  end)

  it("pairs a CR that ends one chunk with the LF that starts the next", function()
    -- If the LF were a second line ending, the empty line would end the event early.
    local events = read_all({ "data: a\r", "\ndata: b\r", "\n\r", "\n" })
    assert.are.same({ { data = "a\nb" } }, events)
  end)

  it("joins several data lines with a newline and drops one optional space", function()
    local events = read_all({ SAMPLES.multiline })
    assert.are.same({ { data = "first\nsecond\n two spaces" } }, events)
  end)

  it("counts comment lines and never dispatches them", function()
    local events, reader = read_all({ SAMPLES.comments })
    assert.are.same({ { data = "x" } }, events)
    assert.are.equal(3, reader.comments)
  end)

  it("keeps the last event id and passes event names", function()
    local events = read_all({ SAMPLES.ids })
    assert.are.same({ { data = "a", id = "1" }, { data = "b" }, { data = "c" } }, events)
    local named = read_all({ SAMPLES.named })
    assert.are.equal("message_start", named[1].event)
    assert.are.equal("ping", named[2].event)
  end)

  it("carries bytes of a split UTF-8 character unchanged", function()
    local s = SAMPLES.utf8
    local cut = s:find("\230", 1, true) + 1 -- inside the 3-byte 模
    local events = read_all({ s:sub(1, cut), s:sub(cut + 1) })
    assert.are.equal('{"text":"模型 🚀 déjà"}', events[1].data)
  end)

  it("does not dispatch an unfinished event at the end and says so", function()
    local events, reader = read_all({ SAMPLES.unfinished })
    assert.are.same({ { data = "complete" } }, events)
    assert.is_true(reader:finish())
    local _, clean = read_all({ SAMPLES.lf })
    assert.is_false(clean:finish())
  end)

  it("dispatches the unfinished event at the end when finish is given a handler", function()
    for _, ending in ipairs({ "data: last\n", "data: last", "data: last\r", "data: la\ndata: st" }) do
      local reader = sse.newSseReader()
      local seen = {}
      local function on(data) seen[#seen + 1] = data end
      reader:feed("data: first\n\n" .. ending, on)
      assert.is_true(reader:finish(on), ending)
      assert.are.same({ "first", (ending:gsub("^data: la\ndata: st$", "la\nst"):gsub("^data: ", ""):gsub("\r?\n?$", "")) }, seen)
    end
  end)

  it("returns events as a list with feedEvents", function()
    local reader = sse.newSseReader()
    assert.are.same({}, reader:feedEvents("data: a"))
    assert.are.same({ { data = "ab" } }, reader:feedEvents("b\n\n"))
  end)

  it("matches the reference on pseudo-random streams at random chunkings", function()
    local pieces = { "data: x", "data:y", "data", "event: e", "id: 7", ": c", "", "", "retry: 5", "data: é模" }
    local ends = { "\n", "\r\n", "\r" }
    local state = 42
    local function rnd(m) state = (state * 1103515245 + 12345) % 2147483648; return state % m + 1 end
    for round = 1, 200 do
      local parts = {}
      for _ = 1, rnd(20) do parts[#parts + 1] = pieces[rnd(#pieces)] .. ends[rnd(#ends)] end
      local stream = table.concat(parts)
      local want = reference(stream)
      for seed = 1, 3 do
        assert.are.same(want, (read_all(chunking.random(stream, round * 7 + seed, 6))), "round " .. round .. ": " .. stream)
      end
    end
  end)

  describe("bounded memory", function()
    it("drops an event larger than maxEventBytes and reads the next one", function()
      local big = "data: " .. string.rep("x", 5000) .. "\n\n"
      local stream = "data: before\n\n" .. big .. "data: after\n\n"
      for _, v in ipairs({ { stream }, chunking.fixed(stream, 100), chunking.fixed(stream, 1) }) do
        local events, reader = read_all(v, { maxEventBytes = 1024 })
        assert.are.same({ { data = "before" }, { data = "after" } }, events)
        assert.are.equal(1, reader.oversized)
        assert.is_true(reader.bufferedBytes <= 1024)
      end
    end)

    it("drops an event made of many data lines over the cap", function()
      local stream = string.rep("data: 0123456789\n", 200) .. "\ndata: ok\n\n"
      local events, reader = read_all(chunking.fixed(stream, 13), { maxEventBytes = 1000 })
      assert.are.same({ { data = "ok" } }, events)
      assert.are.equal(1, reader.oversized)
    end)

    it("holds at most the cap while a 10 MB event without a newline streams in", function()
      local reader = sse.newSseReader({ maxEventBytes = 64 * 1024 })
      local chunk = string.rep("y", 16 * 1024)
      collectgarbage()
      collectgarbage()
      local before = collectgarbage("count")
      local peak_held, peak_kb = 0, 0
      assert.are.equal(0, reader:feed("data: ", function() end))
      for i = 1, 640 do -- 10 MiB
        assert.are.equal(0, reader:feed(chunk, function() error("no event expected") end))
        if reader.bufferedBytes > peak_held then peak_held = reader.bufferedBytes end
        if i % 64 == 0 then
          collectgarbage()
          local kb = collectgarbage("count") - before
          if kb > peak_kb then peak_kb = kb end
        end
      end
      assert.is_true(peak_held <= 64 * 1024, "held " .. peak_held)
      assert.is_true(peak_kb < 512, "Lua heap grew by " .. peak_kb .. " KB")
      assert.are.equal(1, reader.oversized)
      -- The stream goes on normally after the dropped event.
      local events = {}
      reader:feed("\n\ndata: next\n\n", function(data) events[#events + 1] = data end)
      assert.are.same({ "next" }, events)
    end)

    it("joins a large event fed in small chunks in linear time", function()
      local stream = "data: " .. string.rep("z", 512 * 1024) .. "\n\n"
      local t0 = os.clock()
      local events = read_all(chunking.fixed(stream, 16))
      local dt = os.clock() - t0
      assert.are.equal(512 * 1024, #events[1].data)
      -- 32768 chunks: quadratic concatenation would copy ~8 GB and take many seconds.
      assert.is_true(dt < 2, "took " .. dt .. " s")
    end)
  end)
end)
