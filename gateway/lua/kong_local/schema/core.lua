-- The part of Kong's schema library (kong/db/schema/init.lua, 3.9) that plugin
-- schemas exercise: field validation, defaults ("insert" processing), the
-- "select" clean-up that hands handlers their conf, and entity checks.
-- A schema here is a plain definition table ({ fields = { { name = field }, ... },
-- entity_checks = ..., shorthand_fields = ... }); nothing is mutated.
local env = require "kong_local.schema.env"
local errors = require "kong_local.schema.errors"

local null = env.null
local array_mt = env.array_mt
local msgs = errors.messages

local type = type
local next = next
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local floor = math.floor
local max = math.max
local concat = table.concat
local insert = table.insert
local sort = table.sort
local find = string.find
local sub = string.sub
local format = string.format

local _M = {}

_M.null = null

_M.valid_types = {
  array = true, set = true, string = true, number = true, boolean = true,
  integer = true, foreign = true, map = true, record = true,
  ["function"] = true, json = true,
}


-- Field index -------------------------------------------------------------

-- Kong's Schema.new adds `fields[name] = field` into the definition; here
-- the by-name index lives beside it, keyed by the `fields` array.
local index_cache = setmetatable({}, { __mode = "k" })

local function field_index(def)
  local fields = def.fields
  if type(fields) ~= "table" then
    return { names = {}, by_name = {} }
  end
  local idx = index_cache[fields]
  if idx then
    return idx
  end
  idx = { names = {}, by_name = {} }
  for i = 1, #fields do
    local item = fields[i]
    if type(item) == "table" then
      local name, field = next(item)
      if name ~= nil then
        idx.names[#idx.names + 1] = name
        idx.by_name[name] = field
      end
    end
  end
  index_cache[fields] = idx
  return idx
end
_M.field_index = field_index


local function each_field(def)
  local idx = field_index(def)
  local i = 0
  return function()
    i = i + 1
    local name = idx.names[i]
    if name == nil then
      return nil
    end
    return name, idx.by_name[name]
  end
end
_M.each_field = each_field


local function get_schema_field(def, name)
  if def == nil then
    return nil
  end
  local dot = find(name, ".", 1, true)
  if not dot then
    return field_index(def).by_name[name]
  end
  return get_schema_field(field_index(def).by_name[sub(name, 1, dot - 1)],
                          sub(name, dot + 1))
end
_M.get_schema_field = get_schema_field


-- Table helpers -----------------------------------------------------------

local function deep_copy(orig, cache)
  if type(orig) ~= "table" then
    return orig
  end
  cache = cache or {}
  if cache[orig] then
    return cache[orig]
  end
  local copy = {}
  cache[orig] = copy
  for k, v in pairs(orig) do
    copy[deep_copy(k, cache)] = deep_copy(v, cache)
  end
  local mt = getmetatable(orig)
  if mt then
    setmetatable(copy, mt)
  end
  return copy
end
_M.deep_copy = deep_copy


local function is_nonempty(value)
  if value == nil
     or value == null
     or (type(value) == "table" and not next(value))
     or (type(value) == "string" and value == "") then
    return false
  end
  return true
end


local function is_sequence(t)
  if type(t) ~= "table" then
    return false
  end
  local m, c = 0, 0
  for k in pairs(t) do
    c = c + 1
    if t[c] == nil then
      return false
    end
    if type(k) ~= "number" or k < 0 or floor(k) ~= k then
      return false
    end
    m = max(m, k)
  end
  return c == m
end
_M.is_sequence = is_sequence


local function get_field(tbl, name)
  if tbl == nil or tbl == null then
    return nil
  end
  local dot = find(name, ".", 1, true)
  if not dot then
    return tbl[name]
  end
  return get_field(tbl[sub(name, 1, dot - 1)], sub(name, dot + 1))
end


local function set_field(tbl, name, value)
  local dot = find(name, ".", 1, true)
  if not dot then
    tbl[name] = value
    return
  end
  local hd, tl = sub(name, 1, dot - 1), sub(name, dot + 1)
  local subtbl = tbl[hd]
  if subtbl == nil then
    subtbl = {}
    tbl[hd] = subtbl
  end
  set_field(subtbl, tl, value)
end


local function quoted_list(words)
  local out = {}
  for i = 1, #words do
    local word = words[i]
    if type(word) == "table" then
      out[#out + 1] = "(" .. quoted_list(word) .. ")"
    else
      out[#out + 1] = "'" .. tostring(word) .. "'"
    end
  end
  return concat(out, ", ")
end


-- A vault reference ("{vault://env/name}") stands in for a secret; Kong
-- skips validation of referenceable fields that hold one.
-- (kong.pdk.vault.is_reference: "{vault://" ... "}")
local function is_reference(value)
  return type(value) == "string"
     and sub(value, 1, 9) == "{vault://"
     and sub(value, -1) == "}"
end
_M.is_reference = is_reference


-- Sets: Kong removes duplicates and lets `conf.protocols.http` answer true.
local as_set = setmetatable({}, { __mode = "k" })
local Set_mt = {
  __index = function(t, key)
    local set = as_set[t]
    if set then
      return set[key]
    end
  end,
}

local function make_array(array)
  if is_sequence(array) then
    return setmetatable(array, array_mt)
  end
  return array
end

local function make_set(set)
  if not is_sequence(set) then
    return set
  end
  local count = #set
  if count == 0 then
    return setmetatable(set, array_mt)
  end
  local o, s, j = {}, {}, 0
  for i = 1, count do
    local v = set[i]
    if not s[v] then
      j = j + 1
      o[j] = v
      s[v] = true
    end
  end
  as_set[o] = s
  return setmetatable(o, Set_mt)
end


-- Validators --------------------------------------------------------------

local function fmt_value(pattern, value)
  return format(pattern, type(value) == "string" and value or tostring(value))
end


local function make_length_validator(key, cmp)
  return function(value, n, field)
    local len = #value
    if field.type == "map" then
      for _ in pairs(value) do
        len = len + 1
      end
    end
    if cmp(len, n) then
      return true
    end
    return nil, format(msgs[key], n)
  end
end


local function valid_uuid(value)
  -- Kong: #value == 36 and ngx.re.find(value, "^[0-9a-f]{8}-...$", "ioj")
  if #value ~= 36 then
    return nil
  end
  return value:find("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$")
         and true or nil
end
_M.valid_uuid = valid_uuid


_M.validators = {
  between = function(value, limits)
    if value < limits[1] or value > limits[2] then
      return nil, format(msgs.BETWEEN, limits[1], limits[2])
    end
    return true
  end,

  eq = function(value, wanted)
    if value == wanted then
      return true
    end
    local str = (wanted == null) and "null" or tostring(wanted)
    return nil, format(msgs.EQ, str)
  end,

  ne = function(value, wanted)
    if value ~= wanted then
      return true
    end
    local str = (wanted == null) and "null" or tostring(value)
    return nil, format(msgs.NE, str)
  end,

  gt = function(value, limit)
    if value > limit then
      return true
    end
    return nil, format(msgs.GT, tostring(limit))
  end,

  len_eq = make_length_validator("LEN_EQ", function(len, n) return len == n end),
  len_min = make_length_validator("LEN_MIN", function(len, n) return len >= n end),
  len_max = make_length_validator("LEN_MAX", function(len, n) return len <= n end),

  match = function(value, pattern)
    if not value:match(pattern) then
      return nil, fmt_value(msgs.MATCH, value)
    end
    return true
  end,

  is_regex = function(value)
    return env.regex_compiles(value) and true or nil
  end,

  not_match = function(value, pattern)
    if value:match(pattern) then
      return nil, fmt_value(msgs.NOT_MATCH, value)
    end
    return true
  end,

  match_all = function(value, list)
    for i = 1, #list do
      if not value:match(list[i].pattern) then
        return nil, list[i].err
      end
    end
    return true
  end,

  match_none = function(value, list)
    for i = 1, #list do
      if value:match(list[i].pattern) then
        return nil, list[i].err
      end
    end
    return true
  end,

  match_any = function(value, arg)
    local patterns = arg.patterns
    for i = 1, #patterns do
      if value:match(patterns[i]) then
        return true
      end
    end
    return nil, arg.err
  end,

  starts_with = function(value, expected)
    if sub(value, 1, #expected) ~= expected then
      return nil, format(msgs.STARTS_WITH, expected)
    end
    return true
  end,

  one_of = function(value, options)
    for i = 1, #options do
      if value == options[i] then
        return true
      end
    end
    local names = {}
    for i = 1, #options do
      names[i] = tostring(options[i])
    end
    return nil, format(msgs.ONE_OF, concat(names, ", "))
  end,

  not_one_of = function(value, options)
    for i = 1, #options do
      if value == options[i] then
        local names = {}
        for j = 1, #options do
          names[j] = tostring(options[j])
        end
        return nil, format(msgs.NOT_ONE_OF, concat(names, ", "))
      end
    end
    return true
  end,

  timestamp = function(value)
    return value > 0 or nil
  end,

  uuid = valid_uuid,

  contains = function(array, wanted)
    for i = 1, #array do
      if array[i] == wanted then
        return true
      end
    end
    return nil, fmt_value(msgs.CONTAINS, wanted)
  end,

  mutually_exclusive_subsets = function(value, subsets)
    local subset_union = {}
    for i = 1, #subsets do
      local subset = subsets[i]
      for j = 1, #subset do
        subset_union[subset[j]] = subset
      end
    end
    local member_of = {}
    for i = 1, #value do
      local s = subset_union[value[i]]
      if s and not member_of[s] then
        member_of[s] = true
        member_of[#member_of + 1] = s
      end
    end
    if #member_of <= 1 then
      return true
    end
    return nil, format(msgs.MUTUALLY_EXCLUSIVE_SETS, quoted_list(member_of))
  end,

  custom_validator = function(value, fn)
    return fn(value)
  end,
}


_M.validators_order = {
  "eq", "ne", "not_one_of", "one_of",
  "gt", "timestamp", "uuid", "is_regex", "between",
  "len_eq", "len_min", "len_max",
  "starts_with", "not_match", "match_none", "match", "match_all", "match_any",
  "contains",
  "custom_validator", "mutually_exclusive_subsets",
}


-- Field validation ----------------------------------------------------------

local validate            -- forward: validate(def, input, full_check)
local process_auto_fields -- forward: process_auto_fields(def, data, context)


--- Validate one value against one field definition.
-- `force_required` stands for Kong setting `required = true` on the
-- element/key/value definitions of arrays, sets and maps.
-- @return true, or nil and an error (a string, or a table for aggregates)
local function validate_field(field, value, force_required)
  local required = field.required or force_required

  if value == null then
    if field.ne == null then
      return nil, field.err or format(msgs.NE, "null")
    end
    if field.eq ~= nil and field.eq ~= null then
      return nil, format(msgs.EQ, tostring(field.eq))
    end
    if required then
      return nil, msgs.REQUIRED
    end
    return true
  end

  if value == nil then
    -- only reachable through entity checks on values absent from input
    if required then
      return nil, msgs.REQUIRED
    end
    return true
  end

  if field.eq == null then
    return nil, field.err or format(msgs.EQ, "null")
  end

  if field.abstract then
    return nil, msgs.SUBSCHEMA_ABSTRACT_FIELD
  end

  local ftype = field.type
  local len_min = field.len_min

  if ftype == "array" or ftype == "set" then
    if not is_sequence(value) then
      return nil, ftype == "array" and msgs.ARRAY or msgs.SET
    end
    local elements = field.elements
    local errs, all_ok = {}, true
    for i = 1, #value do
      local ok, err = validate_field(elements, value[i], true)
      if not ok then
        errs[i] = err
        all_ok = false
      end
    end
    if not all_ok then
      return nil, errs
    end

  elseif ftype == "map" then
    if type(value) ~= "table" then
      return nil, msgs.MAP
    end
    for k, v in pairs(value) do
      local ok, err = validate_field(field.keys, k, true)
      if not ok then
        return nil, err
      end
      ok, err = validate_field(field.values, v, true)
      if not ok then
        return nil, err
      end
    end

  elseif ftype == "record" then
    if type(value) ~= "table" then
      return nil, msgs.RECORD
    end
    local copy, perr = process_auto_fields(field, value, "insert")
    if not copy then
      return nil, perr
    end
    local ok, err = validate(field, copy)
    if not ok then
      return nil, err
    end

  elseif ftype == "foreign" then
    -- A reference to another entity: a name/id string in declarative
    -- config, or a { id = ... } table. Whether it exists is the loader's job.
    if type(value) ~= "string" and type(value) ~= "table" then
      return nil, msgs.RECORD
    end

  elseif ftype == "integer" then
    if not (type(value) == "number"
            and value == floor(value)
            and value ~= 1/0
            and value ~= -1/0) then
      return nil, msgs.INTEGER
    end

  elseif ftype == "string" then
    if type(value) ~= "string" then
      return nil, msgs.STRING
    end
    -- empty strings are not accepted by default
    if len_min == nil then
      len_min = 1
    end
    if field.referenceable and is_reference(value) then
      return true
    end

  elseif ftype == "function" then
    if type(value) ~= "function" then
      return nil, msgs.FUNCTION
    end

  elseif ftype == "number" or ftype == "boolean" then
    if type(value) ~= ftype then
      return nil, msgs[ftype:upper()]
    end

  elseif ftype == "json" then
    -- Kong checks json fields against a JSON schema; none of the
    -- validators below apply to them.
    return true

  elseif ftype ~= "any" then
    return nil, format(msgs.SCHEMA_TYPE, tostring(ftype))
  end

  local validators = _M.validators
  local order = _M.validators_order
  for i = 1, #order do
    local k = order[i]
    local arg = field[k]
    if k == "len_min" then
      arg = len_min
    end
    if arg ~= nil then
      local ok, err = validators[k](value, arg, field)
      if not ok then
        if not err then
          err = fmt_value(msgs[k:upper()] or msgs.VALIDATION, value)
        end
        return nil, field.err or err
      end
    end
  end

  return true
end
_M.validate_field = validate_field


-- Defaults ("insert") and clean-up ("select") -------------------------------

local function handle_missing_field(field, value)
  if field.default ~= nil then
    local copy = deep_copy(field.default)
    if (field.type == "array" or field.type == "set")
       and type(copy) == "table"
       and not getmetatable(copy)
    then
      setmetatable(copy, array_mt)
    end
    return copy
  end

  if field.nilable then
    return value
  end

  -- not required: nullable
  if field.required ~= true then
    return null
  end

  if field.abstract then
    return nil
  end

  -- a missing required record takes the structure of its nested defaults
  if field.type == "record" then
    return (process_auto_fields(field, {}, "insert"))
  end

  -- required and absent: validation reports it
  return nil
end


local function adjust_field_for_context(field, value, context)
  if context == "select" and value == null and field.required == true then
    return handle_missing_field(field, value)
  end

  if field.abstract then
    return value
  end

  if field.type == "record" then
    if value ~= null and (value ~= nil or field.required == true) then
      if value == nil then
        value = handle_missing_field(field, value)
      end
      if type(value) == "table" then
        return process_auto_fields(field, value, context)
      end
    end

  elseif type(value) == "table" then
    local subfield
    if field.type == "array" then
      value = make_array(value)
      subfield = field.elements
    elseif field.type == "set" then
      value = make_set(value)
      subfield = field.elements
    elseif field.type == "map" then
      subfield = field.values
    end

    if subfield then
      for k, v in pairs(value) do
        value[k] = adjust_field_for_context(subfield, v, context)
      end
    end
  end

  if value == nil then
    return handle_missing_field(field, value)
  end

  return value
end


-- A shallow-then-deep merge, as kong.tools.table's table_merge.
local function table_merge(t1, t2)
  local res = {}
  if t1 then
    for k, v in pairs(t1) do res[k] = v end
  end
  if t2 then
    for k, v in pairs(t2) do
      if type(v) == "table" and type(res[k]) == "table" then
        res[k] = table_merge(res[k], v)
      else
        res[k] = v
      end
    end
  end
  return res
end


--- Kong's Schema:process_auto_fields for the "insert" and "select" contexts.
-- "insert" fills defaults (on a copy); "select" is what Kong does when it
-- reads a plugin back to run it: nulls become nil, empty strings in
-- strings that forbid them become nil, unknown keys are dropped.
-- @return the processed table, or nil and an error table (shorthand errors)
process_auto_fields = function(def, data, context)
  local is_select = context == "select"
  if not is_select then
    data = deep_copy(data)
  end

  local shorthand_fields = def.shorthand_fields
  if shorthand_fields and not is_select then
    local errs
    for i = 1, #shorthand_fields do
      local sname, sdata = next(shorthand_fields[i])
      local value = data[sname]
      if value ~= nil then
        local ok, err = validate_field(sdata, value)
        if not ok then
          errs = errs or {}
          errs[sname] = err
        else
          data[sname] = nil
          local new_values = sdata.func(value)
          if new_values then
            local deprecated = sdata.deprecation
            for k, v in pairs(new_values) do
              if type(v) == "table" then
                local source = {}
                if data[k] and data[k] ~= null then
                  source = data[k]
                end
                -- a deprecated shorthand loses to the field it replaces
                data[k] = deprecated and table_merge(v, source) or table_merge(source, v)
              elseif not deprecated or data[k] == nil or data[k] == null then
                data[k] = v
              end
            end
          end
        end
      end
    end
    if errs then
      return nil, errs
    end
  end

  for key, field in each_field(def) do
    local value = adjust_field_for_context(field, data[key], context)
    if is_select then
      if value == null then
        value = nil
      elseif field.type == "integer" and type(value) == "number" then
        value = floor(value)
      end
    end
    data[key] = value
  end

  if is_select then
    local by_name = field_index(def).by_name
    for key in pairs(data) do
      local field = by_name[key]
      if field then
        if field.type == "string" and (field.len_min or 1) > 0 and data[key] == "" then
          data[key] = nil
        end
      else
        data[key] = nil
      end
    end
  end

  return data
end
_M.process_auto_fields = process_auto_fields


-- Entity checks ------------------------------------------------------------

local function field_proxy(match, schema_field)
  return setmetatable({}, {
    __index = function(_, k)
      local v = match[k]
      if v == nil and schema_field then
        return schema_field[k]
      end
      return v
    end,
  })
end


local function count_nonempty(entity, field_names)
  local n = 0
  for i = 1, #field_names do
    if is_nonempty(get_field(entity, field_names[i])) then
      n = n + 1
    end
  end
  return n
end


local function mutually_required(entity, field_names)
  local n = count_nonempty(entity, field_names)
  if n == 0 or n == #field_names then
    return true
  end
  return nil, quoted_list(field_names)
end


local function mutually_exclusive(entity, field_names)
  local n = count_nonempty(entity, field_names)
  if n <= 1 then
    return true
  end
  return nil, quoted_list(field_names)
end


_M.entity_checkers = {
  at_least_one_of = {
    run_with_missing_fields = true,
    run_with_invalid_fields = true,
    fn = function(entity, field_names)
      if count_nonempty(entity, field_names) > 0 then
        return true
      end
      return nil, quoted_list(field_names)
    end,
  },

  conditional_at_least_one_of = {
    run_with_missing_fields = true,
    run_with_invalid_fields = true,
    field_sources = { "if_field", "then_at_least_one_of", "else_then_at_least_one_of" },
    required_fields = { "if_field" }, -- sic: an array, so nothing is required
    fn = function(entity, arg, schema)
      local if_value = get_field(entity, arg.if_field)
      if if_value == nil then
        return true
      end
      local if_schema_field = get_schema_field(schema, arg.if_field)

      local ok = validate_field(field_proxy(arg.if_match, if_schema_field), if_value)
      if not ok then
        if arg.else_match == nil then
          return true
        end
        ok = validate_field(field_proxy(arg.else_match, if_schema_field), if_value)
        if not ok then
          return true
        end
        local names = arg.else_then_at_least_one_of
        if count_nonempty(entity, names) > 0 then
          return true
        end
        local list = quoted_list(names)
        return nil, list, arg.else_then_err and format(arg.else_then_err, list) or nil
      end

      local names = arg.then_at_least_one_of
      if count_nonempty(entity, names) > 0 then
        return true
      end
      local list = quoted_list(names)
      return nil, list, arg.then_err and format(arg.then_err, list) or nil
    end,
  },

  only_one_of = {
    run_with_missing_fields = false,
    run_with_invalid_fields = true,
    fn = function(entity, field_names)
      local found, ok = false, false
      for i = 1, #field_names do
        if is_nonempty(get_field(entity, field_names[i])) then
          if not found then
            found, ok = true, true
          else
            ok = false
          end
        end
      end
      if ok then
        return true
      end
      return nil, quoted_list(field_names)
    end,
  },

  distinct = {
    run_with_missing_fields = false,
    run_with_invalid_fields = true,
    fn = function(entity, field_names)
      local seen = {}
      for i = 1, #field_names do
        local value = get_field(entity, field_names[i])
        if is_nonempty(value) then
          if seen[value] then
            return nil, quoted_list(field_names)
          end
          seen[value] = true
        end
      end
      return true
    end,
  },

  conditional = {
    run_with_missing_fields = false,
    run_with_invalid_fields = true,
    field_sources = { "if_field", "then_field" },
    required_fields = { if_field = true },
    fn = function(entity, arg, schema, errs)
      local if_value = get_field(entity, arg.if_field)
      local then_value = get_field(entity, arg.then_field)
      if then_value == nil then
        then_value = null
      end

      local ok = validate_field(field_proxy(arg.if_match, get_schema_field(schema, arg.if_field)),
                                if_value)
      if not ok then
        return true
      end

      if arg.then_match.required == true and then_value == null then
        set_field(errs, arg.then_field, msgs.REQUIRED)
        return nil, arg.if_field
      end

      local err
      ok, err = validate_field(field_proxy(arg.then_match, get_schema_field(schema, arg.then_field)),
                               then_value)
      if not ok then
        set_field(errs, arg.then_field, err)
        return nil, arg.if_field, arg.then_err and format(arg.then_err, arg.if_field) or nil
      end

      return true
    end,
  },

  custom_entity_check = {
    run_with_missing_fields = false,
    run_with_invalid_fields = false,
    field_sources = { "field_sources" },
    required_fields = { field_sources = true },
    fn = function(entity, arg)
      return arg.fn(entity)
    end,
  },

  mutually_required = {
    run_with_missing_fields = true,
    fn = mutually_required,
  },

  mutually_exclusive = {
    run_with_missing_fields = true,
    fn = mutually_exclusive,
  },

  mutually_exclusive_sets = {
    run_with_missing_fields = true,
    field_sources = { "set1", "set2" },
    required_fields = { "set1", "set2" },
    fn = function(entity, args)
      local nonempty1, nonempty2 = {}, {}
      for i = 1, #args.set1 do
        if is_nonempty(get_field(entity, args.set1[i])) then
          insert(nonempty1, args.set1[i])
        end
      end
      for i = 1, #args.set2 do
        if is_nonempty(get_field(entity, args.set2[i])) then
          insert(nonempty2, args.set2[i])
        end
      end
      if #nonempty1 > 0 and #nonempty2 > 0 then
        return nil, format("(%s), (%s)", quoted_list(nonempty1), quoted_list(nonempty2))
      end
      return true
    end,
  },
}


local function insert_entity_error(errs, err)
  if not errs["@entity"] then
    errs["@entity"] = {}
  end
  insert(errs["@entity"], err)
end


-- Kong prints the check's argument with penlight's pretty.write; a compact
-- stand-in with sorted keys.
local function describe(v, seen)
  if type(v) ~= "table" then
    return type(v) == "string" and format("%q", v) or tostring(v)
  end
  seen = seen or {}
  if seen[v] then
    return "<cycle>"
  end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = tostring(k) .. " = " .. describe(v[k], seen)
  end
  return "{ " .. concat(parts, ", ") .. " }"
end


local function run_entity_check(def, name, input, arg, full_check, errs)
  local checker = _M.entity_checkers[name]
  if not checker then
    insert_entity_error(errs, format(msgs.ENTITY_CHECK, tostring(name), "unknown entity check"))
    return
  end

  local check_input = {}
  local fields_to_check = {}
  local required_fields = {}

  if checker.field_sources then
    for i = 1, #checker.field_sources do
      local source = checker.field_sources[i]
      local v = arg[source]
      if type(v) == "string" then
        insert(fields_to_check, v)
        if checker.required_fields[source] then
          required_fields[v] = true
        end
      elseif type(v) == "table" then
        for j = 1, #v do
          insert(fields_to_check, v[j])
          if checker.required_fields[source] then
            required_fields[v[j]] = true
          end
        end
      end
    end
  else
    fields_to_check = arg
    for i = 1, #arg do
      required_fields[arg[i]] = true
    end
  end

  local missing
  local all_nil = true
  local all_ok = true
  for i = 1, #fields_to_check do
    local fname = fields_to_check[i]
    local value = get_field(input, fname)
    local sfield = get_schema_field(def, fname)
    if value == nil then
      if not checker.run_with_missing_fields
         and not arg.run_with_missing_fields
         and required_fields[fname]
         and not (sfield and sfield.nilable) then
        missing = missing or {}
        insert(missing, fname)
      end
    else
      all_nil = false
      -- a vault reference cannot be checked before it is resolved
      if sfield and sfield.type == "string" and sfield.referenceable and is_reference(value) then
        return
      end
    end
    if errs[fname] then
      all_ok = false
    end
    set_field(check_input, fname, value)
  end

  if not all_ok and not checker.run_with_invalid_fields and not arg.run_with_invalid_fields then
    return
  end

  if all_nil and not (checker.run_with_missing_fields and full_check) then
    return
  end

  if missing then
    for i = 1, #missing do
      set_field(errs, missing[i], msgs.REQUIRED_FOR_ENTITY_CHECK)
    end
    return
  end

  local ok, err, err2 = checker.fn(check_input, arg, def, errs)
  if ok then
    return
  end

  if err2 then
    insert_entity_error(errs, err2)
  else
    local error_fmt = msgs[name:upper()]
    if error_fmt then
      err = format(error_fmt, tostring(err))
    end
    if not err then
      err = format(msgs.ENTITY_CHECK, name, describe({ [name] = arg }))
    end
    insert_entity_error(errs, err)
  end
end


local function run_entity_checks(def, input, full_check, errs)
  local checks = def.entity_checks
  if type(checks) ~= "table" then
    return
  end
  for i = 1, #checks do
    local check = checks[i]
    local check_name = next(check)
    local arg = check[check_name]
    if arg and arg ~= null then
      run_entity_check(def, check_name, input, arg, full_check, errs)
    end
  end
end


--- Kong's Schema:validate: each present field, then required fields,
-- then entity checks.
-- @return true, or nil and an error table keyed by field name
-- (entity-check messages under "@entity")
validate = function(def, input, full_check)
  if full_check == nil then
    full_check = true
  end
  if type(input) ~= "table" then
    return nil, { ["@entity"] = { msgs.BAD_INPUT } }
  end

  local errs = {}
  local by_name = field_index(def).by_name

  for k, v in pairs(input) do
    local field = by_name[tostring(k)]
    if not field then
      errs[k] = msgs.UNKNOWN
    else
      local _, err = validate_field(field, v)
      errs[k] = err
    end
  end

  for name, field in each_field(def) do
    if field.required and (input[name] == null or (full_check and input[name] == nil)) then
      errs[name] = msgs.REQUIRED
    end
  end

  run_entity_checks(def, input, full_check, errs)

  if next(errs) then
    return nil, errs
  end
  return true
end
_M.validate = validate


--- Schema.define: a typedef is a field definition that can be called with
-- overrides to get a new definition (typedefs.port { default = 6379 }).
function _M.define(tbl)
  return setmetatable(tbl, {
    __call = function(t, arg)
      arg = arg or {}
      for k, v in pairs(t) do
        if arg[k] == nil then
          arg[k] = v
        end
      end
      return arg
    end,
  })
end


_M.is_nonempty = is_nonempty
_M.quoted_list = quoted_list

return _M
