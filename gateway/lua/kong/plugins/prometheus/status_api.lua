-- The prometheus plugin's route on Kong's Status API (status_listen): GET /metrics.
local exporter = require "kong.plugins.prometheus.exporter"

return {
  ["/metrics"] = {
    GET = function()
      exporter.collect()
    end,
  },
}
