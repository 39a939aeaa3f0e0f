-- What the schema library needs from OpenResty, with stand-ins so that busted
-- (plain LuaJIT, no `ngx`) runs the same code paths as nginx does.
local cjson = require "cjson"

local ngx = ngx -- luacheck: ignore 113
local type = type
local find = string.find

local _M = {}

-- ngx.null and cjson.null are the same NULL lightuserdata, so values decoded
-- from JSON compare equal to ngx.null inside nginx and out.
_M.null = (ngx and ngx.null) or cjson.null

-- OpenResty's cjson encodes tables with this metatable as JSON arrays (so
-- an empty default list stays []). Debian's lua-cjson 2.1.0 has none; a
-- private marker keeps setmetatable calls uniform there.
_M.array_mt = cjson.array_mt or { __name = "array" }


local compile_check

if ngx and ngx.re and ngx.re.find then
  local re_find = ngx.re.find
  compile_check = function(pattern, flags)
    local _, _, err = re_find("", pattern, flags)
    if err then
      return nil, err
    end
    return true
  end

else
  -- Outside nginx: ask the same PCRE library nginx's lua module links
  -- against whether the pattern compiles.
  local ok_ffi, ffi = pcall(require, "ffi")
  local pcre
  if ok_ffi then
    pcall(ffi.cdef, [[
      void *pcre_compile(const char *pattern, int options, const char **errptr,
                         int *erroffset, const unsigned char *tableptr);
    ]])
    for _, name in ipairs({ "pcre", "libpcre.so.3", "libpcre.so.1" }) do
      local ok, lib = pcall(ffi.load, name)
      if ok then
        pcre = lib
        break
      end
    end
  end

  local PCRE_CASELESS, PCRE_UTF8 = 0x00000001, 0x00000800
  compile_check = function(pattern, flags)
    if not pcre then
      return nil, "no PCRE library available to check the regex"
    end
    local options = 0
    if flags and find(flags, "i", 1, true) then
      options = options + PCRE_CASELESS
    end
    if flags and find(flags, "u", 1, true) then
      options = options + PCRE_UTF8
    end
    local errptr = ffi.new("const char *[1]")
    local erroffset = ffi.new("int[1]")
    local re = pcre.pcre_compile(pattern, options, errptr, erroffset, nil)
    if re == nil then
      return nil, ffi.string(errptr[0]) .. " in \"" .. pattern .. "\" at \""
                  .. pattern:sub(erroffset[0] + 1) .. "\""
    end
    ffi.C.free(re)
    return true
  end

  if ok_ffi then
    pcall(ffi.cdef, "void free(void *ptr);")
  end
end

--- Whether `pattern` compiles as a PCRE regex (what ngx.re would say).
-- @return true, or nil and the compiler's message
function _M.regex_compiles(pattern, flags)
  if type(pattern) ~= "string" then
    return nil, "pattern must be a string"
  end
  return compile_check(pattern, flags)
end


return _M
