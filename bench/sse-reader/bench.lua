-- In-process benchmark of the shared usage reader (ai-gateway-shared/stream_usage), under LuaJIT,
-- without nginx: CPU time per event and MB/s on realistic streams, fed in 4 KiB chunks (what
-- nginx's default proxy buffers hand a body filter) and one event per chunk (a server that
-- flushes every token through an unbuffered proxy).
--
--   npx tsx bench/run.ts --write-streams /tmp/streams       # the streams and their manifest
--   luajit bench/sse-reader/bench.lua --manifest /tmp/streams/manifest.json [--dist DIR] [--smoke]
--
-- Each stream of the manifest is read once and its report checked (usage, finish reason, events,
-- text measured, framing, dialect) so a fast but wrong reader fails; then, after a warm-up,
-- rounds of repeated passes are timed with os.clock (CPU time: what the reader costs, not what
-- other processes on a shared machine take) and the best round is kept. Garbage the reader makes
-- is collected inside the rounds, so its cost counts. MB are 10^6 bytes. The last line of output
-- is one JSON object with every figure.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")

local opts = common.options(arg or {}, script_dir, { smoke = false },
  "luajit bench/sse-reader/bench.lua --manifest FILE [--dist DIR] [--smoke]")
local smoke, dist, manifest = opts.smoke, opts.dist, opts.manifest

local cjson = require("cjson.safe")
local stream_usage = require("kong.plugins.ai-gateway-shared.stream_usage")
local new_reader = stream_usage.newUsageReader

-- many short rounds: the best of them is the one least disturbed by other work on the machine
local ROUND_S = smoke and 0.01 or 0.05
local ROUNDS = smoke and 2 or 20
local WARMUP_S = smoke and 0.01 or 0.2

--- Passes over the stream for at least `seconds` of CPU time; CPU seconds per pass.
local function timed_passes(entry, chunks, n, seconds)
  local passes, t0 = 0, os.clock()
  local dt, report
  repeat
    report = common.read_once(new_reader, entry.content_type, chunks, n)
    passes = passes + 1
    dt = os.clock() - t0
  until dt >= seconds
  return dt / passes, passes, report
end

local results, failures = {}, {}
for _, entry in ipairs(common.load_manifest(manifest)) do
  for _, size in ipairs(entry.chunks) do
    local chunks, n = common.split(entry.data, size, entry.expected.framing)
    local label = entry.name .. " / " .. (size == "event" and "one event per chunk" or (size .. "-byte chunks"))
    local bad = common.mismatch(common.read_once(new_reader, entry.content_type, chunks, n), entry.expected)
    if bad then
      failures[#failures + 1] = label .. ": " .. bad
    else
      timed_passes(entry, chunks, n, WARMUP_S)
      local best, passes = math.huge, 0
      for _ = 1, ROUNDS do
        local per_pass, p, report = timed_passes(entry, chunks, n, ROUND_S)
        bad = common.mismatch(report, entry.expected)
        if bad then failures[#failures + 1] = label .. " (timed): " .. bad; break end
        passes = passes + p
        if per_pass < best then best = per_pass end
      end
      -- the reader's own count, checked above when the manifest knows it
      local events = entry.expected.events or common.read_once(new_reader, entry.content_type, chunks, n).events
      results[#results + 1] = {
        name = entry.name,
        chunks = tostring(size),
        chunk_count = n,
        bytes = #entry.data,
        events = events,
        us_per_event = best * 1e6 / events,
        mb_per_s = #entry.data / best / 1e6,
        passes = passes,
      }
      print(string.format("%-10s %-22s %8.3f us/event %9.1f MB/s  (%d chunks, %d events, best of %d rounds, %d passes)",
        entry.name, size == "event" and "one event per chunk" or (size .. "-byte chunks"),
        best * 1e6 / events, #entry.data / best / 1e6, n, events, ROUNDS, passes))
    end
  end
end

for _, f in ipairs(failures) do io.stderr:write("WRONG RESULT: " .. f .. "\n") end
print(cjson.encode({
  bench = "sse-reader",
  smoke = smoke,
  jit = jit and jit.version or "?",
  dist = dist,
  round_s = ROUND_S,
  rounds = ROUNDS,
  results = results,
  failures = failures,
}))
if #failures > 0 then os.exit(1) end
