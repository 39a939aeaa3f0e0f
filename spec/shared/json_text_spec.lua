local json_text = require("kong.plugins.ai-gateway-shared.json_text")
local cjson = require("cjson")
local chunking = require("chunking")

describe("json_text", function()
  it("jsonStringChars counts characters of a JSON string, escapes as one, and finds its end", function()
    local cases = { "plain", "", "模型 🚀 é", 'q\\"uote', "back\\\\slash", "nl\\n tab\\t", "\\u00e9\\u6a21", "pair \\ud83d\\ude80 end", "\\\\\\\"" }
    for _, body in ipairs(cases) do
      local s = 'x:"' .. body .. '",y'
      local chars, close = json_text.jsonStringChars(s, 3)
      assert.are.equal(chunking.utf8_chars(cjson.decode('"' .. body .. '"')), chars, body)
      assert.are.equal(#s - 2, close, body)
    end
    local chars, close = json_text.jsonStringChars('"unterminated', 1)
    assert.are.equal(12, chars)
    assert.is_nil(close)
  end)

  it("sumStringValues adds string values of matching keys and tells 'no key' (-1) from empty (0)", function()
    local s = '{"delta":{"content":"ab"},"x":{"reasoning_content":"cde"},"content":null,"t":"content","content" : "f"}'
    assert.are.equal(6, json_text.sumStringValues(s, 'content"'))
    assert.are.equal(-1, json_text.sumStringValues('{"a":"content"}', 'content"'))
    assert.are.equal(0, json_text.sumStringValues('{"content":""}', 'content"'))
    assert.are.equal(-1, json_text.sumStringValues('{"content":[{"type":"text"}]}', 'content"'))
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
