-- What bench.lua and jit-check.lua share: the Lua path to a tree of transpiled modules, the
-- manifest of streams (written by bench/lib/streams.ts), splitting a stream into chunks, one
-- pass of the usage reader, and the check of its report against the manifest's expectation.
local M = {}

--- The command line as `defaults` says: each key an option (--key VALUE, or --key alone when its
--- default is false), with the repository's dist/ as the default --dist and --manifest required.
--- Exits 2 with `usage` on anything else.
function M.options(argv, script_dir, defaults, usage)
  local o = { dist = script_dir .. "/../../dist" }
  for k, v in pairs(defaults) do o[k] = v end
  local i = 1
  while argv[i] do
    local key = argv[i]:match("^%-%-([%w-]+)$")
    if key == nil or (o[key] == nil and key ~= "manifest") then
      io.stderr:write("usage: " .. usage .. "\n")
      os.exit(2)
    end
    if o[key] == false then
      o[key] = true
    else
      i = i + 1
      o[key] = argv[i]
    end
    i = i + 1
  end
  if not o.manifest then
    io.stderr:write("usage: " .. usage .. "\n(npx tsx bench/run.ts --write-streams DIR writes the streams and their manifest)\n")
    os.exit(2)
  end
  M.use_dist(o.dist)
  return o
end

--- Puts `dist` (a tree holding kong/plugins/...) first on package.path.
function M.use_dist(dist)
  package.path = dist .. "/?.lua;" .. dist .. "/?/init.lua;" .. package.path
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end
M.read_file = read_file

--- The manifest's entries, each with its stream read: { name, file, content_type, chunks, expected, data }.
function M.load_manifest(path)
  local cjson = require("cjson.safe")
  local text = read_file(path)
  if not text then error("cannot read the manifest " .. path .. " (write one with: npx tsx bench/run.ts --write-streams DIR)") end
  local entries = assert(cjson.decode(text), "the manifest is not JSON: " .. path)
  for _, e in ipairs(entries) do
    e.data = read_file(e.file) or error("cannot read " .. e.file)
  end
  return entries
end

--- `size`: bytes per chunk, or "event": each SSE event (up to its blank line) or NDJSON line alone.
function M.split(s, size, framing)
  local chunks, n = {}, 0
  if size == "event" then
    local sep = framing == "ndjson" and "\n" or "\n\n"
    local p = 1
    while p <= #s do
      local _, e = s:find(sep, p, true)
      e = e or #s
      n = n + 1
      chunks[n] = s:sub(p, e)
      p = e + 1
    end
  else
    for p = 1, #s, size do
      n = n + 1
      chunks[n] = s:sub(p, p + size - 1)
    end
  end
  return chunks, n
end

--- One stream through a fresh reader, as a plugin feeds it: detect, feed every chunk, finish.
function M.read_once(new_reader, content_type, chunks, n)
  local reader = new_reader()
  reader:detect(content_type)
  for k = 1, n do reader:feed(chunks[k]) end
  return reader:finish()
end

local CHECKED = {
  "prompt_tokens", "completion_tokens", "total_tokens", "events", "finish_reason", "framing", "dialect",
}

local function check(bad, report, expected, key)
  if expected[key] ~= nil and report[key] ~= expected[key] then
    bad[#bad + 1] = key .. "=" .. tostring(report[key]) .. " (want " .. tostring(expected[key]) .. ")"
  end
end

--- What differs between a report and the expectation (nil: nothing), so a fast but wrong reader fails.
function M.mismatch(report, expected)
  local bad = {}
  for _, key in ipairs(CHECKED) do check(bad, report, expected, key) end
  -- the text as this reader measures it: bytes of the JSON strings, or (older readers) characters
  if expected.text_bytes ~= nil or expected.content_chars ~= nil then
    if report.text_bytes ~= nil then check(bad, report, expected, "text_bytes")
    elseif report.content_chars ~= nil then check(bad, report, expected, "content_chars")
    else bad[#bad + 1] = "no text measure (text_bytes or content_chars) in the report" end
  end
  if not report.reported then bad[#bad + 1] = "reported=false" end
  if not report.terminated then bad[#bad + 1] = "terminated=false" end
  if #bad == 0 then return nil end
  return table.concat(bad, ", ")
end

return M
