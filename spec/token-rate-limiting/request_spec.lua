-- Request reading and usage injection of token-rate-limiting (plugins/token-rate-limiting/request.ts).
local cjson = require("cjson.safe")
local request = require("kong.plugins.token-rate-limiting.request")

local function describe_raw(raw, format)
  return request.describeRequest(request.decodeBody(raw), #raw, format or "openai")
end

describe("token-rate-limiting request", function()
  describe("requestFormat", function()
    it("recognises Anthropic, Ollama and OpenAI-compatible requests", function()
      assert.equal("anthropic", request.requestFormat("auto", "/v1/messages", nil))
      assert.equal("anthropic", request.requestFormat("auto", "/llm/v1/chat/completions", "2023-06-01"))
      assert.equal("ollama", request.requestFormat("auto", "/api/chat", nil))
      assert.equal("ollama", request.requestFormat("auto", "/ollama/api/generate", nil))
      assert.equal("openai", request.requestFormat("auto", "/v1/chat/completions", nil))
      assert.equal("openai", request.requestFormat("auto", "/anything", ""))
    end)

    it("obeys the configured format", function()
      assert.equal("openai", request.requestFormat("openai", "/v1/messages", "2023-06-01"))
      assert.equal("ollama", request.requestFormat("ollama", "/v1/chat/completions", nil))
    end)
  end)

  describe("describeRequest", function()
    it("reads model, stream, max tokens and the client's usage option", function()
      local r = describe_raw('{"model":"gpt-4o","stream":true,"max_tokens":100,"max_completion_tokens":50,'
        .. '"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"12345678"}]}')
      assert.equal("gpt-4o", r.model)
      assert.is_true(r.stream)
      assert.equal(50, r.maxTokens) -- max_completion_tokens wins
      assert.is_true(r.clientAskedUsage)
      assert.equal(2 + 4, r.promptEstimate) -- 8 chars / 4 + 4 per message
      assert.is_true(r.json)
    end)

    it("treats stream as off unless it is true, except for Ollama's native API", function()
      assert.is_false(describe_raw('{"stream":"yes"}').stream)
      assert.is_false(describe_raw('{}').stream)
      assert.is_true(describe_raw('{"model":"llama3"}', "ollama").stream)
      assert.is_false(describe_raw('{"stream":false}', "ollama").stream)
    end)

    it("reads Ollama's num_predict and ignores nonsense max_tokens", function()
      assert.equal(64, describe_raw('{"options":{"num_predict":64}}', "ollama").maxTokens)
      assert.is_nil(describe_raw('{"options":{"num_predict":-1}}', "ollama").maxTokens)
      assert.is_nil(describe_raw('{"max_tokens":"many"}').maxTokens)
      assert.is_nil(describe_raw('{"max_tokens":0}').maxTokens)
    end)

    it("estimates a non-JSON body from its length", function()
      local r = describe_raw("not json at all")
      assert.is_false(r.json)
      assert.is_false(r.stream)
      assert.is_nil(r.model)
      assert.equal(4, r.promptEstimate) -- ceil(15 / 4)
      assert.is_false(describe_raw("[1,2]").json)
    end)
  end)

  describe("shouldInjectUsage", function()
    local function r(overrides)
      local base = { format = "openai", stream = true, clientAskedUsage = false, json = true, promptEstimate = 0 }
      for k, v in pairs(overrides or {}) do base[k] = v end
      return base
    end

    it("injects for OpenAI-style streams whose client did not ask for usage", function()
      assert.is_true(request.shouldInjectUsage(true, r()))
    end)

    it("does not inject when off, not streaming, already asked, or not OpenAI-style", function()
      assert.is_false(request.shouldInjectUsage(false, r()))
      assert.is_false(request.shouldInjectUsage(true, r({ stream = false })))
      assert.is_false(request.shouldInjectUsage(true, r({ clientAskedUsage = true })))
      assert.is_false(request.shouldInjectUsage(true, r({ format = "anthropic" })))
      assert.is_false(request.shouldInjectUsage(true, r({ format = "ollama" })))
      assert.is_false(request.shouldInjectUsage(true, r({ json = false })))
    end)
  end)

  describe("bodyWithUsage", function()
    local function inject(raw)
      local out = request.bodyWithUsage(raw, request.decodeBody(raw))
      return out, out and cjson.decode(out)
    end

    it("inserts stream_options after the opening brace, leaving every other byte alone", function()
      local raw = ' {"model":"m","stream":true,"seed":12345678901234567890,"temperature":0.70,"tools":[],"messages":[{"role":"user","content":"a\\/b \\u00e9"}]}'
      local out, decoded = inject(raw)
      assert.equal(' {"stream_options":{"include_usage":true},' .. raw:sub(3), out)
      assert.is_true(decoded.stream_options.include_usage)
    end)

    it("adds include_usage at the end of an existing stream_options, where it wins", function()
      local raw = '{"stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"{\\"stream_options\\":1}"}]}'
      local out, decoded = inject(raw)
      assert.equal('{"stream":true,"stream_options":{"include_usage":false,"include_usage":true},"messages":[{"role":"user","content":"{\\"stream_options\\":1}"}]}', out)
      assert.is_true(decoded.stream_options.include_usage) -- cjson, like Python's json, keeps the last duplicate
    end)

    it("turns off continuous_usage_stats the client asked for without include_usage", function()
      local out, decoded = inject('{"stream":true,"stream_options":{"continuous_usage_stats":true}}')
      assert.equal('{"stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":true,"continuous_usage_stats":false}}', out)
      assert.is_false(decoded.stream_options.continuous_usage_stats)
    end)

    it("fills an empty or null stream_options", function()
      assert.equal('{"stream":true,"stream_options":{ "include_usage":true}}', (inject('{"stream":true,"stream_options":{ }}')))
      assert.equal('{"stream":true,"stream_options": {"include_usage":true}}', (inject('{"stream":true,"stream_options": null}')))
    end)

    it("ignores a stream_options key nested deeper than the top level", function()
      local raw = '{"metadata":{"stream_options":{"x":1}},"stream":true}'
      local out, decoded = inject(raw)
      assert.equal('{"stream_options":{"include_usage":true},' .. raw:sub(2), out)
      assert.same({ x = 1 }, decoded.metadata.stream_options)
    end)

    it("finds top-level members only", function()
      assert.equal(21, request.topLevelValueAt('{"a":{"b":1}, "b" : 2}', "b"))
      assert.is_nil(request.topLevelValueAt('{"a":"\\"b\\":1"}', "b"))
    end)
  end)
end)
