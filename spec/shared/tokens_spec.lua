local tokens = require("kong.plugins.ai-gateway-shared.tokens")

local function report(fields)
  local r = { reported = false, terminated = true, text_bytes = 0 }
  for k, v in pairs(fields) do r[k] = v end
  return r
end

describe("tokensOf", function()
  it("counts nothing for a gateway exit", function()
    assert.are.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "not_proxied" },
      tokens.tokensOf({ exited = true, promptEstimate = 50 }))
  end)

  it("counts nothing for a WebSocket tunnel (its frames bypass the body filters)", function()
    assert.are.same({ prompt = 0, completion = 0, total = 0, estimated = false, source = "websocket" },
      tokens.tokensOf({ exited = false, websocket = true, upstreamStatus = 101, promptEstimate = function() error("not needed") end }))
  end)

  it("uses reported usage as it is", function()
    local t = tokens.tokensOf({ exited = false, upstreamStatus = 200, promptEstimate = 99,
      report = report({ reported = true, prompt_tokens = 10, completion_tokens = 5, total_tokens = 15, text_bytes = 400 }) })
    assert.are.same({ prompt = 10, completion = 5, total = 15, estimated = false, source = "usage" }, t)
  end)

  it("derives a missing count from the total, else estimates it", function()
    local t = tokens.tokensOf({ exited = false, upstreamStatus = 200, promptEstimate = 99,
      report = report({ reported = true, completion_tokens = 5, total_tokens = 15 }) })
    assert.are.same({ 10, 5, false, "usage" }, { t.prompt, t.completion, t.estimated, t.source })
    local e = tokens.tokensOf({ exited = false, upstreamStatus = 200, promptEstimate = function() return 7 end,
      report = report({ reported = true, completion_tokens = 5 }) })
    assert.are.same({ 7, 5, 12, true, "partial_usage" }, { e.prompt, e.completion, e.total, e.estimated, e.source })
  end)

  it("a cut stream counts at least the text it streamed", function()
    -- Anthropic message_start said output_tokens 1; then 40 characters streamed and the stream died.
    local t = tokens.tokensOf({ exited = false, upstreamStatus = 200, promptEstimate = 0,
      report = report({ reported = true, prompt_tokens = 20, completion_tokens = 1, terminated = false, text_bytes = 40 }) })
    assert.are.same({ 20, 10, 30, true, "partial_usage" }, { t.prompt, t.completion, t.total, t.estimated, t.source })
  end)

  it("a 4xx without usage counts nothing; no usage otherwise is estimated", function()
    local called = false
    local refused = tokens.tokensOf({ exited = false, upstreamStatus = 400, promptEstimate = function() called = true; return 5 end, report = report({}) })
    assert.are.same({ 0, "upstream_error" }, { refused.total, refused.source })
    assert.is_false(called)
    local aborted = tokens.tokensOf({ exited = false, upstreamStatus = 200, promptEstimate = 12, report = report({ terminated = false, text_bytes = 9 }) })
    assert.are.same({ 12, 3, 15, true, "estimate" }, { aborted.prompt, aborted.completion, aborted.total, aborted.estimated, aborted.source })
    local never = tokens.tokensOf({ exited = false, promptEstimate = 12 })
    assert.are.same({ 12, 0, 12, true, "estimate" }, { never.prompt, never.completion, never.total, never.estimated, never.source })
  end)
end)
