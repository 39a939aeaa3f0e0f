-- classify(): every branch, and the facts nginx showed the log phase for each ending through the
-- local gateway (nginx 1.22, lua-nginx-module 0.10.23), buffered and unbuffered routes.
local classify_mod = require("kong.plugins.upstream-disconnect-log.classify")
local classify = classify_mod.classify

-- A completed SSE stream of an LLM: the starting point every case changes.
local function facts(over)
  local f = {
    source = "service",
    routed = true,
    status = 200,
    method = "POST",
    upstreamAttempted = true,
    upstreamStatus = 200,
    upstreamConnected = true,
    upstreamHeaderReceived = true,
    upstreamLastBytes = 12331,
    upgraded = false,
    eof = true,
    requestCompleted = true,
    llmStream = true,
    terminated = true,
    silenceMs = 2,
    readTimeoutMs = 60000,
  }
  for k, v in pairs(over or {}) do
    if v == "nil" then f[k] = nil else f[k] = v end
  end
  return f
end

local function outcome(over)
  local c = classify(facts(over))
  return c.outcome, c.reason
end

describe("classify", function()
  it("a stream that reached its terminator is completed", function()
    assert.same({ "completed", "terminator" }, { outcome() })
  end)

  describe("gateway_exit", function()
    it("when a plugin answered (get_source exit), whatever the status", function()
      assert.same({ "gateway_exit", "plugin_exit" }, { outcome({ source = "exit", status = 401, upstreamAttempted = false }) })
      assert.same({ "gateway_exit", "plugin_exit" }, { outcome({ source = "exit", status = 429, upstreamAttempted = false, eof = false }) })
    end)

    it("when Kong answered with an error without trying an upstream (plugin error, no service)", function()
      assert.same({ "gateway_exit", "gateway_error" },
        { outcome({ source = "error", status = 500, upstreamAttempted = false, upstreamStatus = "nil", upstreamHeaderReceived = false, upstreamConnected = false }) })
    end)

    it("when no route matched (Kong's router answered 404)", function()
      assert.same({ "gateway_exit", "no_route" }, { outcome({ source = "exit", routed = false, status = 404, upstreamAttempted = false }) })
    end)

    it("is not a gateway exit when the client left before Kong proxied (499 with no upstream try)", function()
      assert.same({ "client_abort", "client_closed_before_response" },
        { outcome({ status = 499, upstreamAttempted = false, upstreamHeaderReceived = false, eof = false, requestCompleted = false }) })
    end)
  end)

  describe("client_abort", function()
    it("observed: the client left before any byte (ttft 2 s, abort at 300 ms): nginx sets 499", function()
      -- header_filter had run (upstream headers at 4 ms), nothing was sent, upstream_status 200
      assert.same({ "client_abort", "client_closed_before_response" }, { outcome({
        status = 499, eof = false, requestCompleted = false, terminated = false, silenceMs = 297,
      }) })
    end)

    it("observed: the client left mid-stream: status stays 200, request_completion empty, no eof", function()
      assert.same({ "client_abort", "client_closed_mid_response" }, { outcome({
        eof = false, requestCompleted = false, terminated = false, silenceMs = 81,
      }) })
    end)

    it("observed (unbuffered route): the client left before the first token after headers were flushed", function()
      assert.same({ "client_abort", "client_closed_mid_response" }, { outcome({
        eof = false, requestCompleted = false, terminated = false, silenceMs = 283, readTimeoutMs = 500,
      }) })
    end)

    it("the client left before the last bytes were written (eof seen, request not completed)", function()
      assert.same({ "client_abort", "client_closed_mid_response" }, { outcome({
        requestCompleted = false, terminated = false, llmStream = false,
      }) })
    end)

    it("a long silence does not turn a client abort into a timeout", function()
      assert.same({ "client_abort", "client_closed_mid_response" }, { outcome({
        eof = false, requestCompleted = false, terminated = false, silenceMs = 120000,
      }) })
    end)

    it("a terminator that passed on its way to the client wins over a later client close", function()
      assert.same({ "completed", "terminator" }, { outcome({ eof = false, requestCompleted = false }) })
    end)
  end)

  describe("upstream_abort", function()
    it("observed: the upstream closed mid-stream: request completed, no eof, silence ~1 ms", function()
      assert.same({ "upstream_abort", "closed_mid_response" }, { outcome({
        eof = false, terminated = false, silenceMs = 5, readTimeoutMs = 60000,
      }) })
    end)

    it("also on a route with a short read timeout, when the close follows the last bytes at once", function()
      assert.same({ "upstream_abort", "closed_mid_response" }, { outcome({
        eof = false, terminated = false, silenceMs = 4, readTimeoutMs = 500,
      }) })
    end)

    it("an LLM stream that ended cleanly without its terminator", function()
      assert.same({ "upstream_abort", "no_terminator" }, { outcome({ terminated = false }) })
    end)

    it("the upstream closed after connecting, before sending its headers (502, 0 bytes)", function()
      assert.same({ "upstream_abort", "closed_before_headers" }, { outcome({
        source = "error", status = 502, upstreamStatus = 502, upstreamHeaderReceived = false,
        upstreamLastBytes = 0, eof = true, terminated = false, llmStream = false,
      }) })
    end)

    it("a short non-stream body (Content-Length not reached) is cut like a stream", function()
      assert.same({ "upstream_abort", "closed_mid_response" }, { outcome({
        eof = false, terminated = false, llmStream = false, silenceMs = 1,
      }) })
    end)
  end)

  describe("upstream_timeout", function()
    it("observed: stall after headers, buffered route, read_timeout 500: the timer fired 399 ms after the last bytes", function()
      assert.same({ "upstream_timeout", "read_timeout_mid_response" }, { outcome({
        eof = false, terminated = false, silenceMs = 399, readTimeoutMs = 500,
      }) })
    end)

    it("observed: stall on an unbuffered route (379 ms) and a first token later than the timeout (493 ms)", function()
      assert.same("upstream_timeout", (outcome({ eof = false, terminated = false, silenceMs = 379, readTimeoutMs = 500 })))
      assert.same("upstream_timeout", (outcome({ eof = false, terminated = false, silenceMs = 493, readTimeoutMs = 500 })))
    end)

    it("observed: no headers within read_timeout: nginx answers 504", function()
      assert.same({ "upstream_timeout", "read_timeout_before_headers" }, { outcome({
        source = "error", status = 504, upstreamStatus = 504, upstreamHeaderReceived = false,
        upstreamLastBytes = 0, terminated = false, llmStream = false,
      }) })
    end)

    it("a connect timeout (504 without a connection)", function()
      assert.same({ "upstream_timeout", "connect_timeout" }, { outcome({
        source = "error", status = 504, upstreamStatus = 504, upstreamConnected = false,
        upstreamHeaderReceived = false, upstreamLastBytes = 0, terminated = false, llmStream = false,
      }) })
    end)

    it("uses Kong's default read_timeout (60 s) when the service's is unknown", function()
      assert.same("upstream_abort", (outcome({ eof = false, terminated = false, silenceMs = 50000, readTimeoutMs = "nil" })))
      assert.same("upstream_timeout", (outcome({ eof = false, terminated = false, silenceMs = 59800, readTimeoutMs = "nil" })))
    end)
  end)

  describe("upstream_error", function()
    it("observed: connect refused: 502 from nginx, no connection", function()
      assert.same({ "upstream_error", "connect_failed" }, { outcome({
        source = "error", status = 502, upstreamStatus = 502, upstreamConnected = false,
        upstreamHeaderReceived = false, upstreamLastBytes = 0, terminated = false, llmStream = false,
      }) })
    end)

    it("observed: the upstream answered 503 with a complete error body", function()
      -- the reader decodes a JSON error body whole, so it counts as "terminated": 5xx wins
      assert.same({ "upstream_error", "upstream_5xx" }, { outcome({ status = 503, upstreamStatus = 503, llmStream = false }) })
    end)

    it("a 5xx whose body was cut is still an upstream error", function()
      assert.same({ "upstream_error", "upstream_5xx" }, { outcome({ status = 500, upstreamStatus = 500, eof = false, terminated = false }) })
    end)

    it("a bad response header (502 after bytes arrived)", function()
      assert.same({ "upstream_error", "bad_response" }, { outcome({
        source = "error", status = 502, upstreamStatus = 502, upstreamHeaderReceived = false,
        upstreamLastBytes = 40, terminated = false, llmStream = false,
      }) })
    end)

    it("a 4xx from the upstream is a completed answer, not an error", function()
      assert.same({ "completed", "terminator" }, { outcome({ status = 400, upstreamStatus = 400, llmStream = false }) })
      assert.same({ "completed", "body_complete" }, { outcome({ status = 404, upstreamStatus = 404, llmStream = false, terminated = false }) })
    end)
  end)

  describe("completed", function()
    it("a plain (non-LLM) body or chunked stream that nginx ended normally", function()
      assert.same({ "completed", "body_complete" }, { outcome({ llmStream = false, terminated = false }) })
    end)

    it("HEAD, 204 and 304 responses have no body for the filter to see", function()
      assert.same({ "completed", "no_body" }, { outcome({ method = "HEAD", eof = false, terminated = false, llmStream = false }) })
      assert.same({ "completed", "no_body" }, { outcome({ status = 204, upstreamStatus = 204, eof = false, terminated = false, llmStream = false }) })
      assert.same({ "completed", "no_body" }, { outcome({ status = 304, upstreamStatus = 304, eof = false, terminated = false, llmStream = false }) })
    end)
  end)

  describe("WebSocket (101)", function()
    local ws = { status = 101, upstreamStatus = 101, upgraded = true, llmStream = false, terminated = false }
    local function with(over)
      local f = {}
      for k, v in pairs(ws) do f[k] = v end
      for k, v in pairs(over) do f[k] = v end
      return outcome(f)
    end

    it("observed: a close from either side ends the tunnel the same way (eof, request completed)", function()
      assert.same({ "completed", "websocket_closed" }, { with({ eof = true, silenceMs = 310 }) })
    end)

    it("observed: nginx ended an idle tunnel after read_timeout (no eof, 485 ms silent)", function()
      assert.same({ "upstream_timeout", "websocket_idle_timeout" }, { with({ eof = false, silenceMs = 485, readTimeoutMs = 500 }) })
    end)

    it("a tunnel nginx cut quickly is an upstream-side error; an unfinished request a client-side one", function()
      assert.same({ "upstream_abort", "websocket_error" }, { with({ eof = false, silenceMs = 3, readTimeoutMs = 500 }) })
      assert.same({ "client_abort", "websocket_client_error" }, { with({ eof = false, requestCompleted = false }) })
    end)

    it("a refused upgrade is classified like any response", function()
      assert.same({ "upstream_error", "upstream_5xx" }, { outcome({ status = 503, upstreamStatus = 503, llmStream = false }) })
    end)
  end)

  describe("timeoutThresholdMs", function()
    local t = classify_mod.timeoutThresholdMs
    it("allows nginx's lazy timer (300 ms) and clock slack below read_timeout", function()
      assert.equal(59675, t(60000))
      assert.equal(175, t(500))
    end)
    it("never drops below 100 ms, or the timeout itself when that is shorter", function()
      assert.equal(100, t(200))
      assert.equal(50, t(50))
    end)
    it("defaults to Kong's 60 s", function()
      assert.equal(59675, t(nil))
      assert.equal(59675, t(0))
    end)
  end)

  it("every outcome named in OUTCOMES is reachable and nothing else is produced", function()
    local seen = {}
    local variations = {
      {}, { source = "exit" }, { status = 499 }, { eof = false, requestCompleted = false, terminated = false },
      { eof = false, terminated = false }, { eof = false, terminated = false, silenceMs = 70000 },
      { upstreamStatus = 502, upstreamHeaderReceived = false, upstreamConnected = false },
    }
    for _, v in ipairs(variations) do seen[(outcome(v))] = true end
    local names = {}
    for _, o in ipairs(classify_mod.OUTCOMES) do
      assert.is_true(seen[o], o .. " not produced")
      names[o] = true
    end
    for o in pairs(seen) do assert.is_true(names[o], o .. " is not a documented outcome") end
  end)
end)
