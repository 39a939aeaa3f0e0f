local json_text = require("kong.plugins.ai-gateway-shared.json_text")
local needle = require("kong.plugins.ai-gateway-shared.needle")

describe("json_text", function()
  it("jsonStringEnd finds the closing quote of a JSON string, escaped quotes skipped", function()
    local cases = { "plain", "", "模型 🚀 é", 'q\\"uote', "back\\\\slash", "nl\\n tab\\t", "\\u00e9\\u6a21", "\\\\\\\"" }
    for _, body in ipairs(cases) do
      local s = 'x:"' .. body .. '",y'
      assert.are.equal(#s - 2, json_text.jsonStringEnd(s, 3), body)
      assert.are.equal(#s - 2, json_text.jsonStringEnd(s, 3, needle.newNeedle("\\")), body)
    end
    assert.is_nil(json_text.jsonStringEnd('"unterminated', 1))
    assert.is_nil(json_text.jsonStringEnd('"ends in an escape\\"', 1))
  end)

  it("sumStringBytes adds the bytes of string values of matching keys and tells 'no key' (-1) from empty (0)", function()
    local s = '{"delta":{"content":"ab"},"x":{"reasoning_content":"c\\"e"},"content":null,"t":"content","content" : "f"}'
    assert.are.equal(2 + 4 + 1, json_text.sumStringBytes(s, 'content"'))
    assert.are.equal(-1, json_text.sumStringBytes('{"a":"content"}', 'content"'))
    assert.are.equal(0, json_text.sumStringBytes('{"content":""}', 'content"'))
    assert.are.equal(-1, json_text.sumStringBytes('{"content":[{"type":"text"}]}', 'content"'))
  end)

  it("keyIs tells a key by its length, first and last letter, without a loop", function()
    local s = '{"prompt_tokens":1,"completion_tokens":2,"cached_tokens":3,"input_tokens":4,"image_tokens":5}'
    local function at(key) return (s:find(key .. "_tokens", 1, true)) + #key end
    assert.is_true(json_text.keyIs(s, at('"prompt'), "prompt"))
    assert.is_true(json_text.keyIs(s, at('"completion'), "completion"))
    assert.is_false(json_text.keyIs(s, at('"cached'), "completion"))
    assert.is_false(json_text.keyIs(s, at('"cached'), "prompt"))
    assert.is_true(json_text.keyIs(s, at('"input'), "input"))
    assert.is_false(json_text.keyIs(s, at('"image'), "input"))
  end)

  it("integerAt reads a plain count and nothing else", function()
    assert.are.equal(123, json_text.integerAt('x:123,', 3))
    assert.are.equal(0, json_text.integerAt('0}', 1))
    assert.is_nil(json_text.integerAt('1.5', 1))
    assert.is_nil(json_text.integerAt('1e3', 1))
    assert.is_nil(json_text.integerAt('-1', 1))
    assert.is_nil(json_text.integerAt('null', 1))
  end)

  it("hasNonNullKey and valueIsNull look at the value after the colon", function()
    assert.is_false(json_text.hasNonNullKey('{"finish_reason":null,"x":"finish_reason"}', '_reason"'))
    assert.is_true(json_text.hasNonNullKey('{"finish_reason" : "stop"}', '_reason"'))
    assert.is_true(json_text.hasNonNullKey('{"a":null,"stop_reason":"end_turn"}', '_reason"'))
    assert.is_false(json_text.hasNonNullKey('{"text":"my_reason"}', '_reason"'))
    assert.is_true(json_text.valueIsNull('"usage": null', 7))
    assert.is_false(json_text.valueIsNull('"usage":{}', 7))
  end)

  it("lastObjectOfKey finds the last real object of a key, braces in strings included", function()
    local s = 'x":"a \\"usage\\":{1}","usage":{"a":"}{","b":{"c":1}},"more":1'
    assert.are.equal('{"a":"}{","b":{"c":1}}', json_text.lastObjectOfKey(s, "usage"))
    assert.is_nil(json_text.lastObjectOfKey('"usage":{"a":1', "usage"))
    assert.is_nil(json_text.lastObjectOfKey('"usage":null', "usage"))
  end)

  it("lastNumberOfKey and lastStringOfKey", function()
    assert.are.equal(11, json_text.lastNumberOfKey('"eval_count":3,"prompt_eval_count":9,"eval_count": 11', "eval_count"))
    assert.is_nil(json_text.lastNumberOfKey('"eval_count":null', "eval_count"))
    assert.are.equal("length", json_text.lastStringOfKey('"finish_reason":"stop","finish_reason": "length"', "finish_reason"))
  end)
end)
