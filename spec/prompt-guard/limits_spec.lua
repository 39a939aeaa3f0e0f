-- prompt-guard size limits: message count and prompt length in UTF-8 characters.
local cjson = require "cjson.safe"
local limits = require "kong.plugins.prompt-guard.limits"

local function items(...)
  local out = {}
  for i, text in ipairs({ ... }) do out[i] = { text = text, role = "user", message_index = i - 1 } end
  return out
end

describe("prompt-guard limits", function()
  it("an unset limit (nil or JSON null) never refuses", function()
    assert.is_nil(limits.checkMessageCount(1e6, nil))
    assert.is_nil(limits.checkMessageCount(1e6, cjson.null))
    assert.is_nil(limits.checkPromptLength(items(string.rep("x", 1e5)), cjson.null))
  end)

  it("max_messages: equal passes, one more is refused", function()
    assert.is_nil(limits.checkMessageCount(3, 3))
    assert.same({ reason = "too_many_messages", message = "too many messages: 4, at most 3 allowed", actual = 4, limit = 3 },
      limits.checkMessageCount(4, 3))
  end)

  it("counts characters, not bytes", function()
    assert.equal(5, limits.promptLength(items("hello")))
    assert.equal(5, limits.promptLength(items("你好世界！")))           -- 15 bytes
    assert.equal(3, limits.promptLength(items("😀👍🎉")))              -- 12 bytes
    assert.equal(2, limits.promptLength(items("e\204\129")))          -- e + combining acute: 2 code points
  end)

  it("takes an ASCII text's bytes as its characters when the caller says it is ASCII", function()
    assert.equal(5, limits.promptLength(items("abc", "你好"), { true, false }))
    assert.equal(5, limits.promptLength(items("abc", "你好"), {}))
    -- the flag is trusted (the guard sets it from a scan): a wrong flag would count bytes
    assert.equal(6, limits.promptLength(items("你好"), { true }))
  end)

  it("sums the checked texts", function()
    assert.equal(7, limits.promptLength(items("ab", "你好", "😀😀😀")))
  end)

  it("max_prompt_length: a Chinese prompt at the limit passes, one character more is refused", function()
    assert.is_nil(limits.checkPromptLength(items("你好世界！"), 5))
    local v = limits.checkPromptLength(items("你好世界！！"), 5)
    assert.same({ "prompt_too_long", 6, 5 }, { v.reason, v.actual, v.limit })
    assert.equal("prompt too long: 6 characters, at most 5 allowed", v.message)
  end)

  it("an emoji prompt is measured in characters", function()
    assert.is_nil(limits.checkPromptLength(items(string.rep("😀", 100)), 100))
    assert.equal("prompt_too_long", limits.checkPromptLength(items(string.rep("😀", 101)), 100).reason)
  end)
end)
