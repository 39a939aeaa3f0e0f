-- The string checks Kong's typedefs rely on (kong/tools/ip.lua, http.lua,
-- string.lua, uri.lua and socket.url in Kong), rewritten for the local
-- gateway. Pure Lua plus inet_pton through the FFI, so busted runs them too.
local ffi = require "ffi"

local type = type
local tonumber = tonumber
local byte = string.byte
local sub = string.sub
local gsub = string.gsub
local find = string.find
local match = string.match
local lower = string.lower
local upper = string.upper
local char = string.char
local concat = table.concat
local format = string.format

local _M = {}


pcall(ffi.cdef, "int inet_pton(int af, const char *src, void *dst);")
local AF_INET, AF_INET6 = 2, 10
local addr_buf = ffi.new("unsigned char[16]")

--- inet_pton's verdict, as resty.ipmatcher's parse_ipv4/parse_ipv6 use it.
function _M.is_valid_ipv4(s)
  return type(s) == "string" and ffi.C.inet_pton(AF_INET, s, addr_buf) == 1
end

function _M.is_valid_ipv6(s)
  if type(s) ~= "string" then
    return false
  end
  -- ipmatcher accepts the bracketed form too
  if sub(s, 1, 1) == "[" and sub(s, -1) == "]" then
    s = sub(s, 2, -2)
  end
  return ffi.C.inet_pton(AF_INET6, s, addr_buf) == 1
end

function _M.is_valid_ip(s)
  return _M.is_valid_ipv4(s) or _M.is_valid_ipv6(s)
end


local function split_cidr(s, max_prefix)
  local p = find(s, "/", 3, true)
  if not p then
    return nil
  end
  local prefix = sub(s, p + 1)
  if not match(prefix, "^%d+$") or #prefix > 3 then
    return nil
  end
  local n = tonumber(prefix)
  -- "01" is not a prefix Kong's table of "0".."32" knows
  if n > max_prefix or tostring(n) ~= prefix then
    return nil
  end
  return sub(s, 1, p - 1)
end

function _M.is_valid_cidr_v4(s)
  if type(s) ~= "string" then return false end
  local ip = split_cidr(s, 32)
  return ip ~= nil and _M.is_valid_ipv4(ip)
end

function _M.is_valid_cidr_v6(s)
  if type(s) ~= "string" then return false end
  local ip = split_cidr(s, 128)
  return ip ~= nil and _M.is_valid_ipv6(ip)
end

function _M.is_valid_ip_or_cidr_v4(s)
  return _M.is_valid_ipv4(s) or _M.is_valid_cidr_v4(s)
end

function _M.is_valid_ip_or_cidr(s)
  return _M.is_valid_ip(s) or _M.is_valid_cidr_v4(s) or _M.is_valid_cidr_v6(s)
end


-- Host names ----------------------------------------------------------------

--- 'ipv4', 'ipv6' or 'name', by exclusion (not validation), like Kong.
function _M.hostname_type(name)
  local remainder, colons = gsub(name, ":", "")
  if colons > 1 then
    return "ipv6"
  end
  if match(remainder, "^[%d%.]+$") then
    return "ipv4"
  end
  return "name"
end


local function normalize_ipv4(address)
  local a, b, c, d, port
  if find(address, ":", 1, true) then
    a, b, c, d, port = match(address, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?):(%d+)$")
  else
    a, b, c, d = match(address, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  end
  if not a then
    return nil, "invalid ipv4 address: " .. address
  end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then
    return nil, "invalid ipv4 address: " .. address
  end
  if port then
    port = tonumber(port)
    if port > 65535 then
      return nil, "invalid port number"
    end
  end
  return format("%d.%d.%d.%d", a, b, c, d), port
end


local function normalize_ipv6(address)
  local check, port = match(address, "^(%b[])(.-)$")
  if port == "" then
    port = nil
  end
  if check then
    check = sub(check, 2, -2)
    if port then
      port = match(port, "^:(%d-)$")
      if not port then
        return nil, "invalid ipv6 address"
      end
      port = tonumber(port)
      if not port or port > 65535 then
        return nil, "invalid port number"
      end
    end
  else
    check = address
    port = nil
  end
  if sub(check, 1, 1) == ":" then
    check = "0" .. check
  end
  if sub(check, -1) == ":" then
    check = check .. "0"
  end
  if find(check, "::", 1, true) then
    local _, count = gsub(check, ":", "")
    check = gsub(check, "::", ":" .. string.rep("0:", 8 - count), 1)
  end
  local parts = {}
  for part in (check .. ":"):gmatch("([^:]*):") do
    parts[#parts + 1] = part
  end
  if #parts ~= 8 then
    return nil, "invalid ipv6 address: " .. address
  end
  for i = 1, 8 do
    if not match(parts[i], "^%x%x?%x?%x?$") then
      return nil, "invalid ipv6 address: " .. address
    end
    parts[i] = string.rep("0", 4 - #parts[i]) .. parts[i]
  end
  return lower(concat(parts, ":")), port
end


local function split_dots(name)
  local out = {}
  for seg in (name .. "."):gmatch("([^.]*)%.") do
    out[#out + 1] = seg
  end
  return out
end


local function check_hostname(address)
  local name = address
  local port = match(address, ":(%d+)$")
  if port then
    name = sub(name, 1, -(#port + 2))
    port = tonumber(port)
    if port > 65535 then
      return nil, "invalid port number"
    end
  end
  if not match(name, "^[%d%a%-%.%_]+$") then
    return nil, "invalid hostname: " .. address
  end
  -- no leading/trailing dashes or empty labels (an FQDN may end in a dot)
  local segments = split_dots(name)
  for i, segment in ipairs(segments) do
    if match(segment, "-$") or (segment == "" and i ~= #segments) then
      return nil, "invalid hostname: " .. address
    end
  end
  return name, port
end


local verify_types = {
  ipv4 = normalize_ipv4,
  ipv6 = normalize_ipv6,
  name = check_hostname,
}

--- Kong's normalize_ip: { type, host, port } or nil and an error.
function _M.normalize_ip(address)
  local atype = _M.hostname_type(address)
  local addr, port = verify_types[atype](address)
  if not addr then
    return nil, port
  end
  return { type = atype, host = addr, port = port }
end


-- Header and token names ------------------------------------------------------

--- kong.tools.http.validate_header_name: re "^[a-zA-Z0-9-_]+$" (PCRE's "$"
-- also matches before a final newline, so "name\n" passes as in Kong).
function _M.validate_header_name(name)
  if name == nil or name == "" then
    return nil, "no header name provided"
  end
  if match(name, "^[%w_%-]+\n?$") then
    return name
  end
  return nil, "bad header name '" .. name ..
              "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
end


--- kong.tools.http.validate_http_token (RFC 2616 token), used for cookie names.
function _M.validate_http_token(token)
  if token == nil or token == "" then
    return nil, "no token provided"
  end
  if not find(token, "[%z\1-\31\127\128-\255 \t()<>@,;:\\\"/?={}%[%]]") then
    return token
  end
  return nil, "contains one or more invalid characters. ASCII " ..
              "control characters (0-31;127), space, tab and the " ..
              "characters ()<>@,;:\\\"/?={}[] are not allowed."
end


--- kong.tools.string.validate_utf8: true, or false and the 1-based
-- position of the first byte that is not valid UTF-8.
function _M.validate_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    local len, min
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then
      len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then
      len, min = 4, 0x10000
    else
      return false, i
    end
    if len > 1 then
      if i + len - 1 > n then
        return false, i
      end
      local cp = c % (2 ^ (7 - len))
      for j = 1, len - 1 do
        local cc = byte(s, i + j)
        if cc < 0x80 or cc > 0xBF then
          return false, i
        end
        cp = cp * 64 + (cc - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
        return false, i
      end
    end
    i = i + len
  end
  return true
end


-- URLs and paths ----------------------------------------------------------------

--- The parts of socket.url.parse that Kong's url typedef reads: scheme,
-- host, port, path, query, fragment.
function _M.parse_url(url)
  if type(url) ~= "string" or url == "" then
    return nil, "invalid url"
  end
  local parsed = {}
  local rest = url
  rest = gsub(rest, "#(.*)$", function(f) parsed.fragment = f; return "" end)
  rest = gsub(rest, "^([%w][%w%+%-%.]*)%:", function(s) parsed.scheme = lower(s); return "" end)
  rest = gsub(rest, "^//([^/]*)", function(a) parsed.authority = a; return "" end)
  rest = gsub(rest, "%?(.*)", function(q) parsed.query = q; return "" end)
  if rest ~= "" then
    parsed.path = rest
  end
  local authority = parsed.authority
  if authority then
    authority = gsub(authority, "^([^@]*)@", function(u) parsed.userinfo = u; return "" end)
    authority = gsub(authority, ":([^:%]]*)$", function(p) parsed.port = p; return "" end)
    if authority ~= "" then
      parsed.host = match(authority, "^%[(.+)%]$") or authority
    end
  end
  return parsed
end


--- typedefs.path's custom validator (RFC 3986 characters, proper %-encoding).
-- The third return value tells router_path which of the two failed.
function _M.validate_path(path)
  if not match(path, "^/[%w%.%-%_%~%/%%%:%@" ..
                     "%!%$%&%'%(%)%*%+%,%;%=" ..
                     "]*$") then
    return nil,
           "invalid path: '" .. path ..
           "' (characters outside of the reserved list of RFC 3986 found)",
           "rfc3986"
  end
  local raw = gsub(path, "%%%x%x", "___")
  if find(raw, "%", nil, true) then
    local err = sub(raw, find(raw, "%%.?.?"))
    return nil, "invalid url-encoded value: '" .. err .. "'", "percent"
  end
  return true
end


local function decode_unreserved(hex)
  local num = tonumber(hex, 16)
  local c = char(num)
  if match(c, "^[%w%-%.%_%~]$") then
    return c
  end
  return "%" .. upper(hex)
end

--- kong.tools.uri.normalize: decode %-encoded unreserved characters,
-- upper-case the others, resolve "." and ".." segments and (optionally)
-- merge slashes.
function _M.normalize_uri(uri, merge_slashes)
  if uri == "" or uri == "/" then
    return uri
  end
  if find(uri, "%", 1, true) then
    uri = gsub(uri, "%%(%x%x)", decode_unreserved)
  end
  if not find(uri, ".", 1, true) and (not merge_slashes or not find(uri, "//", 1, true)) then
    return uri
  end

  local segments = {}
  for seg in (uri .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = seg
  end
  local out = {}
  local last = #segments
  for i = 2, last do
    local seg = segments[i]
    if seg == ".." then
      out[#out] = nil
      if i == last then out[#out + 1] = "" end
    elseif seg == "." then
      if i == last then out[#out + 1] = "" end
    elseif seg == "" and merge_slashes and i ~= last then -- luacheck: ignore 542
      -- merged away
    else
      out[#out + 1] = seg
    end
  end
  return "/" .. concat(out, "/")
end


return _M
