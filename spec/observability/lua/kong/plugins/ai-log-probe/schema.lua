return {
  name = "ai-log-probe",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
