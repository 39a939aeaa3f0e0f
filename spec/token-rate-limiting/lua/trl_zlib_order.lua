-- Test fixture, run in a fresh LuaJIT by spec/token-rate-limiting/inflate_spec.lua (a C
-- declaration cannot be undone, so each order needs its own Lua state):
--   luajit trl_zlib_order.lua binding-first|plugin-first zlib.h|lua-ffi-zlib load|C
-- declares another binding's standard zlib prototypes before or after token-rate-limiting
-- declared its own, then decodes gzip, zlib and raw deflate with both. Prints one line per
-- check: "<name>\tok" or "<name>\t<what went wrong>".
package.path = "dist/?.lua;dist/?/init.lua;gateway/lua/?.lua;gateway/lua/?/init.lua;"
  .. "spec/token-rate-limiting/lua/?.lua;" .. package.path

local order, flavour, via = arg[1], arg[2], arg[3]
local binding = require("trl_zlib_h")

local results = {}
local function check(name, fn)
  local ok, err = pcall(fn)
  results[#results + 1] = name .. "\t" .. (ok and "ok" or tostring(err):gsub("[\t\n]", " "))
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function equal(expected, actual, what)
  if expected ~= actual then
    error(string.format("%s: expected %s, got %s", what, tostring(expected), tostring(actual)), 2)
  end
end

-- An OpenAI stream with its usage chunk (20 prompt + 12 completion tokens).
local SSE = read("spec/fixtures/streams/openai-usage.sse")
-- Over 16 KiB of poorly compressible bytes, so a chunk decodes into several output buffers.
local BIG
do
  local parts, x = {}, 7
  for i = 1, 200000 do
    x = (x * 1103515245 + 12345) % 2147483648
    parts[i] = string.char(x % 251)
  end
  BIG = table.concat(parts)
end

local ENCODINGS = {
  { name = "gzip", bits = 31, header = "gzip" },
  { name = "zlib", bits = 15, header = "deflate" },
  { name = "raw deflate", bits = -15, header = "deflate" },
}

local inflate, meter, early

local function load_plugin()
  inflate = require("kong.plugins.token-rate-limiting.inflate")
  meter = require("kong.plugins.token-rate-limiting.meter")
  -- The first inflater makes the plugin declare its prototypes; it is used further down.
  local err
  early, err = inflate.newInflater()
  assert(early, err)
end

local function declare_binding()
  binding.declare(flavour, via)
end

local compressed = {}
local function compress_all()
  for _, e in ipairs(ENCODINGS) do
    compressed[e.name] = {
      sse = assert(binding.compress(SSE, e.bits)),
      big = assert(binding.compress(BIG, e.bits)),
    }
  end
end

-- Decodes with one inflater, `step` bytes per chunk; returns the decoded string.
local function plugin_inflate(inflater, data, step)
  local out = {}
  for at = 1, #data, step do
    local ok = inflater:feed(data:sub(at, at + step - 1), function(piece) out[#out + 1] = piece end)
    assert(ok, inflater.error)
  end
  assert(inflater.ended, "the stream did not end")
  inflater:close()
  return table.concat(out)
end

-- Meters `body` as an upstream response, `step` bytes per chunk; returns the client bytes and the report.
local function metered(body, encoding, step, injected)
  local m = meter.newMeter({ format = "auto", contentType = "text/event-stream", contentEncoding = encoding, injected = injected })
  assert(m.plan.decode == (encoding ~= nil), "decode plan")
  local out = {}
  for at = 1, #body, step do
    out[#out + 1] = m:process(body:sub(at, at + step - 1), at + step > #body)
  end
  assert(m.decodeError == nil, m.decodeError)
  return table.concat(out), m:finish()
end

local function plugin_checks()
  for _, e in ipairs(ENCODINGS) do
    for _, step in ipairs({ 1, 7, 1000, 1e9 }) do
      check(("plugin meters %s, %s bytes per chunk"):format(e.name, step), function()
        local out, report = metered(compressed[e.name].sse, e.header, step, false)
        equal(compressed[e.name].sse, out, "client bytes")
        equal(20, report.prompt_tokens, "prompt tokens")
        equal(12, report.completion_tokens, "completion tokens")
        equal(32, report.total_tokens, "total tokens")
      end)
    end
    check(("plugin removes the injected usage chunk from %s"):format(e.name), function()
      local out, report = metered(compressed[e.name].sse, e.header, 100, true)
      assert(not out:find('"usage":{', 1, true), "the usage chunk reached the client")
      assert(out:find("data: [DONE]", 1, true), "the stream was not sent decoded")
      equal(32, report.total_tokens, "total tokens")
    end)
    check(("plugin inflates %s of %d bytes exactly"):format(e.name, #BIG), function()
      equal(BIG, plugin_inflate(assert(inflate.newInflater()), compressed[e.name].big, 4096), "decoded bytes")
    end)
  end
  check("plugin meters an uncompressed stream", function()
    local out, report = metered(SSE, nil, 13, false)
    equal(SSE, out, "client bytes")
    equal(32, report.total_tokens, "total tokens")
  end)
  check("plugin inflater created before the other binding decodes after it", function()
    equal(BIG, plugin_inflate(early, compressed.gzip.big, 5000), "decoded bytes")
  end)
end

local function binding_checks()
  for _, e in ipairs(ENCODINGS) do
    check(("binding decompresses %s"):format(e.name), function()
      local bits = e.bits == -15 and -15 or 47
      equal(SSE, assert(binding.decompress(compressed[e.name].sse, bits)), "decoded bytes")
      equal(BIG, assert(binding.decompress(compressed[e.name].big, bits)), "decoded bytes")
    end)
  end
end

local function must(name, fn)
  check(name, fn)
  if not results[#results]:find("\tok$") then
    print(table.concat(results, "\n"))
    os.exit(0)
  end
end

if order == "binding-first" then
  must("binding declares its prototypes", declare_binding)
  must("binding compresses", compress_all)
  must("plugin loads", load_plugin)
elseif order == "plugin-first" then
  must("plugin loads", load_plugin)
  must("binding declares its prototypes", declare_binding)
  must("binding compresses", compress_all)
else
  error("order: binding-first or plugin-first")
end
plugin_checks()
binding_checks()
print(table.concat(results, "\n"))
