return {
  name = "trl-zlib-late",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
