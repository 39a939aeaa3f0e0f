--- Plugin config validation as Kong 3.9 does it when it loads a declarative
-- config: the plugin's schema specialises Kong's `plugins` entity, defaults
-- are filled in, every rule is checked, and a failure names the plugin,
-- the field path and the rule in Kong's wording.
--
-- Entry points:
--   validate_plugin_schema(plugin_name, plugin_schema) -> true | nil, err
--   process_plugin_config(plugin_name, plugin_schema, entity)
--       -> config, processed_entity | nil, err_string, err_t
--   pretty_print_error(err_t) -> Kong's multi-line declarative error text
local core = require "kong_local.schema.core"
local errors = require "kong_local.schema.errors"
local typedefs = require "kong.db.schema.typedefs"

local null = core.null
local msgs = errors.messages

local type = type
local next = next
local ipairs = ipairs
local tostring = tostring
local format = string.format
local setmetatable = setmetatable

local _M = {}

_M.null = null
_M.messages = msgs


-- Kong's `plugins` entity (kong/db/schema/entities/plugins.lua): the fields
-- a plugin entry may carry and the ones a plugin schema may specialise.
local PLUGINS_ENTITY = {
  name = "plugins",
  fields = {
    { id = typedefs.uuid },
    { name = { type = "string", required = true } },
    { instance_name = typedefs.utf8_name },
    { created_at = typedefs.auto_timestamp_s },
    { updated_at = typedefs.auto_timestamp_s },
    { route = { type = "foreign", reference = "routes", default = null, on_delete = "cascade" } },
    { service = { type = "foreign", reference = "services", default = null, on_delete = "cascade" } },
    { consumer = { type = "foreign", reference = "consumers", default = null, on_delete = "cascade" } },
    { config = { type = "record", abstract = true } },
    { protocols = typedefs.protocols },
    { enabled = { type = "boolean", required = true, default = true } },
    { tags = typedefs.tags },
  },
}
_M.PLUGINS_ENTITY = PLUGINS_ENTITY


-- Schema definition checks (MetaSubSchema + Schema.new_subschema) ------------

local function check_field_definition(fdef, path, errs)
  if type(fdef) ~= "table" then
    errs[path] = "expected a table"
    return
  end
  local ftype = fdef.type
  if ftype == nil then
    errs[path] = "missing type declaration"
    return
  end
  if not core.valid_types[ftype] then
    errs[path] = format(msgs.SCHEMA_TYPE, tostring(ftype))
    return
  end

  local function need(attr)
    if fdef[attr] == nil then
      errs[path] = format("field of type '%s' must declare '%s'", ftype, attr)
      return false
    end
    return true
  end

  if ftype == "array" or ftype == "set" then
    if need("elements") then
      check_field_definition(fdef.elements, path .. ".elements", errs)
    end
  elseif ftype == "map" then
    if need("keys") and need("values") then
      check_field_definition(fdef.keys, path .. ".keys", errs)
      check_field_definition(fdef.values, path .. ".values", errs)
    end
  elseif ftype == "record" then
    if fdef.abstract and fdef.fields == nil then
      return
    end
    if need("fields") then
      if type(fdef.fields) ~= "table" then
        errs[path] = "'fields' must be a table"
        return
      end
      for i, item in ipairs(fdef.fields) do
        local name, sub = nil, nil
        if type(item) == "table" then
          name, sub = next(item)
        end
        if name == nil then
          errs[path .. ".fields." .. i] = "field entry table is empty"
        elseif next(item, name) ~= nil then
          errs[path .. ".fields." .. i] = "field entry table must have exactly one field"
        else
          check_field_definition(sub, path .. "." .. tostring(name), errs)
        end
      end
    end
  end

  if fdef.custom_validator ~= nil and type(fdef.custom_validator) ~= "function" then
    errs[path] = "'custom_validator' must be a function"
  end

  if type(fdef.entity_checks) == "table" then
    for i, check in ipairs(fdef.entity_checks) do
      local cname = type(check) == "table" and next(check) or nil
      if not core.entity_checkers[cname] then
        errs[path .. ".entity_checks." .. i] = "unknown entity check: " .. tostring(cname)
      end
    end
  end
end


-- Entity.new_subschema makes records required unless they say otherwise,
-- so a missing record still gets its nested defaults. Done on a copy
-- (functions and ngx.null kept as they are), once per schema table.
local function make_records_required(def, seen)
  if type(def) ~= "table" or seen[def] then
    return
  end
  seen[def] = true
  if type(def.fields) ~= "table" then
    return
  end
  for _, item in ipairs(def.fields) do
    local _, f = next(item)
    if type(f) == "table" and f.type == "record" then
      if f.required == nil then
        f.required = true
      end
      make_records_required(f, seen)
    end
  end
end


local prepared_cache = setmetatable({}, { __mode = "k" })

--- Check a plugin schema the way Kong does when it loads the plugin, and
-- prepare it for validation.
-- @return the specialised plugins-entity definition, or nil and Kong's
-- startup error ("error loading plugin schemas: on plugin 'x': ...")
local function prepare(plugin_name, schema)
  local prefix = "error loading plugin schemas: on plugin '" .. tostring(plugin_name) .. "': "

  if type(schema) ~= "table" then
    return nil, prefix .. "no configuration schema found for plugin: " .. tostring(plugin_name)
  end

  local cached = prepared_cache[schema]
  if cached then
    return cached
  end

  local errs = {}
  if schema.name == nil or schema.name == null then
    errs.name = msgs.REQUIRED
  elseif type(schema.name) ~= "string" then
    errs.name = msgs.STRING
  end
  if type(schema.fields) ~= "table" then
    errs["@entity"] = { "'fields' must be a table" }
  else
    for i, item in ipairs(schema.fields) do
      local fname, fdef
      if type(item) == "table" then
        fname, fdef = next(item)
      end
      if fname == nil then
        errs["fields." .. i] = "field entry table is empty"
      elseif next(item, fname) ~= nil then
        errs["fields." .. i] = "field entry table must have exactly one field"
      else
        check_field_definition(fdef, tostring(fname), errs)
      end
    end
    -- Kong itself would accept a schema without config and fail only when a
    -- config is given ("abstract field was not specialized"); every bundled
    -- plugin declares one, and handlers index conf, so it is required here.
    local has_config = false
    for _, item in ipairs(schema.fields) do
      if type(item) == "table" and type(item.config) == "table" then
        has_config = true
      end
    end
    if not has_config and not errs.config then
      errs.config = "a plugin schema must declare a 'config' field"
    end
    if type(schema.entity_checks) == "table" then
      for i, check in ipairs(schema.entity_checks) do
        local cname = type(check) == "table" and next(check) or nil
        if not core.entity_checkers[cname] then
          errs["entity_checks." .. i] = "unknown entity check: " .. tostring(cname)
        end
      end
    end
  end
  if schema.shorthand_fields ~= nil and type(schema.shorthand_fields) ~= "table" then
    errs.shorthand_fields = "expected an array"
  end
  if next(errs) then
    return nil, prefix .. errors.schema_violation(errs)
  end

  -- Schema.new_subschema: only fields the plugins entity has, with a
  -- compatible type
  local parent = core.field_index(PLUGINS_ENTITY).by_name
  for _, item in ipairs(schema.fields) do
    local fname, fdef = next(item)
    local pfield = parent[fname]
    if not pfield then
      return nil, prefix .. "error initializing schema for plugin: "
                  .. format(msgs.SUBSCHEMA_BAD_FIELD, schema.name, tostring(fname))
    end
    local compatible = pfield.type == fdef.type
    if compatible and (fdef.type == "array" or fdef.type == "set") then
      compatible = pfield.elements.type == fdef.elements.type
    elseif compatible and fdef.type == "map" then
      compatible = pfield.keys.type == fdef.keys.type and pfield.values.type == fdef.values.type
    end
    if not compatible then
      return nil, prefix .. "error initializing schema for plugin: "
                  .. format(msgs.SUBSCHEMA_BAD_TYPE, schema.name, tostring(fname))
    end
  end

  local specialised = core.deep_copy({
    fields = schema.fields,
    entity_checks = schema.entity_checks,
    shorthand_fields = schema.shorthand_fields,
  })
  make_records_required(specialised, {})

  local overrides = core.field_index(specialised).by_name
  local fields = {}
  for _, item in ipairs(PLUGINS_ENTITY.fields) do
    local fname, fdef = next(item)
    fields[#fields + 1] = { [fname] = overrides[fname] or fdef }
  end

  local entity_def = {
    name = schema.name,
    fields = fields,
    entity_checks = specialised.entity_checks,
    shorthand_fields = specialised.shorthand_fields,
  }
  prepared_cache[schema] = entity_def
  return entity_def
end


--- Check a plugin schema as Kong's plugin loader would.
-- @return true, or nil and Kong's startup error text
function _M.validate_plugin_schema(plugin_name, plugin_schema)
  local def, err = prepare(plugin_name, plugin_schema)
  if not def then
    return nil, err
  end
  return true
end


local function plugin_error(plugin_name, err_t)
  local parts = {}
  for _, e in ipairs(errors.flatten(err_t)) do
    parts[#parts + 1] = e.path == "" and e.message or (e.path .. ": " .. e.message)
  end
  local list = table.concat(parts, "; ")
  return "in 'plugins' (" .. tostring(plugin_name) .. "): " .. list
end
_M.plugin_error = plugin_error


--- Validate one declarative plugin entry and fill in its defaults.
-- @param plugin_name the plugin's name (used in messages; defaults to entity.name)
-- @param plugin_schema the table `kong.plugins.<name>.schema` returned, or nil
--        when the plugin is not installed
-- @param entity the entry: { name, config?, protocols?, enabled?, consumer?,
--        route?, service?, tags?, instance_name?, id? }
-- @return config, entity: the config the handler gets (defaults filled, unset
--         optional fields nil) and the whole processed entry (protocols,
--         enabled, ...); or nil, err_string, err_t where err_string is
--         "in 'plugins' (<name>): <path>: <message>[; ...]" and err_t is
--         Kong's nested error table for the entry
function _M.process_plugin_config(plugin_name, plugin_schema, entity)
  plugin_name = plugin_name or (type(entity) == "table" and entity.name) or "?"

  if type(entity) ~= "table" then
    local err_t = { ["@entity"] = { msgs.BAD_INPUT } }
    return nil, plugin_error(plugin_name, err_t), err_t
  end

  if plugin_schema == nil then
    local err_t = { name = format(msgs.PLUGIN_NOT_ENABLED, tostring(plugin_name)) }
    return nil, plugin_error(plugin_name, err_t), err_t
  end

  local def, err = prepare(plugin_name, plugin_schema)
  if not def then
    return nil, err, { ["@entity"] = { err } }
  end

  local input = entity
  if input.name == nil then
    input = core.deep_copy(entity)
    input.name = plugin_name
  end

  local processed, perr = core.process_auto_fields(def, input, "insert")
  if not processed then
    return nil, plugin_error(plugin_name, perr), perr
  end

  local ok, err_t = core.validate(def, processed)
  if not ok then
    return nil, plugin_error(plugin_name, err_t), err_t
  end

  local result = core.process_auto_fields(def, processed, "select")
  return result.config, result
end


--- Kong's declarative error text for an error table.
-- @param err_t e.g. { plugins = { [3] = err_t_of_entry } }
function _M.pretty_print_error(err_t)
  return errors.pretty_print(err_t)
end


--- Lower-level pieces, for code that validates records that are not
-- plugins (the gateway's own entities) with the same rules.
_M.validate = core.validate
_M.validate_field = core.validate_field
_M.process_auto_fields = core.process_auto_fields
_M.flatten_errors = errors.flatten
_M.errors_to_line = errors.to_line

return _M
