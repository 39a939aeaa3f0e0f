return require("ai_metrics_probe").schema("ai-metrics-probe", {
  { refuse = { type = "boolean", default = false } },
  { guard_rule = { type = "string" } },
  { guard_action = { type = "string", default = "allowed" } },
})
