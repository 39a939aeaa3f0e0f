-- A Redis client for the local gateway with lua-resty-redis's API and return
-- conventions (Kong bundles lua-resty-redis; Debian does not package it).
-- Written for this project over ngx.socket.tcp; the RESP2 encoder and
-- reader are plain functions over a socket-like object, so busted can test
-- them with a fake socket.
--
-- Return conventions, as lua-resty-redis:
--   status reply  -> the string without "+"            ("OK", "PONG")
--   integer reply -> a Lua number
--   bulk reply    -> a Lua string; a nil bulk -> ngx.null
--   array reply   -> a Lua table (nested arrays as tables); nil array -> ngx.null;
--                    an error element inside it -> { false, "ERR ..." }
--   error reply   -> false, "ERR ..." (the connection stays usable)
--   network error -> nil, "closed" | "timeout" | "connection refused" | ...
-- commit_pipeline returns one entry per queued command, error replies as
-- { false, "ERR ..." }, or nil and the network error.
local cjson = require "cjson"

local ngx = ngx -- luacheck: ignore 113
local sub = string.sub
local byte = string.byte
local format = string.format
local floor = math.floor
local concat = table.concat
local type = type
local pairs = pairs
local select = select
local unpack = unpack
local rawget = rawget
local tonumber = tonumber
local tostring = tostring
local setmetatable = setmetatable

local null = (ngx and ngx.null) or cjson.null

local ok_new_tab, new_tab = pcall(require, "table.new")
if not ok_new_tab or type(new_tab) ~= "function" then
  new_tab = function() return {} end
end

-- Redis integers are 64-bit; tostring() would write 1e+15 for large ones.
local MAX_INT = 2 ^ 63

local _M = new_tab(0, 32)
_M._VERSION = "0.30"

local mt = { __index = _M }


-- RESP2 encoding ------------------------------------------------------------

--- The request for one command as an array of string pieces (what
-- sock:send accepts): *<n>\r\n then $<len>\r\n<arg>\r\n per argument.
local function gen_req(args)
  local nargs = #args
  local req = new_tab(nargs * 5 + 3, 0)
  req[1] = "*"
  req[2] = tostring(nargs)
  req[3] = "\r\n"
  local n = 4

  for i = 1, nargs do
    local arg = args[i]
    local typ = type(arg)
    if typ == "number" and arg == floor(arg) and (arg >= 1e14 or arg <= -1e14)
       and arg < MAX_INT and arg > -MAX_INT then
      arg = format("%.0f", arg)
    elseif typ ~= "string" then
      arg = tostring(arg)
    end

    req[n] = "$"
    req[n + 1] = tostring(#arg)
    req[n + 2] = "\r\n"
    req[n + 3] = arg
    req[n + 4] = "\r\n"
    n = n + 5
  end

  return req
end
_M._gen_req = gen_req


--- The wire bytes of one command, as a string.
function _M._encode_command(...)
  return concat(gen_req({ ... }))
end


-- RESP2 decoding ------------------------------------------------------------

--- Read one reply from `sock` (anything with lua-nginx-module's
-- receive("*l") / receive(n) and close()).
-- @param keep_on_timeout true while subscribed: a read timeout is then a
--        normal "no message yet" and the connection stays open
-- @return value, or false and the Redis error, or nil and the network error
local function read_reply(sock, keep_on_timeout)
  local line, err = sock:receive()
  if not line then
    if err == "timeout" and not keep_on_timeout then
      sock:close()
    end
    return nil, err
  end

  local prefix = byte(line)

  if prefix == 36 then -- "$" bulk string
    local size = tonumber(sub(line, 2))
    if not size then
      return nil, "bad bulk length: " .. line
    end
    if size < 0 then
      return null
    end

    local data
    data, err = sock:receive(size)
    if not data then
      if err == "timeout" then
        sock:close()
      end
      return nil, err
    end

    local crlf
    crlf, err = sock:receive(2)
    if not crlf then
      if err == "timeout" then
        sock:close()
      end
      return nil, err
    end

    return data

  elseif prefix == 43 then -- "+" status
    return sub(line, 2)

  elseif prefix == 42 then -- "*" array
    local n = tonumber(sub(line, 2))
    if not n then
      return nil, "bad array length: " .. line
    end
    if n < 0 then
      return null
    end

    local vals = new_tab(n, 0)
    local nvals = 0
    for _ = 1, n do
      local res, rerr = read_reply(sock, keep_on_timeout)
      if res then
        nvals = nvals + 1
        vals[nvals] = res
      elseif res == nil then
        return nil, rerr
      else
        -- an error reply inside an array
        nvals = nvals + 1
        vals[nvals] = { false, rerr }
      end
    end
    return vals

  elseif prefix == 58 then -- ":" integer
    return tonumber(sub(line, 2))

  elseif prefix == 45 then -- "-" error
    return false, sub(line, 2)

  else
    return nil, "unknown prefix: \"" .. tostring(prefix) .. "\""
  end
end
_M._read_reply = read_reply


-- Connection -----------------------------------------------------------------

function _M.new(_)
  local sock, err = ngx.socket.tcp()
  if not sock then
    return nil, err
  end
  return setmetatable({ _sock = sock, _subscribed = false }, mt)
end


function _M.set_timeout(self, timeout)
  local sock = rawget(self, "_sock")
  if not sock then
    error("not initialized", 2)
  end
  sock:settimeout(timeout)
end


function _M.set_timeouts(self, connect_timeout, send_timeout, read_timeout)
  local sock = rawget(self, "_sock")
  if not sock then
    error("not initialized", 2)
  end
  sock:settimeouts(connect_timeout, send_timeout, read_timeout)
end


--- connect(host, port, opts?) or connect("unix:/path", opts?).
-- opts: pool, pool_size, backlog (passed to the cosocket), ssl, ssl_verify,
-- server_name (TLS handshake after connecting).
function _M.connect(self, host, port_or_opts, opts)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end

  local typ = type(host)
  if typ ~= "string" then
    error("bad argument #1 host: string expected, got " .. typ, 2)
  end

  local unix = sub(host, 1, 5) == "unix:"
  if unix then
    typ = type(port_or_opts)
    if port_or_opts ~= nil and typ ~= "table" then
      error("bad argument #2 opts: nil or table expected, got " .. typ, 2)
    end
    opts = port_or_opts
  else
    typ = type(port_or_opts)
    if typ ~= "number" then
      port_or_opts = tonumber(port_or_opts)
      if port_or_opts == nil then
        error("bad argument #2 port: number expected, got " .. typ, 2)
      end
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #3 opts: nil or table expected, got " .. type(opts), 2)
    end
  end

  self._subscribed = false

  local ok, err
  if unix then
    if opts ~= nil then
      ok, err = sock:connect(host, opts)
    else
      ok, err = sock:connect(host)
    end
  else
    ok, err = sock:connect(host, port_or_opts, opts)
  end
  if not ok then
    return ok, err
  end

  if opts and opts.ssl then
    ok, err = sock:sslhandshake(false, opts.server_name, opts.ssl_verify)
    if not ok then
      return ok, "failed to do ssl handshake: " .. tostring(err)
    end
  end

  return ok, err
end


function _M.set_keepalive(self, ...)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end
  if rawget(self, "_subscribed") then
    return nil, "subscribed state"
  end
  return sock:setkeepalive(...)
end


function _M.get_reused_times(self)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end
  return sock:getreusedtimes()
end


local function close(self)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end
  return sock:close()
end
_M.close = close


-- Commands -------------------------------------------------------------------

local function do_cmd(self, ...)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end

  local req = gen_req({ ... })

  local reqs = rawget(self, "_reqs")
  if reqs then
    reqs[#reqs + 1] = req
    return
  end

  local bytes, err = sock:send(req)
  if not bytes then
    return nil, err
  end

  return read_reply(sock, rawget(self, "_subscribed"))
end


function _M.hmset(self, hashname, ...)
  if select("#", ...) == 1 then
    local t = ...
    local array = {}
    for k, v in pairs(t) do
      array[#array + 1] = k
      array[#array + 1] = v
    end
    return do_cmd(self, "hmset", hashname, unpack(array))
  end
  return do_cmd(self, "hmset", hashname, ...)
end


function _M.hmget(self, hashname, ...)
  if select("#", ...) == 1 and type((...)) == "table" then
    return do_cmd(self, "hmget", hashname, unpack((...)))
  end
  return do_cmd(self, "hmget", hashname, ...)
end


function _M.array_to_hash(_, t)
  local h = {}
  for i = 1, #t, 2 do
    h[t[i]] = t[i + 1]
  end
  return h
end


-- Pipelines ------------------------------------------------------------------

function _M.init_pipeline(self, n)
  self._reqs = new_tab(n or 4, 0)
end


function _M.cancel_pipeline(self)
  self._reqs = nil
end


function _M.commit_pipeline(self)
  local reqs = rawget(self, "_reqs")
  if not reqs then
    return nil, "no pipeline"
  end
  self._reqs = nil

  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end

  -- one send for the whole batch
  local all = {}
  for i = 1, #reqs do
    local req = reqs[i]
    for j = 1, #req do
      all[#all + 1] = req[j]
    end
  end

  local bytes, err = sock:send(all)
  if not bytes then
    return nil, err
  end

  local nreqs = #reqs
  local vals = new_tab(nreqs, 0)
  for i = 1, nreqs do
    local res, rerr = read_reply(sock, false)
    if res then
      vals[i] = res
    elseif res == nil then
      if rerr == "timeout" then
        close(self)
      end
      return nil, rerr
    else
      vals[i] = { false, rerr }
    end
  end

  return vals
end


-- Pub/Sub ----------------------------------------------------------------------

local function subscribe_cmd(cmd)
  return function(self, ...)
    self._subscribed = true
    local nargs = select("#", ...)
    local res, err = do_cmd(self, cmd, ...)
    if not res then
      return nil, err
    end
    if nargs <= 1 then
      return res
    end
    local results = { res }
    local sock = rawget(self, "_sock")
    for i = 2, nargs do
      res, err = read_reply(sock, true)
      if not res then
        return nil, err
      end
      results[i] = res
    end
    return results
  end
end

local function unsubscribe_cmd(cmd)
  return function(self, ...)
    if not rawget(self, "_subscribed") then
      return nil, "not subscribed"
    end
    local nargs = select("#", ...)
    local res, err = do_cmd(self, cmd, ...)
    if not res then
      return nil, err
    end
    local results = { res }
    local sock = rawget(self, "_sock")
    -- one reply per channel; the last one reports 0 subscriptions left
    while type(res) == "table" and res[3] ~= 0 and (nargs == 0 or #results < nargs) do
      res, err = read_reply(sock, true)
      if not res then
        return nil, err
      end
      results[#results + 1] = res
    end
    if type(res) == "table" and res[3] == 0 then
      self._subscribed = false
    end
    if nargs <= 1 and #results == 1 then
      return results[1]
    end
    return results
  end
end

_M.subscribe = subscribe_cmd("subscribe")
_M.psubscribe = subscribe_cmd("psubscribe")
_M.unsubscribe = unsubscribe_cmd("unsubscribe")
_M.punsubscribe = unsubscribe_cmd("punsubscribe")


function _M.read_reply(self)
  local sock = rawget(self, "_sock")
  if not sock then
    return nil, "not initialized"
  end
  if not rawget(self, "_subscribed") then
    return nil, "not subscribed"
  end
  local res, err = read_reply(sock, true)
  if type(res) == "table" and (res[1] == "unsubscribe" or res[1] == "punsubscribe")
     and res[3] == 0 then
    self._subscribed = false
  end
  return res, err
end


--- Deprecated in lua-resty-redis (methods are generated on demand) but kept.
function _M.add_commands(...)
  local cmds = { ... }
  for i = 1, #cmds do
    local cmd = cmds[i]
    _M[cmd] = function(self, ...)
      return do_cmd(self, cmd, ...)
    end
  end
end


-- Any other method name is a Redis command: red:incrby("k", 2) sends INCRBY.
setmetatable(_M, {
  __index = function(_, cmd)
    if type(cmd) ~= "string" then
      return nil
    end
    local method = function(self, ...)
      return do_cmd(self, cmd, ...)
    end
    _M[cmd] = method
    return method
  end,
})


return _M
