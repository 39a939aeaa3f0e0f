-- Process-wide state of the local gateway, filled once in init_by_lua (master process, before
-- the workers fork) and read by every phase driver and PDK module.
return {
  -- the normalised declarative config (config.json written by gateway/cli.ts)
  config = nil,
  -- loaded plugins sorted in Kong's execution order: { name, handler, schema }
  plugins = {},
  -- plugin name -> { [combo key] = conf } (see kong_local.plugins.combo_key)
  configs = {},
  -- plugin name -> array of every enabled conf (the configure() argument)
  all_configs = {},
  -- kong_local.router instance built from the routes of enabled services
  router = nil,
  -- bundled plugins configured but not run (listed in the startup warning)
  skipped_bundled = {},
  gateway = nil,
  created_at = nil,
  services_by_id = {},
  routes_by_id = {},
  node_id = nil,
  hostname = nil,
  prefix = nil,
}
