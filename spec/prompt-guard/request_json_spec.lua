-- ai-gateway-shared/request_json: the request body decoded once per request (added for prompt-guard).
local request_json = require "kong.plugins.ai-gateway-shared.request_json"

describe("request_json.decodeCached", function()
  it("decodes once for the same raw text", function()
    local cache = {}
    local raw = '{"messages":[{"role":"user","content":"hi"}]}'
    local first = request_json.decodeCached(cache, raw)
    local second = request_json.decodeCached(cache, raw)
    assert.equal("hi", first.messages[1].content)
    assert.equal(first, second)
  end)

  it("decodes again when the raw text changed (a plugin rewrote the body)", function()
    local cache = {}
    local a = request_json.decodeCached(cache, '{"a":1}')
    local b = request_json.decodeCached(cache, '{"a":2}')
    assert.same({ 1, 2 }, { a.a, b.a })
  end)

  it("caches the error of invalid JSON too", function()
    local cache = {}
    local value, err = request_json.decodeCached(cache, "{oops")
    assert.is_nil(value)
    assert.is_string(err)
    local _, again = request_json.decodeCached(cache, "{oops")
    assert.equal(err, again)
  end)
end)
