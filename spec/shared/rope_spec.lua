local rope = require("kong.plugins.ai-gateway-shared.rope")
local chunking = require("chunking")

describe("rope", function()
  local make = rope.newRope

  it("gives back exactly what was pushed, in order, whatever the piece sizes", function()
    local s = ""
    for k = 1, 3000 do s = s .. string.char(33 + k % 90) end
    for _, size in ipairs({ 1, 2, 7, 63, 64, 65, 1000, 5000 }) do
      local p = make()
      for _, piece in ipairs(chunking.fixed(s, size)) do p:push(piece) end
      assert.are.equal(#s, p.bytes)
      assert.are.equal(s, p:take())
      assert.are.equal(0, p.bytes)
      assert.is_true(p:isEmpty())
      assert.are.equal("", p:take())
    end
  end)

  it("keepLast keeps the last bytes and goes on appending", function()
    local p = make()
    for _, piece in ipairs(chunking.fixed(string.rep("0123456789", 100), 3)) do p:push(piece) end
    p:keepLast(25)
    p:push("END")
    assert.are.equal(string.rep("0123456789", 100):sub(-25) .. "END", p:take())
  end)

  it("holds a large string pushed a byte at a time in few table slots and near-linear time", function()
    local p = make()
    local t0 = os.clock()
    for _ = 1, 1024 * 1024 do p:push("x") end
    local s = p:take()
    assert.are.equal(1024 * 1024, #s)
    assert.is_true(os.clock() - t0 < 3, "took " .. (os.clock() - t0) .. " s")
  end)
end)
