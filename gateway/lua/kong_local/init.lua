-- init_by_lua / init_worker_by_lua of the local gateway: loads the declarative config written by
-- gateway/cli.ts, loads and validates every configured plugin as Kong does, builds the router,
-- installs the `kong` global, then (per worker) runs the handlers' init_worker and configure.
local cjson = require "cjson.safe"
local state = require "kong_local.state"
local plugins = require "kong_local.plugins"
local router = require "kong_local.router"
local db = require "kong_local.db"
local phases = require "kong_local.phases"

local fmt = string.format
local concat = table.concat
local null = ngx.null

local _M = {}

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local data = f:read("*a")
  f:close()
  return data
end

local function nonnull(v)
  if v == null then return nil end
  return v
end

local function fail(msg)
  -- init_by_lua errors make nginx exit; level 0 keeps the message free of a file position
  error(msg, 0)
end

local function where(entity)
  local scope = {}
  local route, service, consumer = nonnull(entity.route), nonnull(entity.service), nonnull(entity.consumer)
  if route then
    local r = state.routes_by_id[route.id]
    scope[#scope + 1] = "route '" .. ((r and r.name) or route.id) .. "'"
  end
  if service then
    local s = state.services_by_id[service.id]
    scope[#scope + 1] = "service '" .. ((s and s.name) or service.id) .. "'"
  end
  if consumer then
    local c = db.find_consumer(consumer.id, false)
    scope[#scope + 1] = "consumer '" .. ((c and (c.username or c.custom_id)) or consumer.id) .. "'"
  end
  return fmt("'%s'%s", entity._origin or "plugins", #scope > 0 and (" (" .. concat(scope, ", ") .. ")") or "")
end

local function require_module(modname)
  local ok, mod = pcall(require, modname)
  if not ok then
    return nil, mod
  end
  return mod
end

-- The declarative entry as the user wrote it (cli.ts adds nulls and _origin for bookkeeping):
-- absent fields must stay absent so that the schema fills their defaults.
local ENTITY_FIELDS = { "id", "name", "instance_name", "config", "protocols", "enabled", "route",
                        "service", "consumer", "tags" }
local function clean_entity(entity)
  local out = {}
  for _, k in ipairs(ENTITY_FIELDS) do
    local v = entity[k]
    if v ~= nil and v ~= null then
      out[k] = v
    end
  end
  return out
end

local function schema_module()
  local mod, err = require_module("kong_local.schema")
  if not mod then
    fail("cannot load the schema validator kong_local.schema: " .. tostring(err))
  end
  return mod
end

-- Kong's load_plugin: flags set from the schema's scope restrictions (typedefs.no_consumer, ...)
local function scope_flags(handler, schema)
  for _, f in ipairs(schema.fields or {}) do
    local fname, fdef = next(f)
    if (fname == "consumer" or fname == "route" or fname == "service") and type(fdef) == "table"
       and fdef.eq == null then
      handler["no_" .. fname] = true
    end
  end
end

local function load_plugins(config)
  local schema_lib = schema_module()
  local by_name, order = {}, {}
  for _, entity in ipairs(config.plugins or {}) do
    if not by_name[entity.name] then
      by_name[entity.name] = {}
      order[#order + 1] = entity.name
    end
    table.insert(by_name[entity.name], entity)
  end

  -- KONG_PLUGINS=bundled,my-plugin restricts what may be loaded, as in Kong
  local allowed
  local env_plugins = os.getenv("KONG_PLUGINS")
  if env_plugins and env_plugins ~= "" then
    allowed = {}
    for item in env_plugins:gmatch("[^,%s]+") do
      if item == "bundled" then
        for name in pairs(plugins.BUNDLED) do allowed[name] = true end
      elseif item ~= "off" then
        allowed[item] = true
      end
    end
  end

  local loaded, skipped = {}, {}
  for _, name in ipairs(order) do
    local entities = by_name[name]
    local handler_mod = "kong.plugins." .. name .. ".handler"
    local schema_mod = "kong.plugins." .. name .. ".schema"
    if allowed and not allowed[name] then
      fail(fmt("error parsing declarative config: in %s: in 'name': plugin '%s' not enabled; " ..
               "add it to the 'plugins' configuration property", where(entities[1]), name))
    end
    if not plugins.module_exists(handler_mod) then
      if plugins.BUNDLED[name] then
        skipped[#skipped + 1] = name
      else
        fail(fmt("error parsing declarative config: in %s: in 'name': plugin '%s' not enabled; " ..
                 "add it to the 'plugins' configuration property (no module %s on the Lua path: " ..
                 "run `make lua`, or add its folder with --lua-path)", where(entities[1]), name, handler_mod))
      end
    else
      local handler, err = require_module(handler_mod)
      if not handler then
        fail(fmt("error loading plugin '%s': %s", name, tostring(err)))
      end
      local ok_handler, herr = plugins.validate_handler(name, handler)
      if not ok_handler then
        fail(herr)
      end
      if not plugins.module_exists(schema_mod) then
        fail(fmt("error loading plugin schemas: on plugin '%s': no configuration schema found", name))
      end
      local schema
      schema, err = require_module(schema_mod)
      if not schema then
        fail(fmt("error loading plugin schemas: on plugin '%s': %s", name, tostring(err)))
      end
      if schema_lib.validate_plugin_schema then
        local ok, serr = schema_lib.validate_plugin_schema(name, schema)
        if not ok then
          fail(fmt("error loading plugin schemas: on plugin '%s': %s", name, tostring(serr)))
        end
      end
      scope_flags(handler, schema)

      local configs, all = {}, {}
      for _, entity in ipairs(entities) do
        local conf, perr = schema_lib.process_plugin_config(name, schema, clean_entity(entity))
        if conf == nil then
          fail(fmt("error parsing declarative config: in %s: %s", where(entity), tostring(perr)))
        end
        if plugins.should_process(entity) then
          conf = plugins.build_conf(entity, conf)
          local key = plugins.combo_key(nonnull(entity.route) and entity.route.id,
                                        nonnull(entity.service) and entity.service.id,
                                        nonnull(entity.consumer) and entity.consumer.id)
          configs[key] = conf
          all[#all + 1] = conf
        end
      end
      state.configs[name] = configs
      state.all_configs[name] = all
      loaded[#loaded + 1] = { name = name, handler = handler, schema = schema }
    end
  end
  state.plugins = plugins.sort(loaded)
  state.skipped_bundled = skipped
end

function _M.init(config_path)
  local text, err = read_file(config_path)
  if not text then
    fail("cannot read " .. tostring(config_path) .. ": " .. tostring(err))
  end
  local config
  config, err = cjson.decode(text)
  if not config then
    fail("invalid JSON in " .. config_path .. ": " .. tostring(err))
  end
  state.config = config
  state.gateway = config._gateway or {}
  state.prefix = ngx.config.prefix()
  state.created_at = ngx.time()

  -- the `kong` global must exist before plugin modules load: many capture `local kong = kong`
  _G.kong = require("kong_local.global").new()

  db.load(config)

  state.services_by_id, state.routes_by_id = {}, {}
  for _, s in ipairs(config.services or {}) do
    s.path = nonnull(s.path)
    s.name = nonnull(s.name)
    s.tags = nonnull(s.tags)
    state.services_by_id[s.id] = s
  end
  local active_routes = {}
  for _, r in ipairs(config.routes or {}) do
    for _, k in ipairs({ "name", "service", "methods", "hosts", "paths", "headers", "tags" }) do
      r[k] = nonnull(r[k])
    end
    state.routes_by_id[r.id] = r
    local svc = r.service and state.services_by_id[r.service.id]
    -- Kong leaves the routes of a disabled service out of the router
    if not (svc and svc.enabled == false) then
      active_routes[#active_routes + 1] = r
    end
  end
  local ok, rt = pcall(router.new, active_routes, state.services_by_id)
  if not ok then
    fail("error building the router: " .. tostring(rt))
  end
  state.router = rt

  load_plugins(config)

  if #state.skipped_bundled > 0 then
    local msg = "bundled Kong plugins configured but not run by the local gateway (they run in real Kong): " ..
                concat(state.skipped_bundled, ", ")
    ngx.log(ngx.WARN, msg)
    io.stderr:write("gateway: warning: ", msg, "\n")
  end

  local names = {}
  for i, p in ipairs(state.plugins) do
    names[i] = p.name .. "(" .. tostring(p.handler.PRIORITY) .. ")"
  end
  ngx.log(ngx.NOTICE, "local gateway loaded ", #config.services, " services, ", #config.routes, " routes, plugins: ",
          #names > 0 and concat(names, " > ") or "none")
end

function _M.init_worker()
  math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
  require("kong_local.resolver").patch_sockets()
  require("kong_local.global").init_worker()
  local log = require "kong_local.pdk.log"

  phases.set_worker_phase("init_worker")
  for _, p in ipairs(state.plugins) do
    if type(p.handler.init_worker) == "function" then
      log.set_namespace(p.name)
      local ok, err = pcall(p.handler.init_worker, p.handler)
      log.reset_namespace()
      if not ok then
        ngx.log(ngx.ERR, "failed executing plugin '", p.name, "' init_worker: ", tostring(err))
      end
    end
  end

  phases.set_worker_phase("configure")
  for _, p in ipairs(state.plugins) do
    if type(p.handler.configure) == "function" then
      local configs = state.all_configs[p.name]
      if configs and #configs == 0 then configs = nil end
      log.set_namespace(p.name)
      ngx.update_time()
      local start = ngx.now()
      local ok, err = pcall(p.handler.configure, p.handler, configs)
      log.reset_namespace()
      ngx.update_time()
      if not ok then
        ngx.log(ngx.ERR, "failed executing plugin '", p.name, "' configure: ", tostring(err))
      elseif ngx.now() - start > 0.05 then
        ngx.log(ngx.NOTICE, "executing plugin '", p.name, "' configure took more than 50 ms")
      end
    end
  end
  phases.set_worker_phase(nil)

  -- tells gateway/cli.ts this worker is initialised (it prints "listening" once all are)
  local marker = io.open(ngx.config.prefix() .. "logs/.worker-ready-" .. ngx.worker.pid(), "w")
  if marker then
    marker:close()
  end
end

return _M
