-- The handler's phases with stand-ins for ngx and kong: it never writes ngx.arg, keeps
-- bounded memory on long streams, reads the request body only when a record needs an
-- estimate, and turns nginx's variables into the record.
local cjson = require("cjson")

local SSE_DONE = table.concat({
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n',
  "data: [DONE]\n\n",
})

local PROMPT_BODY = '{"model":"m","stream":true,"messages":[{"role":"user","content":"a secret prompt of forty characters!!!!!"}]}'

local env -- the stand-ins of the current test

local function install(over)
  over = over or {}
  env = {
    clock = 1700000000.000,
    lines = {},
    serialized = {},
    body_reads = 0,
    status = over.status or 200,
    source = over.source or "service",
    headers = over.headers or { ["Content-Type"] = "text/event-stream" },
    arg = {},
  }
  local arg_proxy = setmetatable({}, {
    __index = env.arg,
    __newindex = function(_, k) error("ngx.arg[" .. tostring(k) .. "] was written") end,
  })
  local var = {
    upstream_addr = "127.0.0.1:9000", upstream_status = "200", upstream_connect_time = "0.001",
    upstream_header_time = "0.004", upstream_response_time = "0.100", upstream_bytes_received = "2000",
    upstream_bytes_sent = "400", request_completion = "OK", request_uri = "/llm/v1/chat/completions?api_key=k1",
    kong_request_id = "0123456789abcdef0123456789abcdef", body_bytes_sent = "0",
    request = (over.method or "POST") .. " /llm/v1/chat/completions?api_key=k1 HTTP/1.1",
  }
  for k, v in pairs(over.var or {}) do var[k] = v ~= false and v or nil end
  _G.ngx = {
    arg = arg_proxy,
    var = var,
    -- response headers as the filters read them (one at a time, through ngx.header)
    header = setmetatable({}, { __index = function(_, name) return env.headers[name] end }),
    now = function() return env.clock end,
    get_phase = function() return "log" end,
    update_time = function() end,
    req = {
      start_time = function() return 1700000000 - 0.005 end,
      get_method = function() return over.error_page and "GET" or over.method or "POST" end,
      get_body_data = function()
        env.body_reads = env.body_reads + 1
        if over.body_file then return nil end
        return PROMPT_BODY
      end,
      get_body_file = function() return over.body_file end,
    },
  }
  setmetatable(_G.ngx, { __index = function(_, k) if k == "status" then return env.status end end })
  local function logger(level)
    return function(...)
      env.lines[#env.lines + 1] = { level = level, text = table.concat({ ... }) }
    end
  end
  _G.kong = {
    ctx = { plugin = {}, shared = over.shared or {} },
    response = {
      get_header = function() error("kong.response.get_header builds every header: read ngx.header") end,
      get_source = function() return env.source end,
    },
    request = { get_start_time = function() return 1700000000000 - 5 end },
    router = {
      get_route = function() return { id = "r1", name = "llm" } end,
      get_service = function() return { id = "s1", name = "mock", read_timeout = 60000 } end,
    },
    client = { get_consumer = function() return over.consumer end },
    log = {
      err = logger("err"), warn = logger("warn"), notice = logger("notice"), info = logger("info"),
      set_serialize_value = function(k, v) env.serialized[k] = v end,
    },
  }
end

local handler = require("kong.plugins.upstream-disconnect-log.handler")
-- The phases as Kong calls them (handler:phase(conf)).
local observe = {
  headerFilter = function(conf) handler:header_filter(conf) end,
  bodyFilter = function() handler:body_filter({}) end,
  log = function(conf) handler:log(conf) end,
}

-- The metrics record as Kong's schema defaults fill it in (no prometheus plugin here: nothing counted).
local METRICS = { enabled = true, per_consumer = true, models = {}, ai_analytics = true }
local CONF = { log_completed = true, sample_rate = 1, log_level = "warn", include_query = false, metrics = METRICS }

local function chunk(data, eof, advance)
  env.clock = env.clock + (advance or 0.01)
  env.arg[1], env.arg[2] = data, eof or false
  observe.bodyFilter()
end

local function record()
  assert.equal(1, #env.lines, "one line expected")
  local text = env.lines[1].text
  assert.equal("[upstream-disconnect] ", text:sub(1, 22), text)
  return cjson.decode(text:sub(23)), env.lines[1]
end

describe("upstream-disconnect-log handler", function()
  after_each(function()
    _G.ngx, _G.kong = nil, nil
  end)

  it("a stream fed in odd pieces to its end: completed, reported usage, ngx.arg untouched, body not read", function()
    install()
    observe.headerFilter(CONF)
    for i = 1, #SSE_DONE, 7 do chunk(SSE_DONE:sub(i, i + 6)) end
    chunk("", true)
    env.clock = env.clock + 0.001
    observe.log(CONF)
    local rec, line = record()
    assert.equal("warn", line.level)
    assert.same({ prompt = 9, completion = 2, total = 11, estimated = false, source = "usage" }, rec.tokens)
    assert.equal("completed", rec.outcome)
    assert.equal("terminator", rec.reason)
    assert.equal(#SSE_DONE, rec.bytes_to_client)
    assert.equal(5, rec.sse_events)
    assert.equal("stop", rec.last_finish_reason)
    assert.equal("/llm/v1/chat/completions", rec.path)
    assert.equal(0, env.body_reads)
    assert.same(rec, cjson.decode(cjson.encode(env.serialized.upstream_disconnect)))
    -- 5 ms before the headers, the first event completed within the first pieces
    assert.equal(5, rec.ttfb_ms)
    assert.is_true(rec.time_to_first_data_ms > rec.ttfb_ms)
  end)

  it("a client that left mid-stream: the prompt estimate is read once and never logged", function()
    install({ var = { request_completion = "" } })
    observe.headerFilter(CONF)
    chunk(SSE_DONE:sub(1, 300))
    observe.log(CONF)
    local rec = record()
    assert.equal("client_abort", rec.outcome)
    assert.equal(1, env.body_reads)
    -- ceil(40 / 4) + 4 per message; "Hello" is streamed before the cut: ceil(5 / 4)
    assert.same({ prompt = 14, completion = 2, total = 16, estimated = true, source = "estimate" }, rec.tokens)
    assert.is_nil(env.lines[1].text:find("secret prompt", 1, true))
    assert.is_nil(env.lines[1].text:find("k1", 1, true))
  end)

  it("prefers what token-rate-limiting counted (kong.ctx.shared) to its own reading, and reads no body", function()
    -- The client's stream lacks the usage chunk token-rate-limiting removed: alone, this plugin
    -- would estimate a stream that in fact reported its usage.
    local no_usage = SSE_DONE:gsub('data: {[^\n]-"choices":%[%],"usage":{.-}}\n\n', "")
    assert.is_nil(no_usage:find('"usage"', 1, true))
    local published = { prompt = 9, completion = 2, total = 11, estimated = false, source = "usage" }
    install({ shared = { ai_gateway_tokens = published } })
    observe.headerFilter(CONF)
    chunk(no_usage, true)
    observe.log(CONF)
    local rec = record()
    assert.equal("completed", rec.outcome)
    assert.same(published, rec.tokens)
    assert.equal(4, rec.sse_events)
    assert.equal(0, env.body_reads)

    -- Without it, the same bytes give the estimate.
    install()
    observe.headerFilter(CONF)
    chunk(no_usage, true)
    observe.log(CONF)
    assert.same({ prompt = 14, completion = 3, total = 17, estimated = true, source = "estimate" }, record().tokens)
  end)

  it("a request body nginx kept in a file is read for the estimate; a huge one is sized, not read", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(PROMPT_BODY)
    f:close()
    install({ var = { request_completion = "" }, body_file = path })
    observe.headerFilter(CONF)
    observe.log(CONF)
    assert.equal(14, record().tokens.prompt)

    f = assert(io.open(path, "wb"))
    f:write(string.rep("x", 2 * 1024 * 1024 + 3))
    f:close()
    install({ var = { request_completion = "" }, body_file = path })
    observe.headerFilter(CONF)
    observe.log(CONF)
    assert.equal(math.ceil((2 * 1024 * 1024 + 3) / 4), record().tokens.prompt)
    os.remove(path)
  end)

  it("log_completed off: nothing written, nothing serialized, the body not read", function()
    local off = { log_completed = false, sample_rate = 1, log_level = "warn", include_query = false, metrics = METRICS }
    install()
    observe.headerFilter(off)
    chunk(SSE_DONE, true)
    observe.log(off)
    assert.equal(0, #env.lines)
    assert.is_nil(env.serialized.upstream_disconnect)
    assert.equal(0, env.body_reads)
    -- Kong's AI analytics are written for every metered answer, recorded or not.
    local usage = env.serialized["ai.proxy.usage"]
    assert.same({ 9, 2, 11 }, { usage.prompt_tokens, usage.completion_tokens, usage.total_tokens })
  end)

  it("a JSON answer with a Content-Length is not metered unless completed records are logged", function()
    local body = '{"id":"x","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}],' ..
      '"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}'
    local json_headers = { ["Content-Type"] = "application/json", ["Content-Length"] = tostring(#body) }
    local off = { log_completed = false, sample_rate = 1, log_level = "warn", include_query = false, metrics = METRICS }

    install({ headers = json_headers })
    observe.headerFilter(off)
    assert.is_nil(kong.ctx.plugin.upstream_disconnect.reader)
    chunk(body, true)
    observe.log(off)
    assert.equal(0, #env.lines)

    -- a short body is still told from its end: no eof, so it is an abort, with estimated tokens
    install({ headers = json_headers })
    observe.headerFilter(off)
    chunk(body:sub(1, 40))
    observe.log(off)
    local rec = record()
    assert.equal("upstream_abort", rec.outcome)
    assert.is_true(rec.tokens.estimated)

    -- logged when complete: read, and its usage reported
    install({ headers = json_headers })
    observe.headerFilter(CONF)
    chunk(body, true)
    observe.log(CONF)
    rec = record()
    assert.equal("completed", rec.outcome)
    assert.same({ prompt = 9, completion = 2, total = 11, estimated = false, source = "usage" }, rec.tokens)
  end)

  it("the configured level is used", function()
    install({ var = { request_completion = "" } })
    observe.headerFilter(CONF)
    observe.log({ log_completed = false, sample_rate = 1, log_level = "err", include_query = true, metrics = METRICS })
    local rec, line = record()
    assert.equal("err", line.level)
    assert.equal("/llm/v1/chat/completions?api_key=REDACTED", rec.path)
  end)

  it("holds at most one unfinished event however long the stream", function()
    install()
    observe.headerFilter(CONF)
    local event = 'data: {"choices":[{"index":0,"delta":{"content":"' .. string.rep("word ", 40) .. '"}}]}\n\n'
    local stream = string.rep(event, 20000) -- about 4.6 MB
    local reader = kong.ctx.plugin.upstream_disconnect.shared.reader
    local most = 0
    for i = 1, #stream, 1000 do
      chunk(stream:sub(i, i + 999), false, 0)
      if reader.bufferedBytes > most then most = reader.bufferedBytes end
    end
    assert.is_true(most <= #event + 1000, "held " .. most .. " bytes")
    assert.equal(#stream, kong.ctx.plugin.upstream_disconnect.bytes)
  end)

  it("WebSocket: frames bypass the filter, nginx's counters give the bytes each way", function()
    install({ status = 101, headers = {}, method = "GET", var = {
      upstream_status = "101", upstream_bytes_received = "129", body_bytes_sent = "20",
    } })
    observe.headerFilter(CONF)
    chunk("", false)
    ngx.var.upstream_bytes_received = "149"
    ngx.var.upstream_bytes_sent = "510"
    chunk("", true, 0.3)
    observe.log(CONF)
    local rec = record()
    assert.equal("websocket", rec.kind)
    assert.equal("websocket_closed", rec.reason)
    assert.same({ closed_by = "unknown", client_to_upstream_bytes = 510, upstream_to_client_bytes = 20 }, rec.websocket)
    assert.equal(20, rec.bytes_to_client)
    assert.equal(0, env.body_reads) -- nothing was estimated: no reader for a tunnel
    assert.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "websocket" }, rec.tokens)
    assert.is_nil(rec.idle_before_end_ms)
  end)

  it("a plugin's exit: no upstream variables, zero tokens, the exit body counted", function()
    install({ status = 401, source = "exit", headers = { ["Content-Type"] = "application/json", ["Content-Length"] = "45" }, var = {
      upstream_addr = false, upstream_status = false, upstream_connect_time = false, upstream_header_time = false,
      upstream_response_time = false, upstream_bytes_received = false, upstream_bytes_sent = false,
    } })
    observe.headerFilter(CONF)
    chunk('{"message":"No API key found in request"}\n', true)
    observe.log(CONF)
    local rec = record()
    assert.equal("gateway_exit", rec.outcome)
    assert.equal("body", rec.kind)
    assert.is_nil(rec.upstream_status)
    assert.equal(0, rec.bytes_from_upstream)
    assert.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "not_proxied" }, rec.tokens)
    assert.equal(0, env.body_reads)
  end)

  it("a POST answered with nginx's 504 error page is recorded as POST", function()
    install({ status = 504, source = "error", error_page = true, headers = { ["Content-Type"] = "application/json" }, var = {
      upstream_status = "504", upstream_header_time = "-", upstream_bytes_received = "0",
    } })
    observe.headerFilter(CONF)
    chunk('{"message":"The upstream server is timed out"}', true, 0.5)
    observe.log(CONF)
    local rec = record()
    assert.equal("upstream_timeout", rec.outcome)
    assert.equal("read_timeout_before_headers", rec.reason)
    assert.equal("POST", rec.method)
    -- nginx's error page is not read as the upstream's answer
    assert.equal(0, rec.sse_events)
    assert.is_nil(kong.ctx.plugin.upstream_disconnect.reader)
  end)

  it("a client gone before the headers (499, no header_filter): still one record", function()
    install({ status = 499, var = { request_completion = "", upstream_header_time = "-", upstream_status = "-" } })
    observe.log(CONF)
    local rec = record()
    assert.equal("client_abort", rec.outcome)
    assert.equal("none", rec.kind)
    assert.is_nil(rec.ttfb_ms)
    assert.equal(0, rec.bytes_to_client)
  end)
end)
