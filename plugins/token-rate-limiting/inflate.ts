// Streaming gzip/deflate decoding with zlib through the LuaJIT FFI, for the rare upstream
// that compresses although the plugin asked it for identity. Each chunk is inflated into a
// fixed 16 KiB buffer, piece by piece, so memory stays bounded; a cap on the decoded size
// stops a compression bomb from costing unbounded CPU.

import * as ffi from "ffi";

const OUT_BYTES = 16 * 1024;
/** Beyond this many decoded bytes the rest of the body is not decoded (counting falls back to the estimate). */
export const MAX_DECODED_BYTES = 64 * 1024 * 1024;

const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;
const Z_NO_FLUSH = 0;
// 15 window bits + 32: zlib recognises a gzip or a zlib header by itself.
const WINDOW_BITS_AUTO = 15 + 32;

interface ZStream {
  next_in: unknown;
  avail_in: number;
  next_out: unknown;
  avail_out: number;
  msg: unknown;
}

interface ZLib {
  zlibVersion(this: void): unknown;
  inflateInit2_(this: void, strm: ZStream, windowBits: number, version: unknown, size: number): number;
  inflate(this: void, strm: ZStream, flush: number): number;
  inflateEnd(this: void, strm: ZStream): number;
}


let zlib: ZLib | undefined;
let loadError: string | undefined;

function library(): ZLib | undefined {
  if (zlib !== undefined || loadError !== undefined) return zlib;
  const [declared, cdefErr] = pcall(ffi.cdef, `
    typedef struct tokrl_z_stream_s {
      const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
      unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
      const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
      int data_type; unsigned long adler; unsigned long reserved;
    } tokrl_z_stream;
    const char *zlibVersion(void);
    int inflateInit2_(tokrl_z_stream *strm, int windowBits, const char *version, int stream_size);
    int inflate(tokrl_z_stream *strm, int flush);
    int inflateEnd(tokrl_z_stream *strm);
  `);
  if (!declared) {
    loadError = `zlib declarations failed: ${cdefErr}`;
    return undefined;
  }
  for (const name of ["z", "libz.so.1"]) {
    const [ok, lib] = pcall((libName: string) => ffi.load<ZLib>(libName), name);
    if (ok) {
      zlib = lib;
      return zlib;
    }
  }
  loadError = "zlib could not be loaded";
  return undefined;
}

export type PieceSink = (this: void, piece: string) => void;

export interface Inflater {
  /** Decodes the next compressed chunk, handing every decoded piece to `sink`; false once decoding failed. */
  feed(chunk: string, sink: PieceSink): boolean;
  /** Releases zlib's state (also done by the GC). */
  close(): void;
  /** Why decoding stopped, once it did. */
  readonly error: string | undefined;
  readonly ended: boolean;
  readonly decodedBytes: number;
}

class ZInflater implements Inflater {
  error: string | undefined = undefined;
  ended = false;
  decodedBytes = 0;

  constructor(
    private readonly lib: ZLib,
    private readonly strm: ZStream,
    private readonly out: unknown,
    private readonly state: { open: boolean },
  ) {}

  feed(chunk: string, sink: PieceSink): boolean {
    if (this.error !== undefined) return false;
    if (this.ended || chunk.length === 0) return true;
    const strm = this.strm;
    // `chunk` stays referenced by this frame while zlib reads from it.
    strm.next_in = ffi.cast("const unsigned char *", chunk);
    strm.avail_in = chunk.length;
    for (;;) {
      strm.next_out = this.out;
      strm.avail_out = OUT_BYTES;
      const rc = this.lib.inflate(strm, Z_NO_FLUSH);
      const produced = OUT_BYTES - strm.avail_out;
      if (produced > 0) {
        this.decodedBytes += produced;
        if (this.decodedBytes > MAX_DECODED_BYTES) {
          this.fail(`decoded body larger than ${MAX_DECODED_BYTES} bytes`);
          return false;
        }
        sink(ffi.string(this.out as ffi.CData, produced));
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
      // Done with this chunk when zlib has consumed it and had room to spare.
      if (strm.avail_in === 0 && strm.avail_out > 0) return true;
      if (rc === Z_BUF_ERROR && produced === 0) return true;
    }
  }

  close(): void {
    if (this.state.open) {
      this.state.open = false;
      this.lib.inflateEnd(this.strm);
    }
  }

  private fail(reason: string): void {
    this.error = reason;
    this.close();
  }
}

/** A decoder for one gzip (or zlib) body, or undefined and why zlib is unavailable. */
export function newInflater(): LuaMultiReturn<[Inflater, undefined] | [undefined, string]> {
  const lib = library();
  if (lib === undefined) return $multi(undefined, loadError ?? "zlib unavailable");
  const strm = ffi.new("tokrl_z_stream") as unknown as ZStream;
  const rc = lib.inflateInit2_(strm, WINDOW_BITS_AUTO, lib.zlibVersion(), ffi.sizeof("tokrl_z_stream") ?? 0);
  if (rc !== Z_OK) return $multi(undefined, `inflateInit2 failed: ${rc}`);
  // The finalizer must not reach the stream through the inflater (a cycle the GC keeps), so
  // both share only this flag.
  const state = { open: true };
  ffi.gc(strm as unknown as ffi.CData, (s) => {
    if (state.open) {
      state.open = false;
      lib.inflateEnd(s as unknown as ZStream);
    }
  });
  return $multi(new ZInflater(lib, strm, ffi.new("unsigned char[?]", OUT_BYTES), state), undefined);
}
