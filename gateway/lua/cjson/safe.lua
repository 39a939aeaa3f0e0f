-- `require "cjson.safe"` in the local gateway: Kong's (OpenResty's) lua-cjson API, see
-- kong_local/cjson_compat.lua.
return require("kong_local.cjson_compat").load(true)
