local estimate = require("kong.plugins.ai-gateway-shared.estimate")

describe("estimate", function()
  it("completion: ceil(chars / 4)", function()
    assert.are.equal(0, estimate.estimateCompletionTokens(0))
    assert.are.equal(1, estimate.estimateCompletionTokens(1))
    assert.are.equal(1, estimate.estimateCompletionTokens(4))
    assert.are.equal(2, estimate.estimateCompletionTokens(5))
    assert.are.equal(250, estimate.estimateCompletionTokens(1000))
  end)

  it("prompt: ceil(text chars / 4) + 4 per message", function()
    -- "You are terse." (14) + "Hello 模型" (8) = 22 chars -> 6 tokens, 2 messages -> 8
    local body = '{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello 模型"}],"max_tokens":5}'
    assert.are.equal(6 + 8, estimate.estimatePromptTokensFromBody(body))
  end)

  it("prompt: text parts, Anthropic system and tool results, completions prompt, embeddings input", function()
    assert.are.equal(2 + 4, estimate.estimatePromptTokens({ messages = { { role = "user", content = { { type = "text", text = "12345678" }, { type = "image_url", image_url = { url = "data:..." } } } } } }))
    assert.are.equal(3 + 4, estimate.estimatePromptTokens({ system = "abcd", messages = { { role = "user", content = { { type = "tool_result", content = { { type = "text", text = "12345678" } } } } } } }))
    assert.are.equal(1, estimate.estimatePromptTokens({ prompt = "abc" }))
    assert.are.equal(2, estimate.estimatePromptTokens({ input = { "abcd", "efgh" } }))
    assert.are.equal(1 + 4, estimate.estimatePromptTokens({ input = { { role = "user", content = "hi" } } }))
  end)

  it("prompt: a body that is not JSON counts ceil(bytes / 4)", function()
    assert.are.equal(4, estimate.estimatePromptTokensFromBody("not json at all")) -- 15 bytes
    assert.are.equal(0, estimate.estimatePromptTokensFromBody(""))
    assert.are.equal(0, estimate.estimatePromptTokensFromBody(nil))
    assert.are.equal(0, estimate.estimatePromptTokens("string"))
  end)
end)
