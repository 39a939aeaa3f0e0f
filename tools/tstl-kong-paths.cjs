// TypeScriptToLua plugin: TypeScript sources live in plugins/<name>/, but Kong loads
// them as kong.plugins.<name>.<module>. The output tree is already dist/kong/plugins/...,
// so only the module names that TSTL writes into require() calls need the "kong." prefix.
// Anything else that is required (cjson, resty.redis, ...) is left alone.
const REQUIRE_OF_PROJECT_MODULE = /\brequire\("plugins\.([A-Za-z0-9_.-]+)"\)/g;

/** @type {import("typescript-to-lua").Plugin} */
module.exports = {
  beforeEmit(_program, _options, _host, files) {
    for (const file of files) {
      file.code = file.code.replace(REQUIRE_OF_PROJECT_MODULE, 'require("kong.plugins.$1")');
    }
  },
};
