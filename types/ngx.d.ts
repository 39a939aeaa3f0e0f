/** @noSelfInFile */
// The `ngx` global of lua-nginx-module (0.10.x, as in OpenResty and Kong), for plugins and for
// the local gateway's Lua. Functions are called with a dot (`ngx.re.match(...)`); the objects
// that Lua calls with a colon (shared dicts, cosockets) declare an explicit `this`, so
// `dict.get("k")` transpiles to `dict:get("k")`.
//
// Phase notes follow lua-nginx-module's docs: cosockets (ngx.socket.tcp, resty.redis) and
// ngx.sleep are unavailable in header_filter, body_filter, log and init_worker (use ngx.timer.at
// there); ngx.req.read_body needs rewrite/access/content.

/**
 * lua-nginx-module's `ngx.null` (a light userdata): JSON null from cjson and nil replies from Redis.
 * @noSelf
 */
interface NgxNull {
  readonly __ngx_null_brand: unique symbol;
}

/**
 * `ngx.arg`: in body_filter, `ngx.arg[1]` is the current chunk and `ngx.arg[2]` the eof flag.
 * Both may be assigned: `ngx.arg[1] = undefined` (or `""`) drops the chunk, `ngx.arg[2] = true`
 * ends the body. Numeric keys are Lua indexes as written (no +1 shift: this is not a TS array).
 * @noSelf
 */
interface NgxArg {
  1: string | undefined;
  2: boolean;
  [index: number]: string | boolean | undefined;
}

/**
 * `ngx.var`: nginx variables by name (`ngx.var.remote_addr`); assignable for variables declared with `set`.
 * @noSelf
 */
interface NgxVar {
  [name: string]: string | undefined;
}

/**
 * `ngx.ctx`: per-request Lua table (Kong keeps its own fields here too). Extend by declaration merging.
 * @noSelf
 */
interface NgxCtx {
  [key: string]: unknown;
}

/**
 * Captures of ngx.re.match: `[0]` is the whole match, `[1]...` the groups (false when a group did not take part), named groups by name.
 * @noSelf
 */
interface NgxReCaptures {
  [group: number]: string | false | undefined;
  [name: string]: string | false | undefined;
}

/**
 * What ngx.re.match / find / gmatch / sub / gsub accept as a compiled-regex cache context.
 * @noSelf
 */
interface NgxReCtx {
  pos?: number;
}

/** @noSelf */
interface NgxRe {
  /**
   * PCRE match. Returns `[captures]`, `[undefined]` for no match, or `[undefined, err]`.
   * `options`: e.g. "jo" (j = JIT, o = compile once, i = caseless, s, m, x, u, U, d).
   * Kong sets lua_regex_match_limit 100000: catastrophic backtracking yields an error, not a hang.
   */
  match(subject: string, regex: string, options?: string, ctx?: NgxReCtx, res?: NgxReCaptures): LuaMultiReturn<[NgxReCaptures, undefined] | [undefined, string | undefined]>;
  /** Like match but returns the 1-based `[from, to]` of the whole match, `[undefined, undefined]` on no match, `[undefined, undefined, err]` on error. */
  find(subject: string, regex: string, options?: string, ctx?: NgxReCtx, nth?: number): LuaMultiReturn<[number, number, undefined] | [undefined, undefined, string | undefined]>;
  /** An iterator over all matches: call it until it returns `undefined`. */
  gmatch(subject: string, regex: string, options?: string): LuaMultiReturn<[NgxReIterator, undefined] | [undefined, string]>;
  /** Replaces the first match (`$0`, `$1`, `${name}` in a string template). Returns `[newstr, n]` or `[undefined, undefined, err]`. */
  sub(subject: string, regex: string, replace: string | ((this: void, m: NgxReCaptures) => string), options?: string): LuaMultiReturn<[string, number, undefined] | [undefined, undefined, string]>;
  /** Replaces every match. Returns `[newstr, n]` or `[undefined, undefined, err]`. */
  gsub(subject: string, regex: string, replace: string | ((this: void, m: NgxReCaptures) => string), options?: string): LuaMultiReturn<[string, number, undefined] | [undefined, undefined, string]>;
}

/** The iterator ngx.re.gmatch returns: `[captures]` per match, `[undefined]` at the end, `[undefined, err]` on error. */
type NgxReIterator = (this: void) => LuaMultiReturn<[NgxReCaptures | undefined, string | undefined]>;

/** A value a shared dict stores. */
type NgxSharedValue = string | number | boolean;

/**
 * `ngx.shared.DICT`: a shared-memory dictionary declared with lua_shared_dict. Methods are colon calls.
 * @noSelf
 */
interface NgxSharedDict {
  /** `[value, flags]`; `[undefined]` when missing or expired; `[undefined, err]` on error. */
  get(this: NgxSharedDict, key: string): LuaMultiReturn<[NgxSharedValue | undefined, number | string | undefined]>;
  /** Like get but also returns expired (not yet evicted) values: `[value, flags, stale]`. */
  get_stale(this: NgxSharedDict, key: string): LuaMultiReturn<[NgxSharedValue | undefined, number | string | undefined, boolean | undefined]>;
  /** Stores unconditionally (exptime in seconds, 0 = never). `[ok, err, forcible]`: forcible means valid items were evicted. */
  set(this: NgxSharedDict, key: string, value: NgxSharedValue | undefined, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** Like set but never evicts valid items: fails with "no memory" instead. */
  safe_set(this: NgxSharedDict, key: string, value: NgxSharedValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  /** Stores only if the key is absent: `[false, "exists"]` otherwise. */
  add(this: NgxSharedDict, key: string, value: NgxSharedValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** Like add but never evicts valid items. */
  safe_add(this: NgxSharedDict, key: string, value: NgxSharedValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  /** Stores only if the key exists: `[false, "not found"]` otherwise. */
  replace(this: NgxSharedDict, key: string, value: NgxSharedValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** Removes a key. */
  delete(this: NgxSharedDict, key: string): void;
  /**
   * Atomically adds `value` to a number. Without `init` a missing key is `[undefined, "not found"]`;
   * with `init` the key is created as `init + value`, expiring after `init_ttl` seconds (only when created).
   * Returns `[newval, undefined, forcible]` or `[undefined, err]`.
   */
  incr(this: NgxSharedDict, key: string, value: number, init?: number, init_ttl?: number): LuaMultiReturn<[number, undefined, boolean | undefined] | [undefined, string, undefined]>;
  /** Pushes onto the head of a list: `[length]` or `[undefined, err]`. */
  lpush(this: NgxSharedDict, key: string, value: string | number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Pushes onto the tail of a list. */
  rpush(this: NgxSharedDict, key: string, value: string | number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Pops from the head of a list: `[undefined]` when empty. */
  lpop(this: NgxSharedDict, key: string): LuaMultiReturn<[string | number | undefined, string | undefined]>;
  /** Pops from the tail of a list. */
  rpop(this: NgxSharedDict, key: string): LuaMultiReturn<[string | number | undefined, string | undefined]>;
  /** The length of a list. */
  llen(this: NgxSharedDict, key: string): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Remaining seconds to live (0 = never expires): `[ttl]` or `[undefined, "not found"]`. */
  ttl(this: NgxSharedDict, key: string): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Sets a new expiry (seconds, 0 = never) on an existing key: `[true]` or `[undefined, "not found"]`. */
  expire(this: NgxSharedDict, key: string, exptime: number): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /** Marks every item expired (memory is reclaimed lazily). */
  flush_all(this: NgxSharedDict): void;
  /** Frees up to `max_count` expired items (0 = all); returns how many were freed. */
  flush_expired(this: NgxSharedDict, max_count?: number): number;
  /** Up to `max_count` keys (default 1024, 0 = all: locks the dict, avoid on big dicts). */
  get_keys(this: NgxSharedDict, max_count?: number): string[];
  /** The dict's size in bytes. */
  capacity(this: NgxSharedDict): number;
  /** Free pages in bytes. */
  free_space(this: NgxSharedDict): number;
}

/**
 * `ngx.shared`: the dicts declared with lua_shared_dict, by name (`undefined` when not declared).
 * @noSelf
 */
interface NgxShared {
  [name: string]: NgxSharedDict | undefined;
}

/** A timer callback: `premature` is true when the worker is shutting down. */
type NgxTimerCallback<A extends unknown[]> = (this: void, premature: boolean, ...args: A) => void;

/** @noSelf */
interface NgxTimer {
  /**
   * Runs `callback(premature, ...args)` after `delay` seconds in a detached light thread (where
   * cosockets work, unlike in header_filter/body_filter/log). `[true]` or `[undefined, err]`.
   */
  at<A extends unknown[]>(delay: number, callback: NgxTimerCallback<A>, ...args: A): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /** Runs the callback every `delay` seconds until the worker exits. */
  every<A extends unknown[]>(delay: number, callback: NgxTimerCallback<A>, ...args: A): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /** Timers currently running in this worker. */
  running_count(): number;
  /** Timers pending in this worker. */
  pending_count(): number;
}

/** @noSelf */
interface NgxWorker {
  /** This worker's ordinal (0-based); `undefined` outside worker processes. */
  id(): number | undefined;
  /** This worker's process id. */
  pid(): number;
  /** The number of worker processes. */
  count(): number;
  /** Whether this worker is shutting down (reload or quit). */
  exiting(): boolean;
}

/**
 * A cosocket (`ngx.socket.tcp()`): non-blocking TCP, usable in rewrite/access/content/timer contexts.
 * @noSelf
 */
interface NgxTcpSocket {
  /** Connects to host:port (or a `unix:/path`). `[1]` or `[undefined, err]`. */
  connect(this: NgxTcpSocket, host: string, port?: number, options?: { pool?: string; pool_size?: number; backlog?: number }): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** Sends data: `[bytes]` or `[undefined, err]`. */
  send(this: NgxTcpSocket, data: string | readonly string[]): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Reads a line (`"*l"`, default), everything (`"*a"`) or a byte count: `[data]` or `[undefined, err, partial]`. */
  receive(this: NgxTcpSocket, pattern?: "*l" | "*a" | number): LuaMultiReturn<[string, undefined, undefined] | [undefined, string, string | undefined]>;
  /** Reads whatever arrives, up to `max` bytes. */
  receiveany(this: NgxTcpSocket, max: number): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /** An iterator that reads until `pattern`. */
  receiveuntil(this: NgxTcpSocket, pattern: string, options?: { inclusive?: boolean }): (this: void, size?: number) => LuaMultiReturn<[string, undefined, undefined] | [undefined, string, string | undefined]>;
  /** One timeout (ms) for connect, send and read. */
  settimeout(this: NgxTcpSocket, timeout_ms: number): void;
  /** Connect, send and read timeouts (ms). */
  settimeouts(this: NgxTcpSocket, connect_ms: number, send_ms: number, read_ms: number): void;
  /** TLS handshake on a connected socket. `[session or true]` or `[undefined, err]`. */
  sslhandshake(this: NgxTcpSocket, reused_session?: unknown, server_name?: string, ssl_verify?: boolean, send_status_req?: boolean): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  /** Returns the connection to the pool (max idle ms, pool size): `[1]` or `[undefined, err]`. Do not use the socket afterwards. */
  setkeepalive(this: NgxTcpSocket, max_idle_timeout_ms?: number, pool_size?: number): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** How many times this connection was reused from the pool (0 = new). */
  getreusedtimes(this: NgxTcpSocket): LuaMultiReturn<[number, undefined] | [undefined, string]>;
  /** Closes the socket: `[1]` or `[undefined, err]`. */
  close(this: NgxTcpSocket): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** Sets a socket option (`"keepalive"`, `"reuseaddr"`, `"tcp-nodelay"`, `"sndbuf"`, `"rcvbuf"`). */
  setoption(this: NgxTcpSocket, option: string, value: number | boolean): LuaMultiReturn<[true, undefined] | [undefined, string]>;
}

/**
 * A UDP cosocket (`ngx.socket.udp()`).
 * @noSelf
 */
interface NgxUdpSocket {
  setpeername(this: NgxUdpSocket, host: string, port?: number): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  send(this: NgxUdpSocket, data: string | readonly string[]): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  receive(this: NgxUdpSocket, size?: number): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  settimeout(this: NgxUdpSocket, timeout_ms: number): void;
  close(this: NgxUdpSocket): LuaMultiReturn<[1, undefined] | [undefined, string]>;
}

/** @noSelf */
interface NgxSocket {
  /** A new TCP cosocket. */
  tcp(): NgxTcpSocket;
  /** A new UDP cosocket. */
  udp(): NgxUdpSocket;
}

/**
 * Request headers as ngx.req.get_headers returns them (lower-case names; repeated headers as arrays).
 * @noSelf
 */
interface NgxHeaders {
  [name: string]: string | string[] | undefined;
}

/**
 * `ngx.header`: response headers to send; assign a string, number, array, or `undefined` to remove.
 * @noSelf
 */
interface NgxHeaderTable {
  [name: string]: string | number | readonly string[] | undefined;
}

/** @noSelf */
interface NgxReq {
  /** Reads the request body (needed before get_body_data/get_body_file). rewrite/access/content only. */
  read_body(): void;
  /** Discards the body. */
  discard_body(): void;
  /** The in-memory body; `undefined` when not read, empty, or written to a temp file (bigger than client_body_buffer_size). */
  get_body_data(max_bytes?: number): string | undefined;
  /** The temp file holding the body, when nginx spilled it to disk. */
  get_body_file(): string | undefined;
  /** Replaces the body sent upstream. */
  set_body_data(data: string): void;
  /** Replaces the body with a file's content. */
  set_body_file(file_name: string, auto_clean?: boolean): void;
  /** Request headers (at most `max_headers`, default 100); `[headers, "truncated"]` when there were more. */
  get_headers(max_headers?: number, raw?: boolean): LuaMultiReturn<[NgxHeaders, "truncated" | undefined]>;
  /** Sets a request header (for the upstream request). */
  set_header(name: string, value: string | number | readonly string[] | undefined): void;
  /** Removes a request header. */
  clear_header(name: string): void;
  /** Query arguments: `[args, "truncated"?]`. */
  get_uri_args(max_args?: number): LuaMultiReturn<[{ [name: string]: string | boolean | (string | boolean)[] }, "truncated" | undefined]>;
  /** Replaces the query string of the current request. */
  set_uri_args(args: string | { [name: string]: string | number | boolean | readonly (string | number | boolean)[] }): void;
  /** Form arguments of a read, in-memory urlencoded body. */
  get_post_args(max_args?: number): LuaMultiReturn<[{ [name: string]: string | boolean | (string | boolean)[] } | undefined, string | undefined]>;
  /** The request method name (`"GET"`, ...). */
  get_method(): string;
  /** Sets the method (an `ngx.HTTP_*` method constant). */
  set_method(method_id: number): void;
  /** Sets the URI (path) of the current request. */
  set_uri(uri: string, jump?: boolean): void;
  /** When the request was created, in seconds (with milliseconds) since the epoch. */
  start_time(): number;
  /** 0.9, 1.0, 1.1, 2.0 or 3.0; `undefined` for an unknown version. */
  http_version(): number | undefined;
  /** The raw request header block. */
  raw_header(no_request_line?: boolean): string;
  /** Whether this is an internal (subrequest or redirect) request. */
  is_internal(): boolean;
  /** The downstream connection as a cosocket (for streaming the request body). */
  socket(raw?: boolean): LuaMultiReturn<[NgxTcpSocket, undefined] | [undefined, string]>;
  /** Starts building a new request body. */
  init_body(buffer_size?: number): void;
  /** Appends to the body started with init_body. */
  append_body(data: string): void;
  /** Finishes the body started with init_body. */
  finish_body(): void;
}

/** @noSelf */
interface NgxResp {
  /** Response headers (header_filter and later): `[headers, "truncated"?]`. */
  get_headers(max_headers?: number, raw?: boolean): LuaMultiReturn<[NgxHeaders, "truncated" | undefined]>;
}

/**
 * Result of ngx.location.capture.
 * @noSelf
 */
interface NgxCaptureResponse {
  status: number;
  header: NgxHeaders;
  body: string;
  truncated: boolean;
}

/** @noSelf */
interface NgxLocation {
  /** Issues a subrequest to an internal location. */
  capture(uri: string, options?: { method?: number; body?: string; args?: string | object; ctx?: object; vars?: object; copy_all_vars?: boolean; share_all_vars?: boolean; always_forward_body?: boolean }): NgxCaptureResponse;
}

/** @noSelf */
interface NgxConfig {
  /** `"http"` or `"stream"`. */
  readonly subsystem: "http" | "stream";
  /** Whether nginx was built with debug logging. */
  readonly debug: boolean;
  /** nginx's version number, e.g. 1022001. */
  readonly nginx_version: number;
  /** lua-nginx-module's version number, e.g. 10023. */
  readonly ngx_lua_version: number;
  /** The nginx prefix path (`-p`). */
  prefix(): string;
  /** nginx's configure arguments. */
  nginx_configure(): string;
}

/**
 * A light thread handle (ngx.thread.spawn).
 * @noSelf
 */
interface NgxThread {
  readonly __ngx_thread_brand: unique symbol;
}

/** @noSelf */
interface NgxThreadApi {
  spawn<A extends unknown[]>(func: (this: void, ...args: A) => unknown, ...args: A): NgxThread;
  wait(...threads: NgxThread[]): LuaMultiReturn<[boolean, ...unknown[]]>;
  kill(thread: NgxThread): LuaMultiReturn<[true, undefined] | [undefined, string]>;
}

/** @noSelf */
interface NgxGlobal {
  /** body_filter: `[1]` chunk, `[2]` eof (assignable). */
  arg: NgxArg;
  /** nginx variables. */
  var: NgxVar;
  /** Per-request Lua table. */
  ctx: NgxCtx;
  /** PCRE regexes. */
  re: NgxRe;
  /** Shared-memory dicts by name. */
  shared: NgxShared;
  /** Timers (detached light threads). */
  timer: NgxTimer;
  /** This worker process. */
  worker: NgxWorker;
  /** Cosockets. */
  socket: NgxSocket;
  /** The current request. */
  req: NgxReq;
  /** The current response's headers (read after header_filter). */
  resp: NgxResp;
  /** Subrequests. */
  location: NgxLocation;
  /** Build and runtime facts. */
  config: NgxConfig;
  /** Light threads. */
  thread: NgxThreadApi;
  /** Response status (assignable before headers are sent). */
  status: number;
  /** Response headers to send (assignable before headers are sent). */
  header: NgxHeaderTable;
  /** Whether the response headers were sent. */
  readonly headers_sent: boolean;
  /** Sentinel for null values (cjson null, Redis nil replies). Compare with `=== ngx.null`. */
  readonly null: NgxNull;

  /** Writes to the error log at `level` (`ngx.ERR`, ...), arguments concatenated without separators. */
  log(level: number, ...args: unknown[]): void;
  /** Sends data to the client (content, rewrite, access phases). `[1]` or `[undefined, err]`. */
  print(...args: unknown[]): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** Like print with a trailing newline. */
  say(...args: unknown[]): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** Flushes buffered output (`wait`: block until written). */
  flush(wait?: boolean): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** Ends the response body early (the handler keeps running). */
  eof(): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /**
   * Ends the request with `status` (>= 200: a special response; `ngx.OK` (0): just quit the phase
   * handler). In rewrite/access/content it does not return; in header_filter it only ends the
   * handler, so always write `return ngx.exit(...)`.
   */
  exit(status: number): never;
  /** Internal redirect to another location. */
  exec(uri: string, args?: string | object): never;
  /** HTTP redirect (301, 302, 303, 307, 308). */
  redirect(uri: string, status?: number): never;
  /** Registers a callback for when the client closes the connection early (needs lua_check_client_abort on). */
  on_abort(callback: (this: void) => void): LuaMultiReturn<[1, undefined] | [undefined, string]>;
  /** The current phase name (`"access"`, `"body_filter"`, `"timer"`, ...). */
  get_phase(): string;
  /** Sleeps without blocking the worker (not in header_filter/body_filter/log). */
  sleep(seconds: number): void;

  /** Cached time in seconds with millisecond precision (updated once per event-loop iteration). */
  now(): number;
  /** Cached time in whole seconds. */
  time(): number;
  /** Refreshes the cached time (a syscall). */
  update_time(): void;
  /** Local date `yyyy-mm-dd`. */
  today(): string;
  /** Local time `yyyy-mm-dd hh:mm:ss`. */
  localtime(): string;
  /** UTC time `yyyy-mm-dd hh:mm:ss`. */
  utctime(): string;
  /** An HTTP date (`Thu, 18 Nov 2010 11:27:35 GMT`) for `seconds`. */
  http_time(seconds: number): string;
  /** A cookie expiry date for `seconds`. */
  cookie_time(seconds: number): string;
  /** Parses an HTTP date; `undefined` when malformed. */
  parse_http_time(text: string): number | undefined;

  /** Base64 (with `=` padding unless `no_padding`). */
  encode_base64(text: string, no_padding?: boolean): string;
  /** Decodes base64; `undefined` when malformed. */
  decode_base64(text: string): string | undefined;
  /** Hex MD5. */
  md5(text: string): string;
  /** Binary MD5. */
  md5_bin(text: string): string;
  /** Binary SHA-1. */
  sha1_bin(text: string): string;
  /** Binary HMAC-SHA1. */
  hmac_sha1(key: string, text: string): string;
  /** CRC-32 (for short strings). */
  crc32_short(text: string): number;
  /** CRC-32 (for long strings). */
  crc32_long(text: string): number;
  /** Percent-encodes (`type` 2 = full URI component, the default). */
  escape_uri(text: string, type?: 0 | 1 | 2): string;
  /** Percent-decodes. */
  unescape_uri(text: string): string;
  /** Encodes a table as a query string. */
  encode_args(args: object): string;
  /** Decodes a query string. */
  decode_args(text: string, max_args?: number): { [name: string]: string | boolean | (string | boolean)[] };
  /** Quotes a string as an SQL literal (MySQL style). */
  quote_sql_str(text: string): string;

  // Return codes.
  readonly OK: 0;
  readonly ERROR: -1;
  readonly AGAIN: -2;
  readonly DONE: -4;
  readonly DECLINED: -5;

  // Log levels for ngx.log.
  readonly STDERR: 0;
  readonly EMERG: 1;
  readonly ALERT: 2;
  readonly CRIT: 3;
  readonly ERR: 4;
  readonly WARN: 5;
  readonly NOTICE: 6;
  readonly INFO: 7;
  readonly DEBUG: 8;

  // Method ids (ngx.req.set_method, ngx.location.capture).
  readonly HTTP_GET: 2;
  readonly HTTP_HEAD: 4;
  readonly HTTP_POST: 8;
  readonly HTTP_PUT: 16;
  readonly HTTP_DELETE: 32;
  readonly HTTP_MKCOL: 64;
  readonly HTTP_COPY: 128;
  readonly HTTP_MOVE: 256;
  readonly HTTP_OPTIONS: 512;
  readonly HTTP_PROPFIND: 1024;
  readonly HTTP_PROPPATCH: 2048;
  readonly HTTP_LOCK: 4096;
  readonly HTTP_UNLOCK: 8192;
  readonly HTTP_PATCH: 16384;
  readonly HTTP_TRACE: 32768;

  // Status codes.
  readonly HTTP_CONTINUE: 100;
  readonly HTTP_SWITCHING_PROTOCOLS: 101;
  readonly HTTP_OK: 200;
  readonly HTTP_CREATED: 201;
  readonly HTTP_ACCEPTED: 202;
  readonly HTTP_NO_CONTENT: 204;
  readonly HTTP_PARTIAL_CONTENT: 206;
  readonly HTTP_SPECIAL_RESPONSE: 300;
  readonly HTTP_MOVED_PERMANENTLY: 301;
  readonly HTTP_MOVED_TEMPORARILY: 302;
  readonly HTTP_SEE_OTHER: 303;
  readonly HTTP_NOT_MODIFIED: 304;
  readonly HTTP_TEMPORARY_REDIRECT: 307;
  readonly HTTP_PERMANENT_REDIRECT: 308;
  readonly HTTP_BAD_REQUEST: 400;
  readonly HTTP_UNAUTHORIZED: 401;
  readonly HTTP_PAYMENT_REQUIRED: 402;
  readonly HTTP_FORBIDDEN: 403;
  readonly HTTP_NOT_FOUND: 404;
  readonly HTTP_NOT_ALLOWED: 405;
  readonly HTTP_NOT_ACCEPTABLE: 406;
  readonly HTTP_REQUEST_TIMEOUT: 408;
  readonly HTTP_CONFLICT: 409;
  readonly HTTP_GONE: 410;
  readonly HTTP_UPGRADE_REQUIRED: 426;
  readonly HTTP_TOO_MANY_REQUESTS: 429;
  readonly HTTP_CLOSE: 444;
  readonly HTTP_ILLEGAL: 451;
  readonly HTTP_INTERNAL_SERVER_ERROR: 500;
  readonly HTTP_METHOD_NOT_IMPLEMENTED: 501;
  readonly HTTP_BAD_GATEWAY: 502;
  readonly HTTP_SERVICE_UNAVAILABLE: 503;
  readonly HTTP_GATEWAY_TIMEOUT: 504;
  readonly HTTP_VERSION_NOT_SUPPORTED: 505;
  readonly HTTP_INSUFFICIENT_STORAGE: 507;
}

/** lua-nginx-module's API, present in every nginx Lua context. */
declare const ngx: NgxGlobal;
