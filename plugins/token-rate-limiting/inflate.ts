// Streaming gzip/deflate decoding with zlib through the LuaJIT FFI, for the rare upstream that
// compresses although asked for identity. Output goes through a fixed 16 KiB buffer.

import * as ffi from "ffi";

const OUT_BYTES = 16 * 1024;

const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;
const Z_NO_FLUSH = 0;
const GZIP_WINDOW_BITS = 15 + 16;
const ZLIB_WINDOW_BITS = 15;
const RAW_WINDOW_BITS = -15;

// LuaJIT's one C namespace is shared with every FFI binding (Kong loads lua-ffi-zlib), and a
// struct declared twice is an error. So no zlib.h name is declared: a private struct, and
// private function names bound to zlib's symbols by __asm__.
const STREAM_TYPE = "struct tokrl_zlib_stream";
const STREAM_DECLARATION = `
  struct tokrl_zlib_stream {
    const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
    unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
    const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
    int data_type; unsigned long adler; unsigned long reserved;
  };
`;
const FUNCTION_DECLARATIONS = `
  const char *tokrl_zlibVersion(void) __asm__("zlibVersion");
  int tokrl_inflateInit2_(struct tokrl_zlib_stream *strm, int windowBits, const char *version, int stream_size) __asm__("inflateInit2_");
  int tokrl_inflate(struct tokrl_zlib_stream *strm, int flush) __asm__("inflate");
  int tokrl_inflateEnd(struct tokrl_zlib_stream *strm) __asm__("inflateEnd");
`;

interface ZStream extends ffi.CData {
  next_in: ffi.CData;
  avail_in: number;
  next_out: ffi.CData;
  avail_out: number;
}

interface ZLib {
  tokrl_zlibVersion(this: void): ffi.CData;
  tokrl_inflateInit2_(this: void, strm: ZStream, windowBits: number, version: ffi.CData, size: number): number;
  tokrl_inflate(this: void, strm: ZStream, flush: number): number;
  tokrl_inflateEnd(this: void, strm: ZStream): number;
}

let zlib: ZLib | undefined;
let loadError: string | undefined;

function declare(): LuaMultiReturn<[boolean, unknown]> {
  // A fresh copy of this module (package.loaded cleared) finds the struct already declared.
  const [known] = pcall(ffi.typeof, STREAM_TYPE);
  return pcall(ffi.cdef, known ? FUNCTION_DECLARATIONS : STREAM_DECLARATION + FUNCTION_DECLARATIONS);
}

function resolves(lib: ZLib): boolean {
  const [ok] = pcall(() => [lib.tokrl_zlibVersion, lib.tokrl_inflateInit2_, lib.tokrl_inflate, lib.tokrl_inflateEnd]);
  return ok;
}

function library(): ZLib | undefined {
  if (zlib !== undefined || loadError !== undefined) return zlib;
  const [declared, cdefErr] = declare();
  if (!declared) {
    loadError = `zlib declarations failed: ${cdefErr}`;
    return undefined;
  }
  for (const name of ["z", "libz.so.1"]) {
    const [ok, lib] = pcall((libName: string) => ffi.load<ZLib>(libName), name);
    if (ok && resolves(lib)) {
      zlib = lib;
      return zlib;
    }
  }
  loadError = "zlib could not be loaded";
  return undefined;
}

/** "deflate" means zlib, but some servers send raw deflate: as browsers do, the first two bytes decide. */
function windowBitsFor(b0: number, b1: number): number {
  if (b0 === 0x1f && b1 === 0x8b) return GZIP_WINDOW_BITS;
  if (b0 % 16 === 8 && b0 < 0x80 && (b0 * 256 + b1) % 31 === 0) return ZLIB_WINDOW_BITS;
  return RAW_WINDOW_BITS;
}

export type PieceSink = (this: void, piece: string) => void;

export interface Inflater {
  /** False once decoding failed. */
  feed(chunk: string, sink: PieceSink): boolean;
  /** Also done by the GC. */
  close(): void;
  readonly error: string | undefined;
  readonly ended: boolean;
  readonly decodedBytes: number;
}

class ZInflater implements Inflater {
  error: string | undefined = undefined;
  ended = false;
  decodedBytes = 0;
  private head = "";
  private started = false;
  // The finalizer must not reach the inflater (a cycle the GC keeps): both share only this flag.
  private readonly state = { open: false };
  private readonly strm: ZStream;
  private readonly out: ffi.CData;

  constructor(private readonly lib: ZLib) {
    this.strm = ffi.new(STREAM_TYPE) as ZStream;
    this.out = ffi.new("unsigned char[?]", OUT_BYTES);
  }

  feed(chunk: string, sink: PieceSink): boolean {
    if (this.error !== undefined) return false;
    if (this.ended || chunk.length === 0) return true;
    if (!this.started) {
      const input = this.head + chunk;
      if (input.length < 2) {
        this.head = input;
        return true;
      }
      this.head = "";
      if (!this.start(windowBitsFor(string.byte(input, 1), string.byte(input, 2)))) return false;
      chunk = input;
    }
    const strm = this.strm;
    // `chunk` stays referenced by this frame while zlib reads from it.
    strm.next_in = ffi.cast("const unsigned char *", chunk);
    strm.avail_in = chunk.length;
    for (;;) {
      strm.next_out = this.out;
      strm.avail_out = OUT_BYTES;
      const rc = this.lib.tokrl_inflate(strm, Z_NO_FLUSH);
      const produced = OUT_BYTES - strm.avail_out;
      if (produced > 0) {
        this.decodedBytes += produced;
        sink(ffi.string(this.out, produced));
      }
      if (rc === Z_STREAM_END) {
        this.ended = true;
        this.close();
        return true;
      }
      if (rc !== Z_OK && rc !== Z_BUF_ERROR) {
        this.fail(`inflate error ${rc}`);
        return false;
      }
      if (strm.avail_in === 0 && strm.avail_out > 0) return true;
      if (rc === Z_BUF_ERROR && produced === 0) return true;
    }
  }

  close(): void {
    if (this.state.open) {
      this.state.open = false;
      this.lib.tokrl_inflateEnd(this.strm);
    }
  }

  private start(windowBits: number): boolean {
    this.started = true;
    const lib = this.lib;
    const rc = lib.tokrl_inflateInit2_(this.strm, windowBits, lib.tokrl_zlibVersion(), ffi.sizeof(STREAM_TYPE) ?? 0);
    if (rc !== Z_OK) {
      this.fail(`inflateInit2 failed: ${rc}`);
      return false;
    }
    const state = this.state;
    state.open = true;
    ffi.gc(this.strm, (s) => {
      if (state.open) {
        state.open = false;
        lib.tokrl_inflateEnd(s as ZStream);
      }
    });
    return true;
  }

  private fail(reason: string): void {
    this.error = reason;
    this.close();
  }
}

export function newInflater(): LuaMultiReturn<[Inflater, undefined] | [undefined, string]> {
  const lib = library();
  if (lib === undefined) return $multi(undefined, loadError ?? "zlib unavailable");
  return $multi(new ZInflater(lib), undefined);
}
