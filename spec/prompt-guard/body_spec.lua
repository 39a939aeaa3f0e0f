-- prompt-guard request body classes: size, not JSON, invalid JSON, not an object.
local cjson = require "cjson.safe"
local body = require "kong.plugins.prompt-guard.body"

local function violation(raw)
  local value, v = body.decodeJsonObject(raw)
  assert.is_nil(value)
  return v
end

describe("prompt-guard body", function()
  it("decodes a JSON object", function()
    local value, v = body.decodeJsonObject('  {"messages":[{"role":"user","content":"hi"}]}\n')
    assert.is_nil(v)
    assert.equal("hi", value.messages[1].content)
  end)

  it("an empty body is invalid_json", function()
    for _, raw in ipairs({ "", "  \r\n\t" }) do
      assert.same({ reason = "invalid_json", code = "invalid_json", status = 400,
        message = "request body is empty: expected a JSON object" }, violation(raw))
    end
  end)

  it("a body that is not JSON at all is invalid_json: not JSON", function()
    for _, raw in ipairs({ "model=gpt&prompt=hi", "hello", "<xml/>" }) do
      local v = violation(raw)
      assert.same({ "invalid_json", 400, "request body is not JSON: expected a JSON object" }, { v.code, v.status, v.message })
    end
  end)

  it("broken JSON is invalid_json with the parser's position", function()
    for _, raw in ipairs({ '{"messages":[', '{"a":1,}', "[1,2", '{"a" 1}' }) do
      local v = violation(raw)
      assert.equal("invalid_json", v.code)
      assert.matches("^request body is not valid JSON: ", v.message)
    end
  end)

  it("a lone surrogate escape is invalid JSON (cjson refuses it, so no invalid UTF-8 comes from escapes)", function()
    assert.equal("invalid_json", violation('{"messages":[{"role":"user","content":"a\\ud800b"}]}').code)
  end)

  it("JSON that is not an object is invalid_request_body", function()
    for _, raw in ipairs({ "[]", "[{}]", '"a string"', "42", "true", "null" }) do
      local v = violation(raw)
      assert.same({ "invalid_request_body", 400, "request body must be a JSON object" }, { v.code, v.status, v.message })
    end
  end)

  it("the parser's error does not echo the body", function()
    local v = violation('{"messages":"secret words" oops}')
    assert.is_nil(v.message:find("secret", 1, true))
  end)

  it("a declared Content-Length over the limit is a 413 before reading", function()
    assert.is_nil(body.checkDeclaredLength(nil, 100))
    assert.is_nil(body.checkDeclaredLength("100", 100))
    assert.is_nil(body.checkDeclaredLength("garbage", 100))
    assert.same({ reason = "body_too_large", code = "body_too_large", status = 413,
      message = "request body too large: 101 bytes, at most 100 allowed" }, body.checkDeclaredLength("101", 100))
  end)

  it("maps get_raw_body's errors: a temp file over the limit is 413, anything else 500 without details", function()
    local v = body.readErrorViolation("request body file too big: 2000 > 1000", 1000)
    assert.same({ 413, "body_too_large", "request body too large: 2000 bytes, at most 1000 allowed" }, { v.status, v.code, v.message })
    v = body.readErrorViolation("failed to open cached request body '/tmp/x/0001': No such file", 1000)
    assert.same({ 500, "body_unreadable", "the request body could not be read" }, { v.status, v.code, v.message })
  end)

  it("only bodiless methods without a body have nothing to check", function()
    assert.is_true(body.nothingToCheck("GET", ""))
    assert.is_true(body.nothingToCheck("delete", ""))
    assert.is_false(body.nothingToCheck("GET", "{}"))
    assert.is_false(body.nothingToCheck("POST", ""))
  end)

  it("keeps cjson.null as the JSON null", function()
    local value = body.decodeJsonObject('{"prompt":null}')
    assert.equal(cjson.null, value.prompt)
  end)
end)
