local usage = require("kong.plugins.ai-gateway-shared.usage")
local cjson = require("cjson.safe")

local function decode(s) return assert(cjson.decode(s)) end

describe("extractUsage", function()
  it("reads OpenAI, vLLM and SGLang usage", function()
    assert.are.same({ prompt_tokens = 9, completion_tokens = 2, total_tokens = 11 },
      usage.extractUsage(decode('{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}}}')))
    assert.are.same({ prompt_tokens = 8, total_tokens = 8 }, usage.extractUsage(decode('{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}')))
  end)

  it("ignores usage null, missing usage and non-numbers", function()
    assert.is_nil(usage.extractUsage(decode('{"choices":[{"delta":{}}],"usage":null}')))
    assert.is_nil(usage.extractUsage(decode('{"choices":[{"delta":{}}]}')))
    assert.is_nil(usage.extractUsage(decode('{"usage":{"prompt_tokens":"9","completion_tokens":null}}')))
    assert.is_nil(usage.extractUsage(decode('{"usage":{"prompt_tokens":-1}}')))
    assert.is_nil(usage.extractUsage("usage"))
    assert.is_nil(usage.extractUsage(nil))
  end)

  it("reads Anthropic message_start with cache tokens, message_delta and a body", function()
    assert.are.same({ prompt_tokens = 128, completion_tokens = 1 }, usage.extractUsage(decode(
      '{"type":"message_start","message":{"usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":100,"output_tokens":1}}}')))
    assert.are.same({ prompt_tokens = 25, completion_tokens = 1 }, usage.extractUsage(decode(
      '{"type":"message_start","message":{"usage":{"input_tokens":25,"cache_creation_input_tokens":null,"output_tokens":1}}}')))
    assert.are.same({ completion_tokens = 15 }, usage.extractUsage(decode('{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}')))
    assert.are.same({ prompt_tokens = 10, completion_tokens = 3 }, usage.extractUsage(decode('{"type":"message","usage":{"input_tokens":10,"output_tokens":3}}')))
  end)

  it("reads Ollama counts, the Responses API and Groq's x_groq", function()
    assert.are.same({ prompt_tokens = 26, completion_tokens = 298 }, usage.extractUsage(decode('{"done":true,"prompt_eval_count":26,"eval_count":298}')))
    assert.are.same({ prompt_tokens = 4, completion_tokens = 2, total_tokens = 6 },
      usage.extractUsage(decode('{"type":"response.completed","response":{"usage":{"input_tokens":4,"output_tokens":2,"total_tokens":6}}}')))
    assert.are.same({ prompt_tokens = 1, completion_tokens = 2, total_tokens = 3 },
      usage.extractUsage(decode('{"choices":[],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}}')))
  end)
end)

describe("mergeUsage", function()
  it("keeps the largest value per field: cumulative counts are never summed", function()
    local acc = {}
    for k = 1, 4 do
      assert.is_true(usage.mergeUsage(acc, { usage = { prompt_tokens = 7, completion_tokens = k, total_tokens = 7 + k } }))
    end
    assert.are.same({ prompt_tokens = 7, completion_tokens = 4, total_tokens = 11 }, acc)
    assert.is_false(usage.mergeUsage(acc, { usage = cjson.null }))
  end)

  it("combines Anthropic's message_start and message_delta", function()
    local acc = {}
    usage.mergeUsage(acc, decode('{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}'))
    usage.mergeUsage(acc, decode('{"type":"message_delta","usage":{"output_tokens":9}}'))
    -- A later delta that repeats input_tokens as 0 does not erase the prompt.
    usage.mergeUsage(acc, decode('{"type":"message_delta","usage":{"input_tokens":0,"output_tokens":12}}'))
    assert.are.same({ prompt_tokens = 5, completion_tokens = 12 }, acc)
    assert.are.equal(17, usage.usageTotal(acc))
  end)

  it("usageTotal prefers the reported total", function()
    assert.are.equal(30, usage.usageTotal({ prompt_tokens = 1, completion_tokens = 2, total_tokens = 30 }))
    assert.is_nil(usage.usageTotal({}))
    assert.are.equal(2, usage.usageTotal({ completion_tokens = 2 }))
  end)
end)

describe("finish reasons, terminators, errors", function()
  it("reads every format's reason", function()
    assert.are.equal("stop", usage.extractFinishReason(decode('{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')))
    assert.is_nil(usage.extractFinishReason(decode('{"choices":[{"index":0,"delta":{},"finish_reason":null}]}')))
    assert.are.equal("end_turn", usage.extractFinishReason(decode('{"type":"message_delta","delta":{"stop_reason":"end_turn"}}')))
    assert.are.equal("max_tokens", usage.extractFinishReason(decode('{"type":"message","stop_reason":"max_tokens"}')))
    assert.are.equal("length", usage.extractFinishReason(decode('{"done":true,"done_reason":"length"}')))
    assert.are.equal("stop", usage.extractFinishReason(decode('{"type":"response.completed","response":{"status":"completed"}}')))
    assert.are.equal("max_output_tokens", usage.extractFinishReason(decode('{"type":"response.incomplete","response":{"incomplete_details":{"reason":"max_output_tokens"}}}')))
  end)

  it("normalizes Anthropic's words to OpenAI's", function()
    assert.are.equal("stop", usage.normalizeFinishReason("end_turn"))
    assert.are.equal("length", usage.normalizeFinishReason("max_tokens"))
    assert.are.equal("tool_calls", usage.normalizeFinishReason("tool_use"))
    assert.are.equal("content_filter", usage.normalizeFinishReason("content_filter"))
  end)

  it("knows the terminators and error shapes", function()
    assert.is_true(usage.isTerminal(decode('{"type":"message_stop"}')))
    assert.is_true(usage.isTerminal(decode('{"done":true}')))
    assert.is_false(usage.isTerminal(decode('{"done":false}')))
    assert.is_false(usage.isTerminal(decode('{"choices":[]}')))
    assert.is_true(usage.isError(decode('{"error":{"message":"x"}}')))
    assert.is_true(usage.isError(decode('{"type":"error","error":{"type":"overloaded_error"}}')))
    assert.is_true(usage.isError(decode('{"object":"error","message":"x"}')))
    assert.is_true(usage.isError(decode('{"error":"model not found"}')))
    assert.is_false(usage.isError(decode('{"choices":[]}')))
  end)
end)

describe("textBytes", function()
  it("counts the bytes of generated text of every shape (decoded)", function()
    assert.are.equal(6, usage.textBytes(decode('{"choices":[{"delta":{"content":"héllo"}}]}')))
    assert.are.equal(3, usage.textBytes(decode('{"choices":[{"delta":{"reasoning_content":"abc","content":null}}]}')))
    assert.are.equal(4, usage.textBytes(decode('{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\""}}]}}]}')))
    assert.are.equal(2, usage.textBytes(decode('{"choices":[{"message":{"content":"ok"}}]}')))
    assert.are.equal(3, usage.textBytes(decode('{"choices":[{"text":"abc"}]}')))
    assert.are.equal(6, usage.textBytes(decode('{"type":"content_block_delta","delta":{"type":"text_delta","text":"模型"}}')))
    assert.are.equal(6, usage.textBytes(decode('{"type":"content_block_delta","delta":{"type":"input_json_delta","partial_json":"{\\"a\\":1"}}')))
    assert.are.equal(5, usage.textBytes(decode('{"type":"message","content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"bcde"}]}')))
    assert.are.equal(2, usage.textBytes(decode('{"message":{"role":"assistant","content":"hi"},"done":false}')))
    assert.are.equal(3, usage.textBytes(decode('{"response":"abc","done":false}')))
    assert.are.equal(3, usage.textBytes(decode('{"type":"response.output_text.delta","delta":"abc"}')))
    assert.are.equal(0, usage.textBytes(decode('{"type":"response.completed","response":{"usage":{}}}')))
    assert.are.equal(0, usage.textBytes("text"))
  end)
end)
