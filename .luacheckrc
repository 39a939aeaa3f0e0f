std = "luajit"
globals = { "ngx", "kong" }
max_line_length = false
-- TypeScriptToLua's inlined runtime helpers declare locals that a given file may not use.
files["dist"] = { unused = false, unused_secondaries = false, redefined = false, shadowing = false }
files["spec"] = { std = "+busted", unused_args = false }
