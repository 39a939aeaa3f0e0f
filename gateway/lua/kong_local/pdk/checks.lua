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

-- An argument of the wrong Lua type; level 3 blames the plugin that called the PDK function.
function _M.arg_type(value, expected, arg_name)
  if type(value) ~= expected then
    error(arg_name .. " must be a " .. expected, 3)
  end
end

-- Kong's range check of the max_headers / max_args arguments: the value to use, the default when
-- none was given. Level 3 blames the plugin that called the PDK function, as Kong's own check does.
function _M.limit_arg(arg_name, value, default, min, max)
  if value == nil then
    return default
  end
  if type(value) ~= "number" then
    error(arg_name .. " must be a number", 3)
  elseif value < min then
    error(arg_name .. " must be >= " .. min, 3)
  elseif value > max then
    error(arg_name .. " must be <= " .. max, 3)
  end
  return value
end

-- Kong's single-value getters (get_header, get_query_arg): the first value of a repeated one.
-- Callers keep the result in a local before returning it: a tail call would drop their frame and
-- shift the level-3 error onto the wrong caller.
function _M.first_value(get_all, name, what)
  if type(name) ~= "string" then
    error(what .. " name must be a string", 3)
  end
  local value = get_all()[name]
  if type(value) == "table" then
    return value[1]
  end
  return value
end

return _M
