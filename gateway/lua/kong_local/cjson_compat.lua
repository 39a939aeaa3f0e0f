-- OpenResty's lua-cjson (the one Kong ships) on top of Debian's lua-cjson 2.1.0, which lacks
-- OpenResty's additions: cjson.empty_array, array_mt, empty_array_mt,
-- encode_empty_table_as_object, decode_array_with_array_mt, encode_escape_forward_slash.
-- gateway/lua/cjson.lua and cjson/safe.lua load this so that plugins see Kong's cjson.
--
-- Encoding goes to the C module whenever the value holds none of the OpenResty markers (the
-- common case); otherwise the marked parts are encoded here and the rest by the C module.
-- decode_array_with_array_mt(true) decodes with dkjson, which can tag arrays.
local type = type
local pairs = pairs
local next = next
local getmetatable = getmetatable
local setmetatable = setmetatable
local tostring = tostring
local floor = math.floor
local concat = table.concat

local cpath = assert(package.searchpath("cjson", package.cpath), "lua-cjson (cjson.so) not found on package.cpath")

local _M = {}

-- shared by every instance, as in OpenResty's cjson (module-level statics there)
local array_mt = { __name = "cjson.array" }
local empty_array_mt = { __name = "cjson.empty_array" }
local empty_array = newproxy(false)

-- Each call gives a C instance with its own settings (lua_cjson_new). The raising variant is used
-- for cjson.safe too: the wrappers below turn its errors into nil, err.
local function load_c()
  local open = assert(package.loadlib(cpath, "luaopen_cjson"))
  return open()
end

-- errors raised through this file carry its position: keep the C module's bare message
local function clean(err)
  return (tostring(err):gsub("^.-cjson_compat%.lua:%d+: ", ""))
end

local function is_array_marked(t)
  local mt = getmetatable(t)
  return mt == array_mt or mt == empty_array_mt
end

--- Builds one cjson module table (cjson, cjson.safe, or what cjson.new() returns).
local function build(c, safe)
  local m = {}
  for k, v in pairs(c) do
    m[k] = v
  end
  m.array_mt = array_mt
  m.empty_array_mt = empty_array_mt
  m.empty_array = empty_array

  local empty_table_as_object = true
  local escape_forward_slash = true
  local decode_with_array_mt = false
  local sparse = { convert = false, ratio = 2, safe = 10 }

  local c_encode = c.encode
  local c_decode = c.decode

  function m.encode_empty_table_as_object(enabled)
    if enabled == nil then return empty_table_as_object end
    empty_table_as_object = not (enabled == false or enabled == "off")
    return empty_table_as_object
  end

  function m.encode_escape_forward_slash(enabled)
    if enabled == nil then return escape_forward_slash end
    escape_forward_slash = not (enabled == false or enabled == "off")
    return escape_forward_slash
  end

  function m.decode_array_with_array_mt(enabled)
    if enabled == nil then return decode_with_array_mt end
    decode_with_array_mt = not (enabled == false or enabled == "off")
    return decode_with_array_mt
  end

  function m.encode_sparse_array(convert, ratio, safe_len)
    if convert ~= nil then sparse.convert = convert end
    if ratio ~= nil then sparse.ratio = ratio end
    if safe_len ~= nil then sparse.safe = safe_len end
    return c.encode_sparse_array(convert, ratio, safe_len)
  end

  -- does encoding `v` need this module (markers, or empty tables encoded as arrays)?
  local function needs_lua(v, depth)
    if v == empty_array then return true end
    if type(v) ~= "table" then return false end
    if is_array_marked(v) then return true end
    if next(v) == nil then return not empty_table_as_object end
    if depth > 1000 then return false end -- let the C module report the depth error
    for k, val in pairs(v) do
      if (type(k) == "table" or k == empty_array) or needs_lua(val, depth + 1) then
        return true
      end
    end
    return false
  end

  local encode_value

  local function array_length(t)
    local max, items = 0, 0
    for k in pairs(t) do
      if type(k) ~= "number" or k < 1 or floor(k) ~= k then
        return -1
      end
      if k > max then max = k end
      items = items + 1
    end
    if sparse.ratio > 0 and max > sparse.safe and max > items * sparse.ratio then
      if sparse.convert then return -1 end
      error("Cannot serialise table: excessively sparse array", 0)
    end
    return max
  end

  local function encode_array(t, n, depth)
    local out = {}
    for i = 1, n do
      local v = t[i]
      out[i] = v == nil and "null" or encode_value(v, depth + 1)
    end
    return "[" .. concat(out, ",") .. "]"
  end

  encode_value = function(v, depth)
    if v == empty_array then
      return "[]"
    end
    if type(v) ~= "table" then
      return c_encode(v)
    end
    if depth > 1000 then
      error("Cannot serialise, excessive nesting (1001)", 0)
    end
    if is_array_marked(v) then
      return encode_array(v, #v, depth)
    end
    if next(v) == nil then
      return empty_table_as_object and "{}" or "[]"
    end
    if not needs_lua(v, depth) then
      return c_encode(v)
    end
    local n = array_length(v)
    if n > 0 then
      return encode_array(v, n, depth)
    end
    local out = {}
    for k, val in pairs(v) do
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" then
        error("Cannot serialise " .. tk .. ": table key must be a number or string", 0)
      end
      out[#out + 1] = c_encode(tostring(k)) .. ":" .. encode_value(val, depth + 1)
    end
    return "{" .. concat(out, ",") .. "}"
  end

  local function encode(v)
    local s
    if needs_lua(v, 0) then
      s = encode_value(v, 0)
    else
      s = c_encode(v)
    end
    if not escape_forward_slash and s:find("\\/", 1, true) then
      s = s:gsub("\\/", "/")
    end
    return s
  end

  local dkjson
  local function decode_tagged(s)
    dkjson = dkjson or require "dkjson"
    local value, pos, err = dkjson.decode(s, 1, c.null, nil, array_mt)
    if err then
      error(err, 0)
    end
    -- dkjson also tags objects when given nil: clear what is not an array
    local function fix(t)
      if type(t) ~= "table" then return end
      if getmetatable(t) ~= array_mt then setmetatable(t, nil) end
      for _, v in pairs(t) do fix(v) end
    end
    fix(value)
    local _ = pos
    return value
  end

  local function decode(s)
    if decode_with_array_mt then
      if type(s) ~= "string" then
        error("bad argument #1 to 'decode' (string expected, got " .. type(s) .. ")", 0)
      end
      return decode_tagged(s)
    end
    return c_decode(s)
  end

  if safe then
    m.encode = function(v)
      local ok, res = pcall(encode, v)
      if ok then return res end
      return nil, clean(res)
    end
    m.decode = function(str)
      local ok, res = pcall(decode, str)
      if ok then return res end
      return nil, clean(res)
    end
  else
    m.encode = function(v)
      local ok, res = pcall(encode, v)
      if ok then return res end
      error(clean(res), 2)
    end
    m.decode = function(str)
      if decode_with_array_mt then
        local ok, res = pcall(decode, str)
        if ok then return res end
        error(clean(res), 2)
      end
      return c_decode(str)
    end
  end

  m.new = function()
    return build(load_c(), safe)
  end
  return m
end

function _M.load(safe)
  return build(load_c(), safe)
end

return _M
