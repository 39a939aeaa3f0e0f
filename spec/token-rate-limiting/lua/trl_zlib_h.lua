-- Test fixture: another zlib binding in the same Lua state, declaring zlib.h's standard names
-- (struct z_stream_s, z_stream, inflateInit2_, inflate, ...) in LuaJIT's one C namespace, as
-- any FFI binding does. Real Kong loads lua-ffi-zlib this way at start (kong.tools.gzip).
-- Two flavours, since bindings differ in the details: "zlib.h" spells the header's own
-- typedefs, "lua-ffi-zlib" uses char pointers, an enum of the constants and no void in
-- zlibVersion(), as that library does. Only one flavour fits in a Lua state: a struct cannot
-- be declared twice.
local ffi = require("ffi")

local _M = {}

local DECLARATIONS = {
  ["zlib.h"] = [[
    typedef unsigned char Byte;
    typedef Byte Bytef;
    typedef unsigned int uInt;
    typedef unsigned long uLong;
    typedef void *voidpf;
    typedef voidpf (*alloc_func)(voidpf opaque, uInt items, uInt size);
    typedef void (*free_func)(voidpf opaque, voidpf address);
    struct internal_state;
    typedef struct z_stream_s {
      const Bytef *next_in; uInt avail_in; uLong total_in;
      Bytef *next_out; uInt avail_out; uLong total_out;
      const char *msg; struct internal_state *state;
      alloc_func zalloc; free_func zfree; voidpf opaque;
      int data_type; uLong adler; uLong reserved;
    } z_stream;
    typedef z_stream *z_streamp;
    const char *zlibVersion(void);
    int deflateInit2_(z_streamp strm, int level, int method, int windowBits, int memLevel,
                      int strategy, const char *version, int stream_size);
    int deflate(z_streamp strm, int flush);
    int deflateEnd(z_streamp strm);
    int inflateInit2_(z_streamp strm, int windowBits, const char *version, int stream_size);
    int inflate(z_streamp strm, int flush);
    int inflateEnd(z_streamp strm);
  ]],
  ["lua-ffi-zlib"] = [[
    enum { Z_NO_FLUSH = 0, Z_FINISH = 4, Z_OK = 0, Z_STREAM_END = 1, Z_BUF_ERROR = -5, Z_DEFLATED = 8 };
    typedef void *(*z_alloc_func)(void *opaque, unsigned items, unsigned size);
    typedef void (*z_free_func)(void *opaque, void *address);
    typedef struct z_stream_s {
      char *next_in; unsigned avail_in; unsigned long total_in;
      char *next_out; unsigned avail_out; unsigned long total_out;
      char *msg; void *state; z_alloc_func zalloc; z_free_func zfree; void *opaque;
      int data_type; unsigned long adler; unsigned long reserved;
    } z_stream;
    const char *zlibVersion();
    int inflate(z_stream *, int flush);
    int inflateEnd(z_stream *);
    int inflateInit2_(z_stream *, int windowBits, const char *version, int stream_size);
    int deflate(z_stream *, int flush);
    int deflateEnd(z_stream *);
    int deflateInit2_(z_stream *, int level, int method, int windowBits, int memLevel, int strategy,
                      const char *version, int stream_size);
  ]],
}

local zlib

--- Declares the standard prototypes (raises what ffi.cdef raises) and loads zlib: through its
-- own namespace (ffi.load), or, with via == "C", into the global one and called through ffi.C.
function _M.declare(flavour, via)
  local declarations = DECLARATIONS[flavour]
  assert(declarations, "unknown flavour")
  ffi.cdef(declarations)
  if via == "C" then
    ffi.load("libz.so.1", true)
    zlib = ffi.C
  else
    zlib = ffi.load("libz.so.1")
  end
end

local CHUNK = 16384

-- Runs deflate or inflate over `data` with the standard prototypes, all input at once.
local function run(deflating, data, window_bits)
  local strm = ffi.new("z_stream")
  local version = zlib.zlibVersion()
  local rc
  if deflating then
    rc = zlib.deflateInit2_(strm, 9, 8, window_bits, 8, 0, version, ffi.sizeof(strm))
  else
    rc = zlib.inflateInit2_(strm, window_bits, version, ffi.sizeof(strm))
  end
  if rc ~= 0 then
    return nil, "init failed: " .. tostring(rc)
  end
  local out, parts = ffi.new("char[?]", CHUNK), {}
  local input = ffi.new("char[?]", #data + 1, data)
  strm.next_in, strm.avail_in = input, #data
  repeat
    strm.next_out, strm.avail_out = out, CHUNK
    if deflating then
      rc = zlib.deflate(strm, 4) -- Z_FINISH
    else
      rc = zlib.inflate(strm, 0) -- Z_NO_FLUSH
    end
    parts[#parts + 1] = ffi.string(out, CHUNK - strm.avail_out)
  until rc ~= 0 or (not deflating and strm.avail_in == 0 and strm.avail_out > 0)
  if deflating then zlib.deflateEnd(strm) else zlib.inflateEnd(strm) end
  if rc ~= 1 then
    return nil, "stream ended with " .. tostring(rc)
  end
  return table.concat(parts)
end

--- Compresses with the standard binding: window_bits 31 gzip, 15 zlib, -15 raw deflate.
function _M.compress(data, window_bits)
  return run(true, data, window_bits)
end

--- Decompresses with the standard binding (47: gzip or zlib, found by zlib; -15: raw deflate).
function _M.decompress(data, window_bits)
  return run(false, data, window_bits)
end

--- Whether the standard binding still works: a gzip round trip. Returns true, or nil and why.
function _M.works()
  local text = string.rep("zlib next to token-rate-limiting. ", 50)
  local ok, z, err = pcall(_M.compress, text, 31)
  if not (ok and z) then
    return nil, "compress: " .. tostring(ok and err or z)
  end
  local back
  ok, back, err = pcall(_M.decompress, z, 47)
  if not (ok and back) then
    return nil, "decompress: " .. tostring(ok and err or back)
  end
  if back ~= text then
    return nil, "the round trip changed the text"
  end
  return true
end

return _M
