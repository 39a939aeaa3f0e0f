local stream_usage = require("kong.plugins.ai-gateway-shared.stream_usage")
local chunking = require("chunking")
local cjson = require("cjson")

local CONTENT_TYPES = { sse = "text/event-stream", ndjson = "application/x-ndjson", json = "application/json" }

local function read(chunks, content_type, opts)
  local reader = stream_usage.newUsageReader(opts)
  if content_type ~= false then reader:detect(content_type) end
  local completed = 0
  for _, chunk in ipairs(chunks) do completed = completed + reader:feed(chunk) end
  local streamed = reader.framing
  local report = reader:finish()
  if report.framing == streamed and (streamed == "sse" or streamed == "ndjson") then
    -- feed's return values add up to the events, but for an unfinished last one read by finish
    local at_finish = report.events - completed
    assert.is_true(at_finish == 0 or (at_finish == 1 and (report.incomplete or streamed == "ndjson")))
  end
  return report
end

local function check_expected(report, expected, label)
  if expected.usage_in_stream then
    assert.is_true(report.reported, label)
    assert.are.equal(expected.usage.prompt_tokens, report.prompt_tokens, label .. " prompt")
    assert.are.equal(expected.usage.completion_tokens, report.completion_tokens, label .. " completion")
    assert.are.equal(expected.usage.total_tokens, report.total_tokens, label .. " total")
  else
    assert.is_false(report.reported, label)
    assert.is_nil(report.prompt_tokens, label)
    assert.is_nil(report.total_tokens, label)
  end
  assert.are.equal(expected.finish_reason, report.finish_reason, label .. " finish_reason")
  assert.is_true(report.terminated, label .. " terminated")
  local stream_options = expected.request and expected.request.body and expected.request.body.stream_options
  if type(stream_options) == "table" and stream_options.continuous_usage_stats then
    -- Every event carries a cumulative completion count, which covers its text: none is measured.
    assert.is_true(report.text_bytes < chunking.json_text_bytes(expected.text), label .. " text_bytes")
  else
    -- The text's bytes as the mock's encoder wrote them, measured event by event.
    assert.are.equal(chunking.json_text_bytes(expected.text), report.text_bytes, label .. " text_bytes")
  end
  assert.are.equal(expected.framing, report.framing, label)
  assert.are.equal(expected.bytes, report.bytes, label .. " bytes")
  assert.is_false(report.incomplete, label)
  assert.are.equal(0, report.oversized, label)
end

describe("usage reader over the recorded streams", function()
  local names = chunking.fixture_names()

  it("finds the recorded streams", function()
    if #names == 0 then print("spec/fixtures/streams/ has no *.expected.json: the mock LLM helper writes them") end
    assert.is_true(#names > 0)
  end)

  for _, name in ipairs(names) do
    local expected = chunking.expected(name)
    local stream = chunking.fixture(expected.file)
    local content_type = CONTENT_TYPES[expected.framing]

    it(name .. ": usage, finish reason, terminator and text as recorded, in every chunking", function()
      local whole = read({ stream }, content_type)
      check_expected(whole, expected, name .. " whole")
      assert.are.equal(expected.flavor == "anthropic" and "anthropic" or expected.flavor == "ollama" and "ollama" or "openai", whole.dialect)
      for _, v in ipairs(chunking.variants(stream)) do
        assert.are.same(whole, read(v[2], content_type), name .. " " .. v[1])
      end
      -- Without a content type the first bytes tell the framing, even one byte at a time.
      assert.are.same(whole, read(chunking.bytes(stream), false), name .. " sniffed")
    end)

    if #stream <= 20000 then
      it(name .. ": the same report when split at every byte", function()
        local whole = read({ stream }, content_type)
        chunking.each_split(stream, function(chunks, k)
          local got = read(chunks, content_type)
          if got.prompt_tokens ~= whole.prompt_tokens or got.completion_tokens ~= whole.completion_tokens
            or got.text_bytes ~= whole.text_bytes or got.events ~= whole.events
            or got.finish_reason ~= whole.finish_reason or got.terminated ~= whole.terminated then
            assert.are.same(whole, got, name .. " split at " .. k)
          end
        end)
      end)
    end
  end
end)

-- Samples written from the servers' documented stream formats (OpenAI, vLLM, SGLang, Anthropic, Ollama), independent of the mock.
local function sse_events(list, sep)
  sep = sep or "\n"
  local out = {}
  for _, e in ipairs(list) do
    if type(e) == "table" then
      out[#out + 1] = "event: " .. e[1] .. sep .. "data: " .. e[2] .. sep .. sep
    else
      out[#out + 1] = "data: " .. e .. sep .. sep
    end
  end
  return table.concat(out)
end

local function openai_chunk(delta, finish, usage)
  local json = cjson.encode({
    id = "chatcmpl-1", object = "chat.completion.chunk", created = 1, model = "m",
    choices = { { index = 0, delta = delta, finish_reason = finish or cjson.null } },
  })
  return (json:gsub("}$", ',"usage":' .. (usage or "null") .. "}"))
end

local function all_chunkings_agree(stream, content_type)
  local whole = read({ stream }, content_type)
  for _, v in ipairs(chunking.variants(stream)) do assert.are.same(whole, read(v[2], content_type), v[1]) end
  chunking.each_split(stream, function(chunks, k) assert.are.same(whole, read(chunks, content_type), "split " .. k) end)
  return whole
end

describe("usage reader on hand-written samples", function()
  it("OpenAI include_usage: usage:null chunks, the choices:[] usage chunk, [DONE]", function()
    local stream = sse_events({
      openai_chunk({ role = "assistant", content = "" }),
      openai_chunk({ content = "Hello" }),
      openai_chunk({ content = " world" }),
      openai_chunk({}, "stop"),
      '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}',
      "[DONE]",
    })
    local r = all_chunkings_agree(stream, "text/event-stream")
    assert.are.same({ 9, 2, 11, true, "stop", true, 11, 6, 2 },
      { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.reported, r.finish_reason, r.terminated, r.text_bytes, r.events, r.text_events })
  end)

  it("is not fooled by text that contains usage keys, [DONE] or a usage object", function()
    local tricky = {
      'usage', '"usage":{"prompt_tokens":999,"completion_tokens":999,"total_tokens":1998}',
      '\ndata: [DONE]\n\n', 'finish_reason": "stop', '{"done":true,"eval_count":5}', 'prompt_tokens"',
    }
    local events = { openai_chunk({ role = "assistant", content = "" }) }
    local chars = 0
    for _, t in ipairs(tricky) do
      events[#events + 1] = openai_chunk({ content = t })
      chars = chars + #cjson.encode(t) - 2 -- the text's bytes as written in the event, escapes included
    end
    events[#events + 1] = "[DONE]"
    local r = all_chunkings_agree(sse_events(events), "text/event-stream")
    assert.is_false(r.reported)
    assert.is_nil(r.prompt_tokens)
    assert.is_nil(r.finish_reason)
    assert.are.equal(chars, r.text_bytes)
    assert.are.equal(#events, r.events)
    assert.is_true(r.terminated)
  end)

  it("vLLM continuous_usage_stats: cumulative usage in every chunk, the last wins, never the sum", function()
    local events = {}
    for k = 1, 5 do
      events[#events + 1] = openai_chunk({ content = "t" .. k }, k == 5 and "length" or nil,
        '{"prompt_tokens":7,"total_tokens":' .. (7 + k) .. ',"completion_tokens":' .. k .. "}")
    end
    events[#events + 1] = '{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":7,"total_tokens":12,"completion_tokens":5}}'
    events[#events + 1] = "[DONE]"
    local r = all_chunkings_agree(sse_events(events), "text/event-stream")
    assert.are.same({ 7, 5, 12, "length" }, { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason })
  end)

  it("Anthropic: prompt = input + cache creation + cache read; completion = the last output_tokens", function()
    local stream = sse_events({
      { "message_start", '{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude", "stop_reason": null, "usage": {"input_tokens": 25, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 100, "output_tokens": 1}}}' },
      { "content_block_start", '{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}' },
      { "ping", '{"type": "ping"}' },
      { "content_block_delta", '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi \\"there\\" 模型"}}' },
      { "content_block_stop", '{"type": "content_block_stop", "index": 0}' },
      { "message_delta", '{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}' },
      { "message_stop", '{"type": "message_stop"}' },
    }, "\r\n")
    local r = all_chunkings_agree(stream, "text/event-stream")
    assert.are.same({ 128, 15, 143, "stop", true, "anthropic", 19, 1 },
      { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason, r.terminated, r.dialect, r.text_bytes, r.text_events })
    assert.are.equal("end_turn", r.stop_reason)
    -- 19 = the bytes of the text as the event writes it: Hi \"there\" 模型
  end)

  it("Anthropic without message_stop is not terminated; an error event is flagged", function()
    local stream = sse_events({
      { "message_start", '{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}' },
      { "content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ab"}}' },
      { "error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' },
    })
    local r = read({ stream }, "text/event-stream")
    assert.is_false(r.terminated)
    assert.is_true(r.error)
    assert.are.same({ 5, 1, 2 }, { r.prompt_tokens, r.completion_tokens, r.text_bytes })
  end)

  it("OpenAI tool calls and reasoning count as generated text", function()
    local stream = sse_events({
      openai_chunk({ role = "assistant", content = cjson.null, tool_calls = { { index = 0, id = "call_1", type = "function", ["function"] = { name = "f", arguments = "" } } } }),
      openai_chunk({ tool_calls = { { index = 0, ["function"] = { arguments = '{"city":' } } } }),
      openai_chunk({ tool_calls = { { index = 0, ["function"] = { arguments = '"Paris"}' } } } }),
      openai_chunk({ reasoning_content = "think" }),
      openai_chunk({}, "tool_calls"),
      "[DONE]",
    })
    local r = all_chunkings_agree(stream, "text/event-stream")
    assert.are.equal(10 + 10 + 5, r.text_bytes) -- the arguments' quotes are escaped in the event
    assert.are.equal("tool_calls", r.finish_reason)
  end)

  it("legacy completions count choices[].text", function()
    local stream = sse_events({
      '{"id":"c","object":"text_completion","choices":[{"text":"abc","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}',
      '{"id":"c","object":"text_completion","choices":[{"text":"de","index":0,"logprobs":null,"finish_reason":"length"}],"model":"m"}',
      "[DONE]",
    })
    local r = read({ stream }, "text/event-stream")
    assert.are.equal(5, r.text_bytes)
    assert.are.equal("length", r.finish_reason)
  end)

  it("OpenAI Responses API: output_text deltas and the usage of response.completed", function()
    local stream = sse_events({
      { "response.created", '{"type":"response.created","response":{"id":"r","status":"in_progress","usage":null}}' },
      { "response.output_text.delta", '{"type":"response.output_text.delta","item_id":"i","output_index":0,"content_index":0,"delta":"Hel"}' },
      { "response.output_text.delta", '{"type":"response.output_text.delta","item_id":"i","output_index":0,"content_index":0,"delta":"lo"}' },
      { "response.completed", '{"type":"response.completed","response":{"id":"r","status":"completed","usage":{"input_tokens":4,"output_tokens":2,"total_tokens":6}}}' },
    })
    local r = all_chunkings_agree(stream, "text/event-stream")
    assert.are.same({ "responses", 4, 2, 6, 5, true }, { r.dialect, r.prompt_tokens, r.completion_tokens, r.total_tokens, r.text_bytes, r.terminated })
  end)

  it("an unterminated OpenAI stream (upstream died) reports what it saw", function()
    local stream = sse_events({ openai_chunk({ content = "abcd" }), openai_chunk({ content = "efgh" }) }) .. 'data: {"id":"chatcmpl-1","cho'
    local r = read(chunking.fixed(stream, 10), "text/event-stream")
    assert.is_false(r.terminated)
    assert.is_true(r.incomplete)
    assert.is_false(r.reported)
    assert.are.equal(8, r.text_bytes)
    -- The cut event is read too (it carries nothing readable), and the report says it was cut.
    assert.are.equal(3, r.events)
  end)

  it("a stream cut right after data: [DONE] (no blank line) still shows its terminator", function()
    for _, ending in ipairs({ "data: [DONE]\n", "data: [DONE]" }) do
      local stream = sse_events({ openai_chunk({ content = "ab" }, "stop") }) .. ending
      local r = read(chunking.fixed(stream, 5), "text/event-stream")
      assert.is_true(r.terminated, ending)
      assert.is_true(r.incomplete, ending)
      assert.are.equal("stop", r.finish_reason)
    end
  end)

  it("counts keep-alive comments and reads CR-only streams", function()
    local stream = ": ping\r\r" .. sse_events({ openai_chunk({ content = "x" }), "[DONE]" }, "\r")
    local r = all_chunkings_agree(stream, "text/event-stream")
    assert.are.same({ 1, 2, 1, true }, { r.comments, r.events, r.text_bytes, r.terminated })
  end)

  it("Ollama NDJSON: prompt_eval_count and eval_count on the done:true line, CRLF too", function()
    local lines = {
      '{"model":"llama3","created_at":"t","message":{"role":"assistant","content":"The"},"done":false}',
      '{"model":"llama3","created_at":"t","message":{"role":"assistant","content":" sky \\u00e9"},"done":false}',
      '{"model":"llama3","created_at":"t","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"prompt_eval_count":26,"eval_count":2}',
    }
    for _, sep in ipairs({ "\n", "\r\n" }) do
      local r = all_chunkings_agree(table.concat(lines, sep) .. sep, "application/x-ndjson")
      assert.are.same({ 26, 2, 28, "stop", true, 3, 14, "ollama" }, -- "The", then " sky \u00e9" as written
        { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason, r.terminated, r.events, r.text_bytes, r.dialect })
    end
  end)

  it("Ollama generate: the response field is the text", function()
    local body = '{"model":"m","response":"Hi","done":false}\n{"model":"m","response":"","done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1}\n'
    local r = read({ body }, "application/x-ndjson")
    assert.are.same({ 3, 1, 2, true }, { r.prompt_tokens, r.completion_tokens, r.text_bytes, r.terminated })
  end)
end)

describe("usage reader on JSON bodies", function()
  local openai_body = '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It says \\"usage\\": 5 模型"},"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":7,"total_tokens":20}}'

  it("reads usage, finish reason and text of an OpenAI body in any chunking", function()
    local r = all_chunkings_agree(openai_body, "application/json")
    assert.are.same({ 13, 7, 20, "stop", true, 1, 25, "json" },
      { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason, r.terminated, r.events, r.text_bytes, r.framing })
    -- 25 = the bytes of the decoded text: It says "usage": 5 模型
  end)

  it("reads an Anthropic body (cache tokens count as prompt)", function()
    local body = '{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hello!"}],"model":"claude","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":3}}'
    local r = read(chunking.fixed(body, 17), "application/json")
    assert.are.same({ 15, 3, 18, "stop", "end_turn", 6, "anthropic" }, { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason, r.stop_reason, r.text_bytes, r.dialect })
  end)

  it("reads an Ollama body and an embeddings body", function()
    local r = read({ '{"model":"m","message":{"role":"assistant","content":"ok"},"done":true,"done_reason":"stop","prompt_eval_count":4,"eval_count":1}' }, "application/json")
    assert.are.same({ 4, 1, 5, "stop", 2 }, { r.prompt_tokens, r.completion_tokens, r.total_tokens, r.finish_reason, r.text_bytes })
    local e = read({ '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}' }, "application/json")
    assert.are.same({ 8, 8, true }, { e.prompt_tokens, e.total_tokens, e.reported })
  end)

  it("an error body is flagged, a truncated body is incomplete and not terminated", function()
    local r = read({ '{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}' }, "application/json")
    assert.is_true(r.error)
    assert.is_false(r.reported)
    local t = read({ openai_body:sub(1, 100) }, "application/json")
    assert.is_false(t.terminated)
    assert.is_true(t.incomplete)
  end)

  it("reads NDJSON that was labelled application/json", function()
    local body = '{"message":{"content":"a"},"done":false}\n{"message":{"content":""},"done":true,"prompt_eval_count":2,"eval_count":1}\n'
    local r = read({ body }, "application/json")
    assert.are.same({ 2, 1, 1, true }, { r.prompt_tokens, r.completion_tokens, r.text_bytes, r.terminated })
  end)

  it("a body over the cap is read from its last bytes in bounded memory", function()
    local embeddings = {}
    for k = 1, 20000 do embeddings[k] = "0.123456789" end
    local body = '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[' .. table.concat(embeddings, ",")
      .. ']}],"model":"m","usage":{"prompt_tokens":42,"total_tokens":42,"details":{"x":"}"}}}'
    assert.is_true(#body > 200000)
    local reader = stream_usage.newUsageReader({ maxJsonBytes = 64 * 1024 })
    reader:detect("application/json")
    local peak = 0
    for _, chunk in ipairs(chunking.fixed(body, 1000)) do
      reader:feed(chunk)
      if reader.bufferedBytes > peak then peak = reader.bufferedBytes end
    end
    local r = reader:finish()
    assert.are.same({ 42, 42, true, 1, true }, { r.prompt_tokens, r.total_tokens, r.reported, r.oversized, r.terminated })
    assert.is_true(peak <= 2 * stream_usage.JSON_WINDOW_BYTES + 1000, "held " .. peak)
  end)

  it("a body over the cap whose usage lies before the window reports none", function()
    local filler = string.rep("x", 300000)
    local body = '{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"choices":[{"message":{"content":"' .. filler .. '"},"finish_reason":"stop"}]}'
    local r = read(chunking.fixed(body, 4096), "application/json", { maxJsonBytes = 1024 })
    assert.is_false(r.reported)
    assert.are.equal("stop", r.finish_reason)
    -- Its text could not be measured: every byte counts (an upper bound, never free).
    assert.are.equal(#body, r.text_bytes)
  end)
end)

describe("format detection", function()
  it("from the content type", function()
    assert.are.equal("sse", stream_usage.detectFraming("auto", "text/event-stream; charset=utf-8"))
    assert.are.equal("ndjson", stream_usage.detectFraming("auto", "application/x-ndjson"))
    assert.are.equal("json", stream_usage.detectFraming("auto", "application/json"))
    assert.are.equal("none", stream_usage.detectFraming("auto", "text/plain"))
    assert.are.equal("none", stream_usage.detectFraming("auto", "text/event-stream", nil, "gzip"))
    assert.are.equal("sse", stream_usage.detectFraming("auto", "TEXT/EVENT-STREAM", nil, "identity"))
  end)

  it("the configuration overrides the content type", function()
    assert.are.equal("sse", stream_usage.detectFraming("openai", "application/json"))
    assert.are.equal("sse", stream_usage.detectFraming("anthropic", nil))
    assert.are.equal("ndjson", stream_usage.detectFraming("ollama", "text/event-stream"))
    assert.are.equal("json", stream_usage.detectFraming("json", "text/event-stream"))
  end)

  it("from the first bytes when the content type says nothing", function()
    assert.are.equal("sse", stream_usage.detectFraming("auto", nil, "data: {}"))
    assert.are.equal("sse", stream_usage.detectFraming("auto", "text/plain", "event: x\n"))
    assert.are.equal("sse", stream_usage.detectFraming("auto", nil, ": ping\n"))
    assert.are.equal("json", stream_usage.detectFraming("auto", nil, '  {"a":1}'))
    assert.are.equal("none", stream_usage.detectFraming("auto", nil, "\31\139\8\0"))
    assert.are.equal("none", stream_usage.detectFraming("auto", nil, "<html>"))
    assert.is_nil(stream_usage.sniffFraming("da", false))
    assert.are.equal("none", stream_usage.sniffFraming("da", true))
  end)

  it("a gzip body is not read (and not mistaken for anything)", function()
    local reader = stream_usage.newUsageReader()
    reader:detect("text/event-stream", nil, "gzip")
    reader:feed("\31\139\8\0\0\0\0\0")
    local r = reader:finish()
    assert.are.same({ "none", 0, false, 8 }, { r.framing, r.events, r.reported, r.bytes })
  end)

  it("the configured dialect applies from the first event", function()
    local r = read({ 'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"abc"}}\n\n' }, false, "anthropic")
    assert.are.same({ "anthropic", 3 }, { r.dialect, r.text_bytes })
  end)
end)

describe("usage reader memory", function()
  it("holds at most the event cap while a 10 MB event without newline streams in", function()
    local reader = stream_usage.newUsageReader({ maxEventBytes = 256 * 1024 })
    reader:detect("text/event-stream")
    reader:feed("data: ")
    local chunk = string.rep("q", 16 * 1024)
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local peak = 0
    for _ = 1, 640 do
      reader:feed(chunk)
      if reader.bufferedBytes > peak then peak = reader.bufferedBytes end
    end
    collectgarbage()
    local grown = collectgarbage("count") - before
    reader:feed("\n\n" .. sse_events({ openai_chunk({ content = "ok" }), "[DONE]" }))
    local r = reader:finish()
    assert.is_true(peak <= 256 * 1024, "held " .. peak)
    assert.is_true(grown < 1024, "heap grew by " .. grown .. " KB")
    assert.are.same({ 1, 2, true, 10 * 1024 * 1024 }, { r.oversized, r.text_bytes, r.terminated, r.bytes - 6 - 2 - #sse_events({ openai_chunk({ content = "ok" }), "[DONE]" }) })
  end)
end)
