-- kong.cluster (kong/pdk/cluster.lua): a gateway without a database is its own cluster, so its
-- id is the node id.
local state = require "kong_local.state"

local function new()
  return {
    get_id = function()
      return state.node_id
    end,
  }
end

return { new = new }
