-- Argument checks shared by the PDK modules (kong/pdk/private/checks.lua).
local fmt = string.format

local _M = {}

function _M.validate_header(name, value)
  local tname = type(name)
  if tname ~= "string" then
    error(fmt("invalid header name %q: got %s, expected string", tostring(name), tname), 3)
  end
  local tvalue = type(value)
  if tvalue == "string" or tvalue == "number" or tvalue == "boolean" then
    return tostring(value)
  end
  if tvalue == "table" then
    for _, v in ipairs(value) do
      if type(v) ~= "string" then
        error(fmt("invalid header value in array %q: got %s, expected string", name, type(v)), 3)
      end
    end
    return value
  end
  error(fmt("invalid header value for %q: got %s, expected array of string, string, number or boolean",
            name, tvalue), 3)
end

function _M.validate_headers(headers)
  if type(headers) ~= "table" then
    error("headers must be a table", 3)
  end
  for k, v in pairs(headers) do
    _M.validate_header(k, v)
  end
end

return _M
