-- The RESP2 encoder and reply reader of the gateway's resty.redis, driven
-- with a fake socket (the real cosocket only exists inside nginx; the
-- vitest spec spec/redis-client/redis-client.test.ts covers that).
local redis = require "resty.redis"
local cjson = require "cjson"

local null = cjson.null


-- Serves `wire` to receive("*l") / receive(n) like an ngx cosocket, and
-- records what is sent. `fail_at` makes a receive at that byte offset
-- return nil, err.
local function fake_socket(wire, opts)
  opts = opts or {}
  local pos = 1
  local sock = { sent = {}, closed = false }

  function sock.receive(_, pattern)
    if opts.fail_at and pos >= opts.fail_at then
      return nil, opts.err or "timeout"
    end
    if pattern == nil or pattern == "*l" then
      local s, e = wire:find("\r\n", pos, true)
      if not s then
        return nil, "closed"
      end
      local line = wire:sub(pos, s - 1)
      pos = e + 1
      return line
    end
    if pos + pattern - 1 > #wire then
      return nil, "closed"
    end
    local data = wire:sub(pos, pos + pattern - 1)
    pos = pos + pattern
    return data
  end

  function sock.send(_, data)
    if opts.send_err then
      return nil, opts.send_err
    end
    if type(data) == "table" then
      data = table.concat(data)
    end
    sock.sent[#sock.sent + 1] = data
    return #data
  end

  function sock.close()
    sock.closed = true
    return 1
  end

  function sock.remaining()
    return wire:sub(pos)
  end

  return sock
end


-- A client object wired to a fake socket, as redis:new() would give.
local function client(wire, opts)
  local sock = fake_socket(wire, opts)
  local red = setmetatable({ _sock = sock, _subscribed = false }, { __index = redis })
  return red, sock
end


describe("RESP2 encoding", function()
  it("writes a command as an array of bulk strings", function()
    assert.equal("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
                 redis._encode_command("SET", "key", "value"))
  end)

  it("counts bytes, not characters, and keeps binary data intact", function()
    assert.equal("*2\r\n$3\r\nget\r\n$6\r\nclé\r\n\r\n", redis._encode_command("get", "clé\r\n"))
    assert.equal("*2\r\n$4\r\necho\r\n$3\r\na\0b\r\n", redis._encode_command("echo", "a\0b"))
  end)

  it("writes numbers as their decimal text, large integers without exponent", function()
    assert.equal("*3\r\n$6\r\nincrby\r\n$1\r\nk\r\n$2\r\n-5\r\n", redis._encode_command("incrby", "k", -5))
    assert.equal("*2\r\n$4\r\necho\r\n$16\r\n1000000000000000\r\n", redis._encode_command("echo", 1e15))
    assert.equal("*2\r\n$4\r\necho\r\n$3\r\n1.5\r\n", redis._encode_command("echo", 1.5))
  end)

  it("writes an empty string argument as a zero-length bulk", function()
    assert.equal("*2\r\n$3\r\nset\r\n$0\r\n\r\n", redis._encode_command("set", ""))
  end)

  it("writes a command with no arguments", function()
    assert.equal("*1\r\n$4\r\nPING\r\n", redis._encode_command("PING"))
  end)
end)


describe("RESP2 replies", function()
  local read = redis._read_reply

  it("status reply: the text without '+'", function()
    assert.equal("OK", read(fake_socket("+OK\r\n")))
  end)

  it("error reply: false and the message without '-'", function()
    local res, err = read(fake_socket("-ERR wrong number of arguments for 'get' command\r\n"))
    assert.equal(false, res)
    assert.equal("ERR wrong number of arguments for 'get' command", err)
  end)

  it("integer reply: a number, negative ones too", function()
    assert.equal(42, read(fake_socket(":42\r\n")))
    assert.equal(-2, read(fake_socket(":-2\r\n")))
    assert.equal(0, read(fake_socket(":0\r\n")))
  end)

  it("bulk reply: the exact bytes, CRLF inside included", function()
    assert.equal("a\r\nb", read(fake_socket("$4\r\na\r\nb\r\n")))
    assert.equal("", read(fake_socket("$0\r\n\r\n")))
  end)

  it("null bulk and null array: ngx.null", function()
    assert.equal(null, read(fake_socket("$-1\r\n")))
    assert.equal(null, read(fake_socket("*-1\r\n")))
  end)

  it("array reply, nested, with nulls and an error element", function()
    local wire = "*5\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n+OK\r\n:7\r\n-WRONGTYPE bad\r\n"
    local res = read(fake_socket(wire))
    assert.same({ 1, "foo", null, { "OK", 7 }, { false, "WRONGTYPE bad" } }, res)
  end)

  it("empty array", function()
    assert.same({}, read(fake_socket("*0\r\n")))
  end)

  it("reads exactly one reply and leaves the next one on the socket", function()
    local sock = fake_socket("$3\r\nabc\r\n:5\r\n")
    assert.equal("abc", read(sock))
    assert.equal(":5\r\n", sock.remaining())
  end)

  it("an unknown prefix is a protocol error", function()
    local res, err = read(fake_socket("?what\r\n"))
    assert.is_nil(res)
    assert.equal('unknown prefix: "63"', err)
  end)

  it("a closed connection returns nil, 'closed'", function()
    local res, err = read(fake_socket(""))
    assert.is_nil(res)
    assert.equal("closed", err)
  end)

  it("a read timeout closes the socket (unless subscribed)", function()
    local sock = fake_socket("+OK\r\n", { fail_at = 1, err = "timeout" })
    local res, err = read(sock)
    assert.is_nil(res)
    assert.equal("timeout", err)
    assert.is_true(sock.closed)

    local sub = fake_socket("+OK\r\n", { fail_at = 1, err = "timeout" })
    read(sub, true)
    assert.is_false(sub.closed)
  end)

  it("a timeout in the middle of a bulk closes the socket too", function()
    local sock = fake_socket("$10\r\n0123456789\r\n", { fail_at = 6, err = "timeout" })
    local res, err = read(sock)
    assert.is_nil(res)
    assert.equal("timeout", err)
    assert.is_true(sock.closed)
  end)

  it("a network error inside an array fails the whole reply", function()
    local res, err = read(fake_socket("*2\r\n:1\r\n"))
    assert.is_nil(res)
    assert.equal("closed", err)
  end)
end)


describe("client methods over a fake socket", function()
  it("any method name is sent as that command", function()
    local red, sock = client(":3\r\n")
    assert.equal(3, red:incrby("counter", 2))
    assert.equal("*3\r\n$6\r\nincrby\r\n$7\r\ncounter\r\n$1\r\n2\r\n", sock.sent[1])
  end)

  it("a command error is false plus the message; the client stays usable", function()
    local red = client("-ERR unknown command 'nope'\r\n+PONG\r\n")
    local res, err = red:nope()
    assert.equal(false, res)
    assert.equal("ERR unknown command 'nope'", err)
    assert.equal("PONG", red:ping())
  end)

  it("a send failure is nil plus the socket's error", function()
    local red = client("", { send_err = "closed" })
    local res, err = red:get("k")
    assert.is_nil(res)
    assert.equal("closed", err)
  end)

  it("pipeline: commands are queued, sent in one write, and answered in order", function()
    local red, sock = client("+OK\r\n:2\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n")
    red:init_pipeline()
    assert.is_nil(red:set("a", "x"))
    assert.is_nil(red:incr("n"))
    assert.is_nil(red:incr("a"))
    assert.is_nil(red:get("a"))
    assert.equal(0, #sock.sent)
    local results = red:commit_pipeline()
    assert.equal(1, #sock.sent)
    assert.equal(redis._encode_command("set", "a", "x") .. redis._encode_command("incr", "n")
                 .. redis._encode_command("incr", "a") .. redis._encode_command("get", "a"), sock.sent[1])
    assert.same({ "OK", 2, { false, "ERR value is not an integer or out of range" }, "x" }, results)
  end)

  it("commit without init is 'no pipeline'; cancel drops the queue", function()
    local red, sock = client("+PONG\r\n")
    local res, err = red:commit_pipeline()
    assert.is_nil(res)
    assert.equal("no pipeline", err)

    red:init_pipeline()
    red:set("a", "b")
    red:cancel_pipeline()
    assert.equal("PONG", red:ping())
    assert.equal(redis._encode_command("ping"), sock.sent[1])
  end)

  it("a pipeline whose replies time out returns nil and closes the connection", function()
    local red, sock = client("+OK\r\n", { fail_at = 6, err = "timeout" })
    red:init_pipeline()
    red:set("a", "b")
    red:get("a")
    local res, err = red:commit_pipeline()
    assert.is_nil(res)
    assert.equal("timeout", err)
    assert.is_true(sock.closed)
  end)

  it("hmset takes a table, hmget a list", function()
    local red, sock = client("+OK\r\n*2\r\n$1\r\n1\r\n$-1\r\n")
    assert.equal("OK", red:hmset("h", { f = "1" }))
    assert.equal(redis._encode_command("hmset", "h", "f", "1"), sock.sent[1])
    assert.same({ "1", null }, red:hmget("h", { "f", "g" }))
    assert.equal(redis._encode_command("hmget", "h", "f", "g"), sock.sent[2])
  end)

  it("array_to_hash", function()
    assert.same({ a = "1", b = "2" }, redis:array_to_hash({ "a", "1", "b", "2" }))
  end)

  it("methods on an object without a socket say 'not initialized'", function()
    local red = setmetatable({}, { __index = redis })
    assert.same({ nil, "not initialized" }, { red:get("k") })
    assert.same({ nil, "not initialized" }, { red:connect("127.0.0.1", 6379) })
    assert.same({ nil, "not initialized" }, { red:set_keepalive(1000, 10) })
    assert.same({ nil, "not initialized" }, { red:get_reused_times() })
    assert.same({ nil, "not initialized" }, { red:close() })
    assert.has_error(function() red:set_timeout(100) end, "not initialized")
  end)

  it("connect checks its arguments like lua-resty-redis", function()
    local red = client("")
    assert.has_error(function() red:connect(nil, 6379) end, "bad argument #1 host: string expected, got nil")
    assert.has_error(function() red:connect("127.0.0.1", "x") end, "bad argument #2 port: number expected, got string")
    assert.has_error(function() red:connect("127.0.0.1", 6379, "opts") end,
                     "bad argument #3 opts: nil or table expected, got string")
  end)

  it("subscribe, read_reply and unsubscribe", function()
    local wire = "*3\r\n$9\r\nsubscribe\r\n$3\r\ndog\r\n:1\r\n"
              .. "*3\r\n$7\r\nmessage\r\n$3\r\ndog\r\n$5\r\nHello\r\n"
              .. "*3\r\n$11\r\nunsubscribe\r\n$3\r\ndog\r\n:0\r\n"
    local red = client(wire)
    assert.same({ nil, "not subscribed" }, { red:read_reply() })
    assert.same({ "subscribe", "dog", 1 }, red:subscribe("dog"))
    assert.same({ "message", "dog", "Hello" }, red:read_reply())
    assert.same({ nil, "subscribed state" }, { red:set_keepalive(100, 1) })
    assert.same({ "unsubscribe", "dog", 0 }, red:unsubscribe("dog"))
    assert.same({ nil, "not subscribed" }, { red:read_reply() })
  end)
end)
