-- token-rate-limiting's zlib decoding next to another FFI binding that declares zlib.h's
-- standard prototypes in the same Lua state (as lua-ffi-zlib does in real Kong), declared
-- before the plugin's own or after them. LuaJIT's C declarations cannot be undone, so each
-- case runs spec/token-rate-limiting/lua/trl_zlib_order.lua in a fresh luajit.
local inflate = require("kong.plugins.token-rate-limiting.inflate")

local RUNNER = "spec/token-rate-limiting/lua/trl_zlib_order.lua"

local function run(order, flavour, via)
  local p = assert(io.popen(("luajit %s %s %s %s 2>&1"):format(RUNNER, order, flavour, via), "r"))
  local output = p:read("*a")
  p:close()
  local results, names = {}, {}
  for name, outcome in output:gmatch("([^\t\n]+)\t([^\n]*)") do
    results[name] = outcome
    names[#names + 1] = name
  end
  return results, names, output
end

local ENCODINGS = { "gzip", "zlib", "raw deflate" }
local EXPECTED = { "binding declares its prototypes", "binding compresses", "plugin loads",
                   "plugin meters an uncompressed stream",
                   "plugin inflater created before the other binding decodes after it" }
for _, e in ipairs(ENCODINGS) do
  for _, step in ipairs({ 1, 7, 1000, 1e9 }) do
    EXPECTED[#EXPECTED + 1] = ("plugin meters %s, %s bytes per chunk"):format(e, step)
  end
  EXPECTED[#EXPECTED + 1] = ("plugin removes the injected usage chunk from %s"):format(e)
  EXPECTED[#EXPECTED + 1] = ("plugin inflates %s of 200000 bytes exactly"):format(e)
  EXPECTED[#EXPECTED + 1] = ("binding decompresses %s"):format(e)
end

describe("token-rate-limiting inflate next to another zlib binding", function()
  for _, order in ipairs({ "binding-first", "plugin-first" }) do
    for _, case in ipairs({ { "lua-ffi-zlib", "load" }, { "zlib.h", "load" }, { "zlib.h", "C" } }) do
      local flavour, via = case[1], case[2]
      it(("%s, %s prototypes through %s: both decode gzip, zlib and raw deflate exactly"):format(order, flavour, via), function()
        local results, names, output = run(order, flavour, via)
        local all_ok = {}
        for _, name in ipairs(EXPECTED) do all_ok[name] = "ok" end
        assert.same(all_ok, results, output)
        assert.equal(#EXPECTED, #names, output)
      end)
    end
  end
end)

describe("token-rate-limiting inflate", function()
  it("waits for the second header byte before choosing the format", function()
    -- zlib header 78 9c of "hi" (compressed once, written out here)
    local z = "\120\156\203\200\004\000\001\059\000\210"
    local inflater = assert(inflate.newInflater())
    local out = {}
    local sink = function(piece) out[#out + 1] = piece end
    assert.is_true(inflater:feed(z:sub(1, 1), sink))
    assert.same({}, out)
    assert.is_true(inflater:feed(z:sub(2), sink))
    assert.equal("hi", table.concat(out))
    assert.is_true(inflater.ended)
  end)

  it("reports corrupt input without raising", function()
    local inflater = assert(inflate.newInflater())
    assert.is_false(inflater:feed("\31\139\8\0\0\0\0\0\0\3\255\255\255\255\255\255", function() end))
    assert.truthy(inflater.error)
  end)

  it("closes an inflater that never received a byte", function()
    local inflater = assert(inflate.newInflater())
    inflater:close()
    inflater:close()
    assert.is_false(inflater.ended)
  end)
end)
