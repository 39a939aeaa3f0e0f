local utf8 = require("kong.plugins.ai-gateway-shared.utf8")

describe("utf8", function()
  local long = string.rep("a", 100) .. "模型🚀é" .. string.rep("b", 100)

  it("utf8Length counts characters, short and long strings, and ranges", function()
    assert.are.equal(0, utf8.utf8Length(""))
    assert.are.equal(5, utf8.utf8Length("hello"))
    assert.are.equal(4, utf8.utf8Length("模型🚀é"))
    assert.are.equal(204, utf8.utf8Length(long))
    assert.are.equal(300, utf8.utf8Length(string.rep("x", 300)))
    assert.are.equal(2, utf8.utf8Length("a模型b", 2, 7))
    assert.are.equal(0, utf8.utf8Length("abc", 3, 2))
    -- Stray bytes count one each: never fewer characters than a limit expects.
    assert.are.equal(3, utf8.utf8Length("\255\254a"))
  end)

  it("utf8Prefix cuts on a character boundary", function()
    assert.are.equal("模", utf8.utf8Prefix("模型", 1))
    assert.are.equal("a模", utf8.utf8Prefix("a模型", 2))
    assert.are.equal("abc", utf8.utf8Prefix("abc", 5))
    assert.are.equal("", utf8.utf8Prefix("abc", 0))
    assert.are.equal(100 + 2, utf8.utf8Length(utf8.utf8Prefix(long, 102)))
  end)

  it("utf8Valid accepts UTF-8 and refuses broken sequences", function()
    assert.is_true(utf8.utf8Valid("plain"))
    assert.is_true(utf8.utf8Valid(long))
    assert.is_false(utf8.utf8Valid("\192\128")) -- overlong
    assert.is_false(utf8.utf8Valid("\237\160\128")) -- surrogate
    assert.is_false(utf8.utf8Valid("\244\144\128\128")) -- above U+10FFFF
    assert.is_false(utf8.utf8Valid("ab\230\168")) -- cut short
    assert.is_false(utf8.utf8Valid("\128"))
  end)
end)
