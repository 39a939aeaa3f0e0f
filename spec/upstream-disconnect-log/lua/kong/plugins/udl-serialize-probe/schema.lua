-- Test fixture: a plugin at file-log's PRIORITY (9) that writes what kong.log.serialize()
-- carries under "upstream_disconnect", as file-log and http-log would send it.
return {
  name = "udl-serialize-probe",
  fields = { { config = { type = "record", fields = {} } } },
}
