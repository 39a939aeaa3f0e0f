-- Test fixture: see handler.lua.
return {
  name = "reader-probe",
  fields = { { config = { type = "record", fields = {} } } },
}
