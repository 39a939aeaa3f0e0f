local ndjson = require("kong.plugins.ai-gateway-shared.ndjson")
local chunking = require("chunking")

local function read_all(chunks, opts)
  local reader = ndjson.newNdjsonReader(opts)
  local lines, count = {}, 0
  for _, chunk in ipairs(chunks) do
    count = count + reader:feed(chunk, function(line) lines[#lines + 1] = line end)
  end
  assert.are.equal(#lines, count)
  reader:finish(function(line) lines[#lines + 1] = line end)
  return lines, reader
end

describe("ndjson reader", function()
  local stream = '{"a":1}\n{"b":"模型"}\r\n\n  \n{"c":3}'

  it("returns the lines at every split, drops CR and blank lines, keeps a last line without LF", function()
    local want = { '{"a":1}', '{"b":"模型"}', '{"c":3}' }
    chunking.each_split(stream, function(chunks, k) assert.are.same(want, (read_all(chunks)), "split " .. k) end)
    for _, v in ipairs(chunking.variants(stream)) do assert.are.same(want, (read_all(v[2])), v[1]) end
  end)

  it("feedLines returns complete lines only", function()
    local reader = ndjson.newNdjsonReader()
    assert.are.same({}, reader:feedLines('{"a"'))
    assert.are.same({ '{"a":1}' }, reader:feedLines(':1}\n{"b'))
    assert.are.equal(3, reader.bufferedBytes)
  end)

  it("drops a line over the cap and goes on, in bounded memory", function()
    local s = '{"x":1}\n' .. '{"big":"' .. string.rep("z", 100000) .. '"}\n{"y":2}\n'
    local lines, reader = read_all(chunking.fixed(s, 999), { maxLineBytes = 4096 })
    assert.are.same({ '{"x":1}', '{"y":2}' }, lines)
    assert.are.equal(1, reader.oversized)
  end)
end)
