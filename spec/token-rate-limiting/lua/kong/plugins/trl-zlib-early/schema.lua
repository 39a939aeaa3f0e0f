return {
  name = "trl-zlib-early",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
