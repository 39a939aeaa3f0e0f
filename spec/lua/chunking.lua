-- Helpers for specs that feed a byte stream to an incremental reader in every possible way:
-- split in two at every position, in 1-byte chunks, in fixed-size chunks, in pseudo-random
-- chunks; and for reading the recorded fixtures in spec/fixtures/streams/.
local cjson = require("cjson")

local chunking = {}

--- All ways of cutting s in two: calls fn({a, b}, k) for k = 0..#s (the first piece has k bytes).
function chunking.each_split(s, fn)
  for k = 0, #s do
    fn({ s:sub(1, k), s:sub(k + 1) }, k)
  end
end

--- s in pieces of `size` bytes (the last may be shorter).
function chunking.fixed(s, size)
  local chunks = {}
  for p = 1, #s, size do chunks[#chunks + 1] = s:sub(p, p + size - 1) end
  return chunks
end

--- s in 1-byte pieces.
function chunking.bytes(s)
  return chunking.fixed(s, 1)
end

--- s in pseudo-random pieces of 1..max_size bytes (deterministic for a seed).
function chunking.random(s, seed, max_size)
  local state = seed
  local chunks, p = {}, 1
  while p <= #s do
    state = (state * 1103515245 + 12345) % 2147483648
    local size = state % max_size + 1
    chunks[#chunks + 1] = s:sub(p, p + size - 1)
    p = p + size
  end
  return chunks
end

--- Every chunking a spec should survive, as { name, chunks } pairs: whole, 1-byte, 2, 3, 7, 64
--- bytes, and three random ones.
function chunking.variants(s)
  local list = {
    { "whole", { s } },
    { "1-byte", chunking.bytes(s) },
    { "2-byte", chunking.fixed(s, 2) },
    { "3-byte", chunking.fixed(s, 3) },
    { "7-byte", chunking.fixed(s, 7) },
    { "64-byte", chunking.fixed(s, 64) },
  }
  for seed = 1, 3 do list[#list + 1] = { "random" .. seed, chunking.random(s, seed, 40) } end
  return list
end

local FIXTURES = "spec/fixtures/streams/"

--- The bytes of a recorded stream, or nil when the file is missing.
function chunking.fixture(name)
  local f = io.open(FIXTURES .. name, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

--- The decoded expected-usage sidecar of a recorded stream (name without extension).
function chunking.expected(name)
  local text = chunking.fixture(name .. ".expected.json")
  return text and cjson.decode(text) or nil
end

--- Names (without extension) of the recorded streams that have a sidecar.
function chunking.fixture_names()
  local names = {}
  local p = io.popen("ls " .. FIXTURES .. " 2>/dev/null")
  if p then
    for line in p:lines() do
      local base = line:match("^(.*)%.expected%.json$")
      if base then names[#names + 1] = base end
    end
    p:close()
  end
  table.sort(names)
  return names
end

--- UTF-8 characters of s (independent of the code under test).
function chunking.utf8_chars(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

--- Bytes of s written as a JSON string's contents the way JSON.stringify writes it (the mock
--- LLM's encoder): `"` and `\` and the short control escapes take two bytes, other control
--- characters six (\u00XX), everything else (UTF-8 included) its own bytes.
function chunking.json_text_bytes(s)
  local n = #s
  local _, two = s:gsub('[\"\\\b\f\n\r\t]', "")
  local _, six = s:gsub("[%z\1-\7\11\14-\31]", "")
  return n + two + 5 * six
end

return chunking
