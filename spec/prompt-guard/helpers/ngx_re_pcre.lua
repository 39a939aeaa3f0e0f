-- ngx.re.find for busted (plain LuaJIT, no nginx), on the same libpcre that Debian's
-- lua-nginx-module links (libpcre.so.3), with the settings the gateway and Kong use:
-- "j" studies with PCRE JIT, "u" is UTF-8 mode, "U" UTF-8 mode without the subject check,
-- "i" caseless, and every match runs under lua_regex_match_limit 100000. Errors read as
-- lua-nginx-module words them ("pcre_exec() failed: -8"), so the plugin's code paths are the
-- ones nginx takes. Only `find` (all the plugin uses) is provided.
local ffi = require "ffi"

ffi.cdef [[
  typedef struct pg_pcre_extra {
    unsigned long flags;
    void *study_data;
    unsigned long match_limit;
    void *callout_data;
    const unsigned char *tables;
    unsigned long match_limit_recursion;
    unsigned char **mark;
    void *executable_jit;
  } pg_pcre_extra;
  void *pcre_compile(const char *pattern, int options, const char **errptr, int *erroffset,
                     const unsigned char *tableptr);
  pg_pcre_extra *pcre_study(const void *code, int options, const char **errptr);
  int pcre_exec(const void *code, const pg_pcre_extra *extra, const char *subject, int length,
                int startoffset, int options, int *ovector, int ovecsize);
]]

local pcre = ffi.load("libpcre.so.3")

local PCRE_CASELESS = 0x00000001
local PCRE_UTF8 = 0x00000800
local PCRE_NO_UTF8_CHECK = 0x00002000
local PCRE_STUDY_JIT_COMPILE = 0x0001
local PCRE_EXTRA_MATCH_LIMIT = 0x0002
local MATCH_LIMIT = 100000

local _M = { compiled = 0 }

-- the "o" cache: pattern + options -> { code, extra, exec_options }
local cache = {}

local function compile(regex, options)
  local key = options .. "\0" .. regex
  local hit = cache[key]
  if hit then return hit end
  local flags, exec_flags = 0, 0
  for c in options:gmatch(".") do
    if c == "i" then
      flags = bit.bor(flags, PCRE_CASELESS)
    elseif c == "u" then
      flags = bit.bor(flags, PCRE_UTF8)
    elseif c == "U" then
      flags = bit.bor(flags, PCRE_UTF8)
      exec_flags = bit.bor(exec_flags, PCRE_NO_UTF8_CHECK)
    elseif c ~= "j" and c ~= "o" then
      error("ngx_re_pcre: option '" .. c .. "' not emulated")
    end
  end
  local errptr = ffi.new("const char *[1]")
  local erroffset = ffi.new("int[1]")
  local code = pcre.pcre_compile(regex, flags, errptr, erroffset, nil)
  if code == nil then
    return nil, string.format('pcre_compile() failed: %s in "%s" at "%s"',
      ffi.string(errptr[0]), regex, regex:sub(erroffset[0] + 1))
  end
  local study_flags = options:find("j", 1, true) and PCRE_STUDY_JIT_COMPILE or 0
  local extra = pcre.pcre_study(code, study_flags, errptr)
  if extra == nil then
    extra = ffi.new("pg_pcre_extra")
  end
  extra.flags = bit.bor(extra.flags, PCRE_EXTRA_MATCH_LIMIT)
  extra.match_limit = MATCH_LIMIT
  hit = { code = code, extra = extra, exec_flags = exec_flags }
  cache[key] = hit
  _M.compiled = _M.compiled + 1
  return hit
end

local ovector = ffi.new("int[30]")

function _M.find(subject, regex, options)
  local re, err = compile(regex, options or "")
  if not re then return nil, nil, err end
  local rc = pcre.pcre_exec(re.code, re.extra, subject, #subject, 0, re.exec_flags, ovector, 30)
  if rc == -1 then return nil end
  if rc < 0 then return nil, nil, "pcre_exec() failed: " .. rc end
  return ovector[0] + 1, ovector[1]
end

--- Installs the shim as the global ngx.re (and a minimal ngx) unless nginx's is there.
function _M.install()
  _G.ngx = _G.ngx or {}
  _G.ngx.re = _G.ngx.re or {}
  _G.ngx.re.find = _M.find
  return _M
end

return _M
