-- Does the usage reader's hot path compile? Runs the reader over one stream of the manifest (4 KiB
-- chunks, then one event per chunk) with LuaJIT's trace dump on (what `luajit -jv` prints), then
-- under the sampling profiler (`luajit -jp=fl`, and `-jp=v` for the share of time spent
-- compiled, interpreted, in C or in the GC), and reports the trace aborts that stop in the shared
-- library's modules (the reader and what it calls), NYI among them.
--
--   luajit bench/sse-reader/jit-check.lua --manifest FILE [--dist DIR] [--stream openai] [--seconds 2]
--                                         [--stage all|dump|fl|v]
--
-- --stage runs one part alone (the harness runs each in its own process with a time limit: this
-- LuaJIT's profiler now and then never returns). The last line of output is one JSON object:
-- traces, aborts (grouped by location and reason), NYI count, the profiles' top lines. Exit 0
-- whatever it finds (the harness judges); exit 1 only when the reader's report is wrong.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")

local opts = common.options(arg or {}, script_dir, { stream = "openai", seconds = "2", stage = "all" },
  "luajit bench/sse-reader/jit-check.lua --manifest FILE [--dist DIR] [--stream NAME] [--seconds S] [--stage all|dump|fl|v]")
local dist, manifest, stream, seconds, only = opts.dist, opts.manifest, opts.stream, tonumber(opts.seconds), opts.stage
if not seconds or not ({ all = true, dump = true, fl = true, v = true })[only] then
  io.stderr:write("jit-check.lua: --seconds takes a number, --stage one of all, dump, fl, v\n")
  os.exit(2)
end

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
-- An abort belongs to the reader when the trace stopped in its code (or, without a separate
-- stop location, started there); one that stopped in this harness's loop is the harness's.
local inputs = {}
for _, size in ipairs({ 4096, "event" }) do
  local chunks, n = common.split(entry.data, size, entry.expected.framing)
  inputs[#inputs + 1] = { chunks = chunks, n = n }
end

local function check(report)
  local bad = common.mismatch(report, entry.expected)
  if bad then
    io.stderr:write("WRONG RESULT: " .. bad .. "\n")
    os.exit(1)
  end
end

-- Only the reader's calls in the loop, checked at the end of each input: the harness's own
-- code stays out of the traces being judged.
local function workload(s)
  for _, input in ipairs(inputs) do
    local read_once, content_type, chunks, n = common.read_once, entry.content_type, input.chunks, input.n
    local t0 = os.clock()
    local report
    repeat
      report = read_once(new_reader, content_type, chunks, n)
    until os.clock() - t0 >= s / #inputs
    check(report)
  end
end

-- 1. trace dump, from a cold start of the reader's code
local function trace_dump()
  require("jit.v").on(tmp)
  workload(seconds)
  require("jit.v").off()
  local traces, aborts, groups, order = 0, 0, {}, {}
  for line in slurp(tmp):gmatch("[^\n]+") do
    if line:match("^%[TRACE%s+%d+ ") then
      traces = traces + 1
    else
      -- [TRACE --- (parent/exit) start -- reason at location]
      local start, rest = line:match("^%[TRACE %-%-%- (.-) %-%- (.*)%]$")
      if start then
        local reason, at = rest:match("^(.-) at (%S+)$")
        reason = reason or rest
        if is_own(at or start:match("(%S+)$")) then
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
  -- NYI: code the JIT cannot compile; blacklisted: given up on; loop structure: a root trace
  -- met an inner loop or left its loop, which then gets a trace of its own
  local nyi, blacklisted, loops, listed = 0, 0, 0, {}
  for _, key in ipairs(order) do
    if key:find("NYI", 1, true) then nyi = nyi + groups[key] end
    if key:find("blacklisted", 1, true) then blacklisted = blacklisted + groups[key] end
    if key:find(" loop in root trace", 1, true) then loops = loops + groups[key] end
    listed[#listed + 1] = { where = key, count = groups[key] }
  end
  table.sort(listed, function(a, b) return a.count > b.count end)
  return { traces = traces, aborts = aborts, nyi = nyi, blacklisted = blacklisted, loop_structure = loops, abort_sites = listed }
end

-- 2. profiles of the warm reader
local warm = false
local function profile(mode)
  if not warm then
    workload(seconds / 2)
    warm = true
  end
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

local result = { bench = "jit-check", stream = entry.name, dist = dist, jit = jit.version }
print(string.format("usage reader JIT check over %s (%d bytes), dist %s, %s", entry.name, #entry.data, dist, jit.version))
if only == "all" or only == "dump" then
  local d = trace_dump()
  for k, v in pairs(d) do result[k] = v end
  print(string.format("traces compiled: %d; aborts in ai-gateway-shared: %d (NYI %d, blacklisted %d, inner or leaving loop in root trace %d)",
    d.traces, d.aborts, d.nyi, d.blacklisted, d.loop_structure))
  for _, a in ipairs(d.abort_sites) do print(string.format("  %4d x %s", a.count, a.where)) end
end
for _, mode in ipairs({ "fl", "v" }) do
  if only == "all" or only == mode then
    result["profile_" .. mode] = profile(mode)
    print("profile -jp=" .. mode .. ":")
    for _, l in ipairs(result["profile_" .. mode]) do print("  " .. l) end
  end
end
print(cjson.encode(result))
