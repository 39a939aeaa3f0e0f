-- The record (schema_version 1), the $upstream_* parsing, tokens, and which records are written.
local cjson = require("cjson")
local record = require("kong.plugins.upstream-disconnect-log.record")
local upstream_vars = require("kong.plugins.upstream-disconnect-log.upstream_vars")
local tokens = require("kong.plugins.ai-gateway-shared.tokens")
local stream_usage = require("kong.plugins.ai-gateway-shared.stream_usage")

local function input(over)
  local r = {
    outcome = "client_abort",
    reason = "client_closed_mid_response",
    startedMs = 1700000000123,
    endedMs = 1700000001623.4,
    headersAtMs = 1700000000127,
    firstDataAtMs = 1700000000330,
    lastDataAtMs = 1700000001500,
    status = 200,
    upstreamStatus = 200,
    upstreamAddr = "127.0.0.1:9000",
    upstreamTries = 1,
    kind = "sse",
    contentType = "text/event-stream",
    bytesToClient = 1707,
    bytesFromUpstream = 1997,
    events = 6,
    finishReason = nil,
    tokens = { prompt = 14, completion = 5, total = 19, estimated = true, source = "estimate" },
    route = { id = "r-1", name = "llm" },
    service = { id = "s-1", name = "mock" },
    consumerId = "c-1",
    requestId = "abc",
    method = "POST",
    path = "/llm/v1/chat/completions",
  }
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

-- A copy of `t` without `keys`, with `set` applied.
local function without(t, keys, set)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for _, k in ipairs(keys) do out[k] = nil end
  for k, v in pairs(set or {}) do out[k] = v end
  return out
end

describe("record", function()
  it("isoTime writes UTC with milliseconds", function()
    assert.equal("2023-11-14T22:13:20.123Z", record.isoTime(1700000000123))
    assert.equal("1970-01-01T00:00:00.000Z", record.isoTime(0))
    assert.equal("2023-11-14T22:13:21.000Z", record.isoTime(1700000000999.7))
  end)

  it("buildRecord sets every schema field from its input", function()
    local r = record.buildRecord(input())
    assert.same({
      schema_version = 1,
      outcome = "client_abort",
      reason = "client_closed_mid_response",
      started_at = "2023-11-14T22:13:20.123Z",
      ended_at = "2023-11-14T22:13:21.623Z",
      duration_ms = 1500,
      ttfb_ms = 4,
      time_to_first_data_ms = 207,
      idle_before_end_ms = 123,
      status = 200,
      upstream_status = 200,
      upstream_addr = "127.0.0.1:9000",
      upstream_tries = 1,
      kind = "sse",
      content_type = "text/event-stream",
      bytes_to_client = 1707,
      bytes_from_upstream = 1997,
      sse_events = 6,
      tokens = { prompt = 14, completion = 5, total = 19, estimated = true, source = "estimate" },
      route = { id = "r-1", name = "llm" },
      service = { id = "s-1", name = "mock" },
      consumer_id = "c-1",
      request_id = "abc",
      method = "POST",
      path = "/llm/v1/chat/completions",
    }, r)
  end)

  it("leaves out what is unknown: no headers, no data, no upstream try", function()
    local r = record.buildRecord(without(input(), { "headersAtMs", "firstDataAtMs", "lastDataAtMs", "upstreamStatus",
      "upstreamAddr", "route", "service", "consumerId", "requestId", "contentType" }, { upstreamTries = 0 }))
    for _, k in ipairs({ "ttfb_ms", "time_to_first_data_ms", "idle_before_end_ms", "upstream_status", "upstream_addr",
      "upstream_tries", "route", "service", "consumer_id", "request_id", "content_type", "last_finish_reason", "websocket" }) do
      assert.is_nil(r[k], k)
    end
    assert.equal(1500, r.duration_ms)
    assert.equal("client_abort", r.outcome)
  end)

  it("idle_before_end_ms counts from the headers when no body byte came", function()
    local r = record.buildRecord(without(input(), { "lastDataAtMs", "firstDataAtMs" }))
    assert.equal(1496, r.idle_before_end_ms)
    assert.is_nil(r.time_to_first_data_ms)
  end)

  it("never reports negative durations", function()
    local i = input({ endedMs = 1700000000100 })
    i.lastDataAtMs = nil
    local r = record.buildRecord(i)
    assert.equal(0, r.duration_ms)
    assert.equal(0, r.idle_before_end_ms)
  end)

  describe("recordPath", function()
    it("drops the query unless asked", function()
      assert.equal("/v1/chat/completions", record.recordPath("/v1/chat/completions?apikey=secret&x=1", false))
      assert.equal("/v1/a", record.recordPath("/v1/a", true))
      assert.equal("/v1/a", record.recordPath("/v1/a?", true))
      assert.equal("", record.recordPath(nil, false))
    end)

    it("keeps the query when asked, with credential-like values redacted", function()
      assert.equal("/v1/a?apikey=REDACTED&x=1&api_key=REDACTED&Token=REDACTED&sig=REDACTED&stream=true",
        record.recordPath("/v1/a?apikey=sk-123&x=1&api_key=k&Token=t&sig=abc&stream=true", true))
      assert.equal("/p?password=REDACTED&flag", record.recordPath("/p?password=hunter2&flag", true))
    end)

    it("clips long paths so the log line stays whole (nginx cuts lines at 2048 bytes)", function()
      local long = "/" .. string.rep("a", 5000)
      assert.equal(record.MAX_PATH_BYTES, #record.recordPath(long, false))
    end)
  end)

  it("methodOf reads the request line (an error page turns the method into GET)", function()
    assert.equal("POST", record.methodOf("POST /v1/chat/completions HTTP/1.1"))
    assert.equal("GET", record.methodOf("GET / HTTP/1.1"))
    assert.is_nil(record.methodOf(nil))
    assert.is_nil(record.methodOf("garbage"))
  end)

  it("a WebSocket record has no idle time (frames do not pass the body filter)", function()
    local r = record.buildRecord(input({ kind = "websocket" }))
    assert.is_nil(r.idle_before_end_ms)
    assert.equal(4, r.ttfb_ms)
  end)

  it("namedEntity keeps id and a string name only", function()
    assert.same({ id = "1", name = "n" }, record.namedEntity({ id = "1", name = "n", host = "x" }))
    assert.same({ id = "1" }, record.namedEntity({ id = "1", name = cjson.null }))
    assert.is_nil(record.namedEntity(nil))
    assert.is_nil(record.namedEntity({ name = "no id" }))
  end)

  it("a record with the longest path still fits an nginx error-log line", function()
    local i = input({ path = "/" .. string.rep("p", record.MAX_PATH_BYTES - 1), upstreamAddr = "[2001:db8::1]:65535" })
    i.route = { id = "00000000-0000-0000-0000-000000000000", name = string.rep("r", 128) }
    i.service = { id = "00000000-0000-0000-0000-000000000000", name = string.rep("s", 128) }
    i.consumerId = "00000000-0000-0000-0000-000000000000"
    i.requestId = string.rep("f", 32)
    i.finishReason = "content_filter"
    i.websocket = { closed_by = "unknown", client_to_upstream_bytes = 1e12, upstream_to_client_bytes = 1e12 }
    local line = record.logLine(record.buildRecord(i))
    -- what nginx and Kong put before the message: time, level, pid, connection, Kong's prefix
    local prefix = "2025/01/01 00:00:00 [warn] 12345#12345: *1234567 [kong] handler.lua:123 [upstream-disconnect-log] "
    assert.is_true(#prefix + #line < 2048 - 200, "line too long: " .. #line)
  end)
end)

describe("upstream_vars", function()
  it("splits tries and redirect groups, keeping addresses whole", function()
    assert.same({ "502", "502", "200" }, upstream_vars.upstreamList("502, 502 : 200"))
    assert.same({ "127.0.0.1:80", "[::1]:8080", "unix:/tmp/s.sock" }, upstream_vars.upstreamList("127.0.0.1:80, [::1]:8080 : unix:/tmp/s.sock"))
    assert.same({}, upstream_vars.upstreamList(nil))
    assert.same({}, upstream_vars.upstreamList(""))
  end)

  it("observed: connect refused (no connection, no header)", function()
    local f = upstream_vars.upstreamSide({
      addr = "127.0.0.1:39029", status = "502", connect_time = "-", header_time = "-",
      response_time = "0.000", bytes_received = "0", bytes_sent = "0",
    })
    assert.same({
      attempted = true, tries = 1, addr = "127.0.0.1:39029", status = 502, connected = false, headerReceived = false,
      responseMs = 0, bytesReceived = 0, lastBytesReceived = 0, bytesSent = 0,
    }, f)
  end)

  it("observed: a streamed answer", function()
    local f = upstream_vars.upstreamSide({
      addr = "127.0.0.1:41615", status = "200", connect_time = "0.006", header_time = "0.034",
      response_time = "0.036", bytes_received = "12331", bytes_sent = "496",
    })
    assert.is_true(f.connected)
    assert.is_true(f.headerReceived)
    assert.equal(6, f.connectMs)
    assert.equal(34, f.headerMs)
    assert.equal(36, f.responseMs)
    assert.equal(12331, f.bytesReceived)
    assert.equal(496, f.bytesSent)
  end)

  it("retries: the last try decides, bytes are summed", function()
    local f = upstream_vars.upstreamSide({
      addr = "10.0.0.1:80, 10.0.0.2:80", status = "502, 200", connect_time = "-, 0.001",
      header_time = "-, 0.010", bytes_received = "0, 500", bytes_sent = "0, 300",
    })
    assert.equal(2, f.tries)
    assert.equal("10.0.0.2:80", f.addr)
    assert.equal(200, f.status)
    assert.is_true(f.connected)
    assert.equal(500, f.bytesReceived)
    assert.equal(500, f.lastBytesReceived)
  end)

  it("no upstream try at all", function()
    local f = upstream_vars.upstreamSide({})
    assert.is_false(f.attempted)
    assert.equal(0, f.tries)
    assert.is_nil(f.status)
    assert.is_false(f.connected)
    assert.equal(0, f.bytesReceived)
  end)
end)

describe("tokens", function()
  local function report(body, ct)
    local r = stream_usage.newUsageReader()
    r:detect(ct or "text/event-stream")
    r:feed(body)
    return r:finish()
  end
  local prompt_calls
  local function estimate()
    prompt_calls = prompt_calls + 1
    return 42
  end
  before_each(function() prompt_calls = 0 end)

  it("reported usage is taken as is, and the request body is not read", function()
    local rep = report('data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n' ..
      'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\ndata: [DONE]\n\n')
    assert.same({ prompt = 7, completion = 3, total = 10, estimated = false, source = "usage" },
      tokens.tokensOf({ exited = false, upstreamStatus = 200, report = rep, promptEstimate = estimate }))
    assert.equal(0, prompt_calls)
  end)

  it("an aborted stream without usage: prompt estimate plus ceil(chars / 4), estimated", function()
    local rep = report('data: {"choices":[{"delta":{"content":"Hello world!"}}]}\n\n' ..
      'data: {"choices":[{"delta":{"content":" more"}}]}\n\n')
    assert.same({ prompt = 42, completion = 5, total = 47, estimated = true, source = "estimate" },
      tokens.tokensOf({ exited = false, upstreamStatus = 200, report = rep, promptEstimate = estimate }))
    assert.equal(1, prompt_calls)
  end)

  it("Anthropic cut after message_start: the reported prompt, the streamed estimate for completion", function()
    local rep = report('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}\n\n' ..
      'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"abcdefghijklmnop"}}\n\n')
    assert.same({ prompt = 11, completion = 4, total = 15, estimated = true, source = "partial_usage" },
      tokens.tokensOf({ exited = false, upstreamStatus = 200, report = rep, promptEstimate = estimate }))
  end)

  it("a gateway exit or a WebSocket tunnel counts nothing; a 4xx without usage neither; no body at all is an estimate", function()
    assert.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "not_proxied" },
      tokens.tokensOf({ exited = true, report = nil, promptEstimate = estimate }))
    assert.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "websocket" },
      tokens.tokensOf({ exited = false, websocket = true, upstreamStatus = 101, report = nil, promptEstimate = estimate }))
    assert.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "upstream_error" },
      tokens.tokensOf({ exited = false, upstreamStatus = 429, report = report('{"error":"x"}', "application/json"), promptEstimate = estimate }))
    assert.equal(0, prompt_calls)
    assert.same({ prompt = 42, completion = 0, total = 42, estimated = true, source = "estimate" },
      tokens.tokensOf({ exited = false, upstreamStatus = nil, report = nil, promptEstimate = estimate }))
  end)
end)

describe("emit", function()
  it("abnormal endings are always written, completed ones per log_completed and sample_rate", function()
    for _, o in ipairs({ "client_abort", "upstream_abort", "upstream_timeout", "upstream_error", "gateway_exit" }) do
      assert.is_true(record.shouldEmit(o, false, 0, 0.99), o)
    end
    assert.is_false(record.shouldEmit("completed", false, 1, 0))
    assert.is_true(record.shouldEmit("completed", true, 1, 0.999999))
    assert.is_false(record.shouldEmit("completed", true, 0, 0))
    assert.is_true(record.shouldEmit("completed", true, 0.25, 0.2))
    assert.is_false(record.shouldEmit("completed", true, 0.25, 0.25))
  end)

  it("the line is the fixed prefix followed by the record's JSON", function()
    local rec = record.buildRecord(input())
    local line = record.logLine(rec)
    assert.equal("[upstream-disconnect] ", line:sub(1, 22))
    assert.same(rec, cjson.decode(line:sub(23)))
  end)
end)
