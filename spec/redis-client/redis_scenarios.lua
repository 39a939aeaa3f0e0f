-- Runs inside the nginx that spec/redis-client/redis-client.test.ts starts:
-- each ?case= drives resty.redis against a real redis-server and answers
-- with JSON. Every call is recorded as { r = result, e = err }: a nil result
-- is an absent "r", ngx.null a JSON null.
local redis = require "resty.redis"
local cjson = require "cjson"

local _M = {}


local function call(steps, name, ...)
  local res, err = ...
  steps[name] = { r = res, e = err }
  return res, err
end


local function connect(steps, opts)
  local red = assert(redis:new())
  red:set_timeouts(1000, 1000, 1000)
  local host = "127.0.0.1"
  local port = tonumber(ngx.var.arg_port)
  call(steps, "connect", red:connect(host, port, opts))
  return red
end


local cases = {}


function cases.basic(steps)
  local red = connect(steps)
  if not steps.connect.r then
    return
  end
  local key = "k:" .. ngx.var.arg_tag
  call(steps, "ping", red:ping())
  call(steps, "set", red:set(key, "v1"))
  call(steps, "get", red:get(key))
  call(steps, "get_missing", red:get(key .. ":missing"))
  call(steps, "set_num", red:set(key .. ":n", 10))
  call(steps, "incrby", red:incrby(key .. ":n", 5))
  call(steps, "expire", red:expire(key .. ":n", 100))
  call(steps, "ttl", red:ttl(key .. ":n"))
  call(steps, "pttl", red:pttl(key .. ":n"))
  call(steps, "hset", red:hset(key .. ":h", "f", "x"))
  call(steps, "hget", red:hget(key .. ":h", "f"))
  call(steps, "hget_missing", red:hget(key .. ":h", "nope"))
  call(steps, "del", red:del(key, key .. ":n", key .. ":h", key .. ":absent"))
  call(steps, "incr_wrongtype", red:set(key, "abc"))
  call(steps, "incr_not_int", red:incr(key))
  call(steps, "lpush_wrongtype", red:lpush(key, "x"))
  call(steps, "wrong_arity", red:get())
  call(steps, "unknown_command", red:nosuchcommand("x"))
  call(steps, "after_errors", red:get(key))
  call(steps, "binary_set", red:set(key .. ":bin", "a\r\nb\0c"))
  call(steps, "binary_get", red:get(key .. ":bin"))
  local big = string.rep("0123456789", 100000)
  red:set(key .. ":big", big)
  local got = red:get(key .. ":big")
  steps.big_roundtrip = { r = got == big, e = got and #got or nil }
  call(steps, "big_int", red:incrby(key .. ":bigint", 1e15))
  call(steps, "close", red:close())
  call(steps, "after_close", red:get(key))
end


function cases.eval(steps)
  local red = connect(steps)
  if not steps.connect.r then
    return
  end
  local key = "e:" .. ngx.var.arg_tag
  -- the shape of a rate limiter's INCR-then-EXPIRE script
  local script = "local v = redis.call('incrby', KEYS[1], ARGV[1]) "
              .. "if v == tonumber(ARGV[1]) then redis.call('expire', KEYS[1], ARGV[2]) end "
              .. "return v"
  call(steps, "eval1", red:eval(script, 1, key, 3, 60))
  call(steps, "eval2", red:eval(script, 1, key, 4, 60))
  call(steps, "ttl", red:ttl(key))
  local sha = red:script("load", script)
  steps.sha_len = { r = type(sha) == "string" and #sha or sha }
  call(steps, "evalsha", red:evalsha(sha, 1, key, 1, 60))
  call(steps, "evalsha_unknown", red:evalsha(string.rep("0", 40), 0))
  call(steps, "nested", red:eval("return {1, {2, 'x'}, redis.error_reply('boom'), 'end'}", 0))
  call(steps, "eval_error", red:eval("return redis.call('incr', KEYS[1], 'extra')", 1, key))
  call(steps, "eval_nil", red:eval("return false", 0))
  call(steps, "blpop_null_array", red:blpop(key .. ":list", 0.05))
  red:close()
end


function cases.select(steps)
  local red = connect(steps)
  if not steps.connect.r then
    return
  end
  local key = "s:" .. ngx.var.arg_tag
  call(steps, "select1", red:select(1))
  call(steps, "set_db1", red:set(key, "in-db1"))
  call(steps, "select0", red:select(0))
  call(steps, "get_db0", red:get(key))
  call(steps, "select1_again", red:select(1))
  call(steps, "get_db1", red:get(key))
  call(steps, "select_bad", red:select(99999))
  red:close()
end


function cases.pipeline(steps)
  local red = connect(steps)
  if not steps.connect.r then
    return
  end
  local key = "p:" .. ngx.var.arg_tag
  red:init_pipeline()
  local queued = { red:set(key, "x"), red:incrby(key .. ":n", 2) }
  steps.queued_returns_nil = { r = #queued == 0 and queued[1] == nil }
  red:incr(key)            -- error reply inside the pipeline
  red:get(key)
  red:expire(key .. ":n", 60)
  call(steps, "commit", red:commit_pipeline())
  call(steps, "commit_again", red:commit_pipeline())
  red:init_pipeline()
  red:set(key, "never-sent")
  red:cancel_pipeline()
  call(steps, "after_cancel", red:get(key))
  red:close()
end


function cases.keepalive(steps)
  local opts = ngx.var.arg_pool and { pool = ngx.var.arg_pool, pool_size = 5, backlog = 2 } or nil
  local red = connect(steps, opts)
  if not steps.connect.r then
    return
  end
  call(steps, "reused_first", red:get_reused_times())
  call(steps, "keepalive", red:set_keepalive(10000, 10))
  call(steps, "after_keepalive", red:get("x"))

  local red2 = assert(redis:new())
  red2:set_timeouts(1000, 1000, 1000)
  call(steps, "connect2", red2:connect("127.0.0.1", tonumber(ngx.var.arg_port), opts))
  call(steps, "reused_second", red2:get_reused_times())
  call(steps, "ping2", red2:ping())
  call(steps, "keepalive2", red2:set_keepalive(10000, 10))
end


function cases.auth(steps)
  local red = connect(steps)
  if not steps.connect.r then
    return
  end
  call(steps, "before_auth", red:get("a"))
  call(steps, "auth_wrong", red:auth("not-the-password"))
  call(steps, "auth_right", red:auth(ngx.var.arg_password))
  call(steps, "after_auth", red:set("a", "1"))
  red:close()
end


function cases.timeout(steps)
  local red = assert(redis:new())
  red:set_timeouts(1000, 1000, 150)
  call(steps, "connect", red:connect("127.0.0.1", tonumber(ngx.var.arg_port)))
  if not steps.connect.r then
    return
  end
  local started = ngx.now()
  -- BLPOP waits 2 s server-side; the 150 ms read timeout fires first
  call(steps, "blpop", red:blpop("t:" .. ngx.var.arg_tag, 2))
  ngx.update_time()
  steps.elapsed_ms = { r = math.floor((ngx.now() - started) * 1000) }
  call(steps, "after_timeout", red:get("x"))

  local red2 = assert(redis:new())
  red2:set_timeout(100)
  call(steps, "connect2", red2:connect("127.0.0.1", tonumber(ngx.var.arg_port)))
  call(steps, "ping2", red2:ping())
  red2:close()
end


function cases.refused(steps)
  connect(steps)
end


function _M.run()
  local case = cases[ngx.var.arg_case]
  if not case then
    ngx.status = 404
    ngx.say(cjson.encode({ error = "no such case" }))
    return
  end
  local steps = {}
  local ok, err = pcall(case, steps)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ ok = ok, error = not ok and tostring(err) or nil, steps = steps }))
end


return _M
