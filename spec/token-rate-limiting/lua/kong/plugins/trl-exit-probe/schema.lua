return {
  name = "trl-exit-probe",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
