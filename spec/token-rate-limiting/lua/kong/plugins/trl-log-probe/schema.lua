return {
  name = "trl-log-probe",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
