-- Micro-benchmark of the shared usage reader (issue 10 item 4): MB/s over a 1 MB OpenAI-style
-- stream split into 1-byte, 64-byte and 16 KiB chunks, under LuaJIT, without nginx.
--
--   make lua && luajit bench/sse-reader/bench.lua [--smoke] [--file STREAM.sse]
--
-- The stream is the recorded spec/fixtures/streams/openai-1mb.sse (the mock LLM's), or one
-- generated in memory (--generate, deterministic, with adversarial text: the word "usage",
-- escaped quotes, "prompt_tokens", CJK and emoji), or --file. Every run checks what the reader
-- found (usage, finish reason, terminator, characters of text, and events for the generated
-- stream) against the .expected.json sidecar or the generator, so a fast but wrong reader fails.
-- --smoke: a 64 KiB generated stream and short rounds (a few seconds), for make test.
-- The last line of output is one JSON object with MB/s per chunk size.

local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = script_dir .. "/../.."
-- --dist DIR: read the transpiled modules from another tree than the repository's dist/.
local dist = root .. "/dist"
for k = 1, #(arg or {}) do if arg[k] == "--dist" then dist = arg[k + 1] end end
package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path

local cjson = require("cjson.safe")
local stream_usage = require("kong.plugins.ai-gateway-shared.stream_usage")

local smoke, file, only, generated = false, nil, nil, false
local i = 1
while arg and arg[i] do
  if arg[i] == "--smoke" then smoke = true
  elseif arg[i] == "--file" then i = i + 1; file = arg[i]
  elseif arg[i] == "--only" then i = i + 1; only = tonumber(arg[i])
  elseif arg[i] == "--generate" then generated = true
  elseif arg[i] == "--dist" then i = i + 1
  else io.stderr:write("usage: luajit bench/sse-reader/bench.lua [--smoke] [--generate | --file STREAM.sse] [--only CHUNK_SIZE] [--dist DIR]\n"); os.exit(2) end
  i = i + 1
end

local function utf8_chars(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

-- Words like a chat answer: mostly ASCII, some accents, CJK and emoji, JSON escapes, and the
-- word "usage" inside the text (which must not be taken for the usage field).
local WORDS = {
  " the", " model", " streams", " tokens", " as", " they", " are", " generated", ",", ".",
  " usage", " \\\"usage\\\":", " prompt_tokens", " café", " naïve", " 東京", " 🚀", "\\n", " data:", " [DONE]",
}
local WORD_CHARS = {}
for k, w in ipairs(WORDS) do
  -- characters after JSON unescaping: \" and \n are one character each
  WORD_CHARS[k] = utf8_chars((w:gsub("\\\\\"", "\""):gsub("\\n", "\n")))
end

local function generate(target_bytes)
  local parts, n, chars, events = {}, 0, 0, 0
  local seed = 12345
  local function rnd(m) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % m + 1 end
  local head = '{"id":"chatcmpl-9xYzAbCdEfGhIjKlMnOpQrStUv","object":"chat.completion.chunk","created":1726000000,'
    .. '"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0123456789","choices":[{"index":0,"delta":'
  local size = 0
  local function add(s) n = n + 1; parts[n] = s; size = size + #s; events = events + 1 end
  add("data: " .. head .. '{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n')
  while size < target_bytes - 600 do
    local k = rnd(#WORDS)
    chars = chars + WORD_CHARS[k]
    add("data: " .. head .. '{"content":"' .. WORDS[k] .. '"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n')
    if rnd(50) == 1 then n = n + 1; parts[n] = ": keep-alive\n\n"; size = size + 14 end
  end
  add("data: " .. head .. '{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n')
  local completion = events - 2
  add('data: {"id":"chatcmpl-9xYzAbCdEfGhIjKlMnOpQrStUv","object":"chat.completion.chunk","created":1726000000,'
    .. '"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0123456789","choices":[],"usage":{"prompt_tokens":1234,'
    .. '"completion_tokens":' .. completion .. ',"total_tokens":' .. (1234 + completion)
    .. ',"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n')
  add("data: [DONE]\n\n")
  return table.concat(parts), {
    prompt_tokens = 1234, completion_tokens = completion, total_tokens = 1234 + completion,
    events = events, content_chars = chars, finish_reason = "stop",
  }
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

-- The expected result of a recorded stream, from its .expected.json sidecar (spec/fixtures/streams/).
local function expected_of(path)
  local sidecar = read_file((path:gsub("%.[^./]*$", "")) .. ".expected.json")
  local e = sidecar and cjson.decode(sidecar)
  if not e then return nil end
  return {
    prompt_tokens = e.usage.prompt_tokens, completion_tokens = e.usage.completion_tokens,
    total_tokens = e.usage.total_tokens, content_chars = utf8_chars(e.text), finish_reason = e.finish_reason,
  }
end

local RECORDED = root .. "/spec/fixtures/streams/openai-1mb.sse"
local stream, expected, source
if file then
  stream = assert(read_file(file), "cannot read " .. file)
  expected, source = expected_of(file), file
elseif not generated and not smoke and read_file(RECORDED) then
  stream, expected, source = read_file(RECORDED), expected_of(RECORDED), "spec/fixtures/streams/openai-1mb.sse"
else
  stream, expected = generate(smoke and 64 * 1024 or 1024 * 1024)
  source = "generated OpenAI stream"
end

local function split(s, size)
  local chunks, n = {}, 0
  for p = 1, #s, size do n = n + 1; chunks[n] = s:sub(p, p + size - 1) end
  return chunks, n
end

local function run_once(chunks, n)
  local reader = stream_usage.newUsageReader()
  reader:detect("text/event-stream")
  for k = 1, n do reader:feed(chunks[k]) end
  return reader:finish()
end

local function check(report, size)
  if not expected then return end
  local bad = {}
  for _, key in ipairs({ "prompt_tokens", "completion_tokens", "total_tokens", "events", "content_chars", "finish_reason" }) do
    if expected[key] ~= nil and report[key] ~= expected[key] then bad[#bad + 1] = key .. "=" .. tostring(report[key]) .. " (want " .. tostring(expected[key]) .. ")" end
  end
  if not report.reported or not report.terminated then bad[#bad + 1] = "reported/terminated false" end
  if #bad > 0 then
    io.stderr:write("WRONG RESULT with " .. size .. "-byte chunks: " .. table.concat(bad, ", ") .. "\n")
    os.exit(1)
  end
end

local results, rows = {}, {}
local mb = #stream / (1024 * 1024)
for _, size in ipairs(only and { only } or { 16384, 64, 1 }) do
  local chunks, n = split(stream, size)
  check(run_once(chunks, n), size) -- also warms the JIT
  -- Repeat until enough time has passed for a stable figure; keep the best round.
  local min_time = smoke and 0.05 or (size == 1 and 1.0 or 0.5)
  local best, total, rounds = math.huge, 0, 0
  repeat
    collectgarbage()
    local t0 = os.clock()
    run_once(chunks, n)
    local dt = os.clock() - t0
    total, rounds = total + dt, rounds + 1
    if dt < best then best = dt end
  until total >= min_time and rounds >= 3
  local rate = mb / math.max(best, 1e-6)
  results[tostring(size)] = math.floor(rate * 10 + 0.5) / 10
  rows[#rows + 1] = string.format("%8d-byte chunks: %8.1f MB/s  (%d chunks, best of %d rounds)", size, rate, n, rounds)
end

-- Memory held by one reader in the middle of a stream (the unfinished event only).
local reader = stream_usage.newUsageReader()
reader:detect("text/event-stream")
reader:feed(stream:sub(1, math.floor(#stream / 2)))
local held = reader.bufferedBytes

print(string.format("SSE usage reader over %.2f MB (%s), %s", mb, source, jit and jit.version or "?"))
for _, row in ipairs(rows) do print(row) end
print(cjson.encode({
  bench = "sse-reader", smoke = smoke, source = source, bytes = #stream, target_mb_per_s_16k = 200,
  mb_per_s = results, meets_target = results["16384"] and results["16384"] >= 200, held_bytes_mid_stream = held,
}))
