-- Does the usage reader's hot path compile? Runs the reader over one stream of the manifest (4 KiB
-- chunks, then one event per chunk) with LuaJIT's trace dump on (what `luajit -jv` prints), then
-- again under the sampling profiler (`luajit -jp=fl`, and `-jp=v` for the share of time spent
-- compiled, interpreted, in C or in the GC), and reports the trace aborts whose start or abort
-- location is in the shared library's modules (the reader and what it calls), NYI among them.
--
--   luajit bench/sse-reader/jit-check.lua --manifest FILE [--dist DIR] [--stream openai] [--seconds 2]
--
-- The last line of output is one JSON object: traces, aborts (grouped by location and reason),
-- NYI count, and the profiles' top lines. Exit 0 whatever it finds (the harness judges);
-- exit 1 only when the reader's report is wrong or the tools fail.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")

local dist, manifest, stream, seconds = script_dir .. "/../../dist", nil, "openai", 2
local i = 1
while arg and arg[i] do
  if arg[i] == "--manifest" then i = i + 1; manifest = arg[i]
  elseif arg[i] == "--dist" then i = i + 1; dist = arg[i]
  elseif arg[i] == "--stream" then i = i + 1; stream = arg[i]
  elseif arg[i] == "--seconds" then i = i + 1; seconds = tonumber(arg[i])
  else
    io.stderr:write("usage: luajit bench/sse-reader/jit-check.lua --manifest FILE [--dist DIR] [--stream NAME] [--seconds S]\n")
    os.exit(2)
  end
  i = i + 1
end
if not manifest or not seconds then
  io.stderr:write("jit-check.lua: --manifest FILE is required (npx tsx bench/run.ts --write-streams DIR writes one)\n")
  os.exit(2)
end
common.use_dist(dist)

local cjson = require("cjson.safe")

local entry
for _, e in ipairs(common.load_manifest(manifest)) do
  if e.name == stream then entry = e end
end
if not entry then
  io.stderr:write("jit-check.lua: no stream named " .. stream .. " in " .. manifest .. "\n")
  os.exit(1)
end

local tmp = os.tmpname()
local function slurp(path)
  local s = common.read_file(path) or ""
  os.remove(path)
  return s
end

-- Loaded before the dump starts, so loading them makes no traces.
local new_reader = require("kong.plugins.ai-gateway-shared.stream_usage").newUsageReader
-- The modules whose traces count: the shared library's (the reader and what it loaded). The
-- dump names a location by its file's base name (needle.lua:38).
local own = {}
for name in pairs(package.loaded) do
  local base = name:match("^kong%.plugins%.ai%-gateway%-shared%.([%w_]+)$")
  if base then own[base .. ".lua"] = true end
end
local function is_own(loc)
  local file = loc and loc:match("([%w_]+%.lua):%d+")
  return file ~= nil and own[file] == true
end
local inputs = {}
for _, size in ipairs({ 4096, "event" }) do
  local chunks, n = common.split(entry.data, size, entry.expected.framing)
  inputs[#inputs + 1] = { chunks = chunks, n = n }
end

local function workload(s)
  for _, input in ipairs(inputs) do
    local t0 = os.clock()
    repeat
      local report = common.read_once(new_reader, entry.content_type, input.chunks, input.n)
      local bad = common.mismatch(report, entry.expected)
      if bad then
        io.stderr:write("WRONG RESULT: " .. bad .. "\n")
        os.exit(1)
      end
    until os.clock() - t0 >= s / #inputs
  end
end

-- 1. trace dump, from a cold start of the reader's code
require("jit.v").on(tmp)
workload(seconds)
require("jit.v").off()
local dump = slurp(tmp)

local traces, aborts, groups, order = 0, 0, {}, {}
for line in dump:gmatch("[^\n]+") do
  if line:match("^%[TRACE%s+%d+ ") then
    traces = traces + 1
  else
    -- [TRACE --- (parent/exit) start -- reason at location]
    local start, rest = line:match("^%[TRACE %-%-%- (.-) %-%- (.*)%]$")
    if start then
      local reason, at = rest:match("^(.-) at (%S+)$")
      reason = reason or rest
      if is_own(start:match("(%S+)$")) or is_own(at) then
        aborts = aborts + 1
        local key = start:gsub("^%(%S+%) ", "") .. " -- " .. reason .. (at and (" at " .. at) or "")
        if not groups[key] then
          groups[key] = 0
          order[#order + 1] = key
        end
        groups[key] = groups[key] + 1
      end
    end
  end
end
local nyi, listed = 0, {}
for _, key in ipairs(order) do
  if key:find("NYI", 1, true) then nyi = nyi + groups[key] end
  listed[#listed + 1] = { where = key, count = groups[key] }
end
table.sort(listed, function(a, b) return a.count > b.count end)

-- 2. profiles of the warm reader
local function profile(mode)
  local p = require("jit.p")
  p.start(mode, tmp)
  workload(seconds)
  p.stop()
  local lines = {}
  for line in slurp(tmp):gmatch("[^\n]+") do
    if #lines < 25 then lines[#lines + 1] = line end
  end
  return lines
end
local by_line = profile("fl")
local by_state = profile("v")

print(string.format("%s over %s (%d bytes), dist %s, %s", "usage reader JIT check", entry.name, #entry.data, dist, jit.version))
print(string.format("traces compiled: %d; aborts starting or ending in ai-gateway-shared: %d (NYI: %d)", traces, aborts, nyi))
for _, a in ipairs(listed) do print(string.format("  %4d x %s", a.count, a.where)) end
print("profile -jp=fl:")
for _, l in ipairs(by_line) do print("  " .. l) end
print("profile -jp=v:")
for _, l in ipairs(by_state) do print("  " .. l) end
print(cjson.encode({
  bench = "jit-check",
  stream = entry.name,
  dist = dist,
  jit = jit.version,
  traces = traces,
  aborts = aborts,
  nyi = nyi,
  abort_sites = listed,
  profile_fl = by_line,
  profile_v = by_state,
}))
