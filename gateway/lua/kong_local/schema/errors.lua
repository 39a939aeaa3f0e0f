-- Kong's validation messages (kong/db/schema/init.lua `validation_errors`,
-- 3.9) and the ways Kong turns an error table into text.
local type = type
local pairs = pairs
local tostring = tostring
local sort = table.sort
local concat = table.concat

local _M = {}

_M.messages = {
  ERROR                     = "Validation error: %s",
  -- types
  ARRAY                     = "expected an array",
  SET                       = "expected a set",
  MAP                       = "expected a map",
  RECORD                    = "expected a record",
  STRING                    = "expected a string",
  NUMBER                    = "expected a number",
  BOOLEAN                   = "expected a boolean",
  INTEGER                   = "expected an integer",
  FUNCTION                  = "expected a function",
  -- validations
  EQ                        = "value must be %s",
  NE                        = "value must not be %s",
  GT                        = "value must be greater than %s",
  BETWEEN                   = "value should be between %d and %d",
  LEN_EQ                    = "length must be %d",
  LEN_MIN                   = "length must be at least %d",
  LEN_MAX                   = "length must be at most %d",
  MATCH                     = "invalid value: %s",
  NOT_MATCH                 = "invalid value: %s",
  MATCH_ALL                 = "invalid value: %s",
  MATCH_NONE                = "invalid value: %s",
  MATCH_ANY                 = "invalid value: %s",
  STARTS_WITH               = "should start with: %s",
  CONTAINS                  = "expected to contain: %s",
  ONE_OF                    = "expected one of: %s",
  NOT_ONE_OF                = "must not be one of: %s",
  IS_REGEX                  = "not a valid regex: %s",
  TIMESTAMP                 = "expected a valid timestamp",
  UUID                      = "expected a valid UUID",
  VALIDATION                = "failed validating: %s",
  -- field presence
  BAD_INPUT                 = "expected an input table",
  REQUIRED                  = "required field missing",
  UNKNOWN                   = "unknown field",
  -- entity checks
  REQUIRED_FOR_ENTITY_CHECK = "field required for entity check",
  ENTITY_CHECK              = "failed entity check: %s(%s)",
  CHECK                     = "entity check failed",
  CONDITIONAL               = "failed conditional validation given value of field '%s'",
  AT_LEAST_ONE_OF           = "at least one of these fields must be non-empty: %s",
  CONDITIONAL_AT_LEAST_ONE_OF = "at least one of these fields must be non-empty: %s",
  ONLY_ONE_OF               = "exactly one of these fields must be non-empty: %s",
  DISTINCT                  = "values of these fields must be distinct: %s",
  MUTUALLY_REQUIRED         = "all or none of these fields must be set: %s",
  MUTUALLY_EXCLUSIVE        = "only one or none of these fields must be set: %s",
  MUTUALLY_EXCLUSIVE_SETS   = "these sets are mutually exclusive: %s",
  -- schema errors
  SCHEMA_NO_DEFINITION      = "expected a definition table",
  SCHEMA_NO_FIELDS          = "error in schema definition: no 'fields' table",
  SCHEMA_CANNOT_VALIDATE    = "error in schema prevents from validating this field",
  SCHEMA_TYPE               = "invalid type: %s",
  -- subschemas
  SUBSCHEMA_UNKNOWN         = "unknown type: %s",
  SUBSCHEMA_BAD_TYPE        = "error in definition of '%s': %s: cannot change type in a specialized field",
  SUBSCHEMA_BAD_FIELD       = "error in definition of '%s': %s: cannot create a new field",
  SUBSCHEMA_ABSTRACT_FIELD  = "error in schema definition: abstract field was not specialized",
  PLUGIN_NOT_ENABLED        = "plugin '%s' not enabled; add it to the 'plugins' configuration property",
}


-- Kong walks error tables with pairs(), so its order is the hash order.
-- Here: "@entity" first, then numeric keys ascending, then names
-- alphabetically, so that the same config always gives the same text.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b)
    if a == "@entity" then return b ~= "@entity" end
    if b == "@entity" then return false end
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return ta == "number"
    end
    return a < b
  end)
  return keys
end
_M.sorted_keys = sorted_keys


--- Flatten a nested error table into { {path = "config.minute", message = "..."}, ... }.
-- Entity-check messages ("@entity") carry the path of the record they
-- belong to ("" at the top).
function _M.flatten(err_t, prefix, out)
  out = out or {}
  prefix = prefix or ""
  if type(err_t) ~= "table" then
    out[#out + 1] = { path = prefix, message = tostring(err_t) }
    return out
  end
  for _, k in ipairs(sorted_keys(err_t)) do
    local v = err_t[k]
    if k == "@entity" then
      for _, msg in ipairs(v) do
        out[#out + 1] = { path = prefix, message = tostring(msg) }
      end
    else
      local path = prefix == "" and tostring(k) or (prefix .. "." .. tostring(k))
      if type(v) == "table" then
        _M.flatten(v, path, out)
      else
        out[#out + 1] = { path = path, message = tostring(v) }
      end
    end
  end
  return out
end


--- One line: "path: message; path: message" (entity messages without a path).
function _M.to_line(err_t)
  local parts = {}
  for _, e in ipairs(_M.flatten(err_t)) do
    parts[#parts + 1] = e.path == "" and e.message or (e.path .. ": " .. e.message)
  end
  return concat(parts, "; ")
end


--- Kong's declarative loader format (kong/db/declarative/init.lua
-- `pretty_print_error`): one line per level, "in 'key':" for names and
-- "- in entry N of 'parent':" for array positions.
function _M.pretty_print(err_t, item, indent)
  indent = indent or ""
  local out = {}
  for _, k in ipairs(sorted_keys(err_t)) do
    local v = err_t[k]
    local prettykey = (type(k) == "number")
                      and "- in entry " .. k .. " of '" .. tostring(item) .. "'"
                      or  "in '" .. tostring(k) .. "'"
    if type(v) == "table" then
      out[#out + 1] = indent .. prettykey .. ":"
      out[#out + 1] = _M.pretty_print(v, k, indent .. "  ")
    else
      out[#out + 1] = indent .. prettykey .. ": " .. tostring(v)
    end
  end
  return concat(out, "\n")
end


--- Kong's `errors:schema_violation(err_t)` text: "schema violation (k: msg; ...)".
function _M.schema_violation(err_t)
  return "schema violation (" .. _M.to_line(err_t) .. ")"
end


return _M
