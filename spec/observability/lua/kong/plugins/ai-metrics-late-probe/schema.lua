return require("ai_metrics_probe").schema("ai-metrics-late-probe", {
  { scale = { type = "number", default = 1 } },
})
