/** @noSelfInFile */
// Lua modules that Kong (OpenResty) provides at run time. Declared as ambient modules so that
// `import * as cjson from "cjson.safe"` transpiles to `local cjson = require("cjson.safe")`.

declare module "cjson" {
  /** A value cjson can encode: tables become objects or arrays. */
  export type JsonValue = string | number | boolean | null | undefined | JsonValue[] | { [key: string]: JsonValue } | LuaTable;
  /** Raises on invalid JSON. */
  export function decode(this: void, text: string): unknown;
  /** Raises on values that cannot be encoded (functions, userdata, sparse arrays). */
  export function encode(this: void, value: unknown): string;
  /** The sentinel that stands for JSON null in decoded tables (Lua: `cjson.null`). */
  const json_null: unknown;
  export { json_null as null };
  export function encode_empty_table_as_object(this: void, enabled: boolean | "on" | "off"): void;
  export function decode_array_with_array_mt(this: void, enabled: boolean): void;
  /** Tables with this metatable encode as `[]` even when empty. */
  export const empty_array_mt: LuaTable;
  export const array_mt: LuaTable;
  export const empty_array: LuaTable;
  export function encode_escape_forward_slash(this: void, enabled: boolean): void;
  export function encode_number_precision(this: void, precision: number): void;
  export function decode_max_depth(this: void, depth: number): void;
  export function encode_max_depth(this: void, depth: number): void;
}

declare module "cjson.safe" {
  /** Never raises: returns nil and an error message on invalid JSON. */
  export function decode(this: void, text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  /** Never raises: returns nil and an error message for values that cannot be encoded. */
  export function encode(this: void, value: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  const json_null: unknown;
  export { json_null as null };
  export const empty_array_mt: LuaTable;
  export const array_mt: LuaTable;
  export const empty_array: LuaTable;
  export function encode_empty_table_as_object(this: void, enabled: boolean | "on" | "off"): void;
  export function decode_array_with_array_mt(this: void, enabled: boolean): void;
}

declare module "kong.db.schema.typedefs" {
  // Kong's ready-made field definitions (kong/db/schema/typedefs.lua). Each is a definition table
  // and also callable with overrides, exactly like Lua's `typedefs.port { default = 6379 }`:
  // `typedefs.port({ default: 6379 })` returns the merged definition (typed, so ConfigOf sees the default).

  /** A typedef: the definition itself, callable to get a copy with overrides. */
  export type Typedef<D extends KongFieldDef> = D & (<const O extends Partial<FieldKindOf<D>>>(overrides: O) => Omit<D, keyof O> & O);
  /** The field interface of D's type ("integer" -> KongNumberField), whose attributes may be overridden. */
  type FieldKindOf<D extends KongFieldDef, F extends KongFieldDef = KongFieldDef> = F extends unknown ? (D["type"] extends F["type"] ? F : never) : never;

  type HttpProtocols = readonly ["grpc", "grpcs", "http", "https"];
  type Protocols = readonly ["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"];
  type StringDef = { readonly type: "string" };
  type NoReference<R extends string> = { readonly type: "foreign"; readonly reference: R; readonly eq: NgxNull };

  export const http_method: Typedef<{ readonly type: "string"; readonly match: string }>;
  export const protocol: Typedef<{ readonly type: "string"; readonly one_of: Protocols }>;
  export const host: Typedef<StringDef>;
  export const redis_host: Typedef<StringDef>;
  export const host_with_optional_port: Typedef<StringDef>;
  export const wildcard_host: Typedef<StringDef>;
  export const ip: Typedef<StringDef>;
  export const ip_or_cidr: Typedef<StringDef>;
  export const cidr_v4: Typedef<StringDef>;
  export const cidr: Typedef<StringDef>;
  /** An integer in [0, 65535]. */
  export const port: Typedef<{ readonly type: "integer"; readonly between: readonly [0, 65535] }>;
  /** A string starting with "/" without empty segments. */
  export const path: Typedef<{ readonly type: "string"; readonly starts_with: "/" }>;
  export const url: Typedef<StringDef>;
  export const cookie_name: Typedef<StringDef>;
  /** A valid HTTP header name. */
  export const header_name: Typedef<StringDef>;
  /** Milliseconds, an integer in [0, 2^31 - 2]. */
  export const timeout: Typedef<{ readonly type: "integer"; readonly between: readonly [0, 2147483646] }>;
  export const uuid: Typedef<{ readonly type: "string"; readonly uuid: true; readonly auto: true }>;
  export const auto_timestamp_s: Typedef<{ readonly type: "integer"; readonly timestamp: true; readonly auto: true }>;
  export const auto_timestamp_ms: Typedef<{ readonly type: "number"; readonly timestamp: true; readonly auto: true }>;
  /** The plugin cannot be scoped to a route. */
  export const no_route: Typedef<NoReference<"routes">>;
  /** The plugin cannot be scoped to a service. */
  export const no_service: Typedef<NoReference<"services">>;
  /** The plugin cannot be scoped to a consumer. */
  export const no_consumer: Typedef<NoReference<"consumers">>;
  export const name: Typedef<{ readonly type: "string"; readonly unique: true }>;
  export const utf8_name: Typedef<{ readonly type: "string"; readonly unique: true }>;
  export const sni: Typedef<StringDef>;
  export const redis_server_name: Typedef<StringDef>;
  export const certificate: Typedef<StringDef>;
  export const key: Typedef<StringDef>;
  export const tag: Typedef<StringDef>;
  export const tags: Typedef<{ readonly type: "set"; readonly elements: { readonly type: "string" } }>;
  export const capability: Typedef<StringDef>;
  /** Every protocol; defaults to the HTTP ones. */
  export const protocols: Typedef<{ readonly type: "set"; readonly required: true; readonly default: HttpProtocols; readonly elements: { readonly type: "string"; readonly one_of: Protocols } }>;
  /** grpc, grpcs, http, https: for plugins that only make sense on HTTP. */
  export const protocols_http: Typedef<{ readonly type: "set"; readonly required: true; readonly default: HttpProtocols; readonly elements: { readonly type: "string"; readonly one_of: HttpProtocols } }>;
  export const sources: Typedef<KongArrayField>;
  export const no_sources: Typedef<KongArrayField>;
  export const destinations: Typedef<KongArrayField>;
  export const no_destinations: Typedef<KongArrayField>;
  export const methods: Typedef<{ readonly type: "set"; readonly elements: { readonly type: "string" } }>;
  export const no_methods: Typedef<KongArrayField>;
  export const hosts: Typedef<{ readonly type: "array"; readonly elements: { readonly type: "string" } }>;
  export const no_hosts: Typedef<KongArrayField>;
  export const router_path: Typedef<StringDef>;
  export const router_paths: Typedef<{ readonly type: "array"; readonly elements: { readonly type: "string" } }>;
  export const no_paths: Typedef<KongArrayField>;
  export const headers: Typedef<{ readonly type: "map"; readonly keys: { readonly type: "string" }; readonly values: { readonly type: "array"; readonly elements: { readonly type: "string" } } }>;
  export const no_headers: Typedef<KongMapField>;
  export const semantic_version: Typedef<StringDef>;
  export const pem: Typedef<KongRecordField>;
  export const jwk: Typedef<KongRecordField>;
  /** The batch queue settings record (max_batch_size, max_coalescing_delay, ...). */
  export const queue: Typedef<KongRecordField>;
  export const propagation: Typedef<KongRecordField>;
  export const lua_code: Typedef<KongMapField>;
  /** Seconds. */
  export const ttl: Typedef<{ readonly type: "number" }>;
}

declare module "kong.tools.redis.schema" {
  /** The `redis` record Kong's rate-limiting uses (host, port, timeout, username, password, database, ssl, ...). */
  export const config_schema: KongRecordField;
}

declare module "kong.meta" {
  /** Kong's version, `x.y.z` (usable as a handler VERSION, as bundled plugins do). */
  export const version: `${number}.${number}.${number}`;
  export const _VERSION: string;
  export const _NAME: string;
  export const _SERVER_TOKENS: string;
  export const _VERSION_TABLE: { readonly major: number; readonly minor: number; readonly patch: number };
}

declare module "resty.redis" {
  // lua-resty-redis. Every command is a colon call on the client and returns
  // `[result, undefined]` or `[undefined, err]`; a Redis nil reply is `ngx.null`, not `undefined`.
  // In a pipeline (init_pipeline .. commit_pipeline) commands only queue and return `[1]`.

  /** A reply value: bulk string, integer, status, nil (`ngx.null`) or an array of those. */
  export type RedisValue = string | number | NgxNull | RedisValue[];
  /** `[result]` or `[undefined, err]`. */
  export type RedisReply<T> = LuaMultiReturn<[T, undefined] | [undefined, string]>;

  /** @noSelf */
  export interface RedisConnectOptions {
    ssl?: boolean;
    ssl_verify?: boolean;
    server_name?: string;
    pool?: string;
    pool_size?: number;
    backlog?: number;
  }

  /** @noSelf */
  export interface RedisClient {
    /** Connects (a cosocket: not in header_filter/body_filter/log; use a timer there). */
    connect(this: RedisClient, host: string, port?: number, options?: RedisConnectOptions): RedisReply<1>;
    /** One timeout (ms) for connect, send and read. */
    set_timeout(this: RedisClient, timeout_ms: number): void;
    /** Connect, send and read timeouts (ms). */
    set_timeouts(this: RedisClient, connect_ms: number, send_ms: number, read_ms: number): void;
    /** Returns the connection to the pool. Do not use the client afterwards. */
    set_keepalive(this: RedisClient, max_idle_timeout_ms?: number, pool_size?: number): RedisReply<1>;
    /** How often this connection was reused (0 = fresh: authenticate and select the database then). */
    get_reused_times(this: RedisClient): RedisReply<number>;
    close(this: RedisClient): RedisReply<1>;

    auth(this: RedisClient, password: string): RedisReply<"OK">;
    auth(this: RedisClient, username: string, password: string): RedisReply<"OK">;
    select(this: RedisClient, database: number): RedisReply<"OK">;
    ping(this: RedisClient): RedisReply<"PONG">;

    get(this: RedisClient, key: string): RedisReply<string | NgxNull>;
    /** Extra arguments: "EX", seconds / "PX", ms / "NX" / "XX". With NX/XX a skipped write replies ngx.null. */
    set(this: RedisClient, key: string, value: string | number, ...options: (string | number)[]): RedisReply<"OK" | NgxNull>;
    setex(this: RedisClient, key: string, seconds: number, value: string | number): RedisReply<"OK">;
    mget(this: RedisClient, ...keys: string[]): RedisReply<(string | NgxNull)[]>;
    del(this: RedisClient, ...keys: string[]): RedisReply<number>;
    exists(this: RedisClient, ...keys: string[]): RedisReply<number>;
    incr(this: RedisClient, key: string): RedisReply<number>;
    incrby(this: RedisClient, key: string, increment: number): RedisReply<number>;
    decr(this: RedisClient, key: string): RedisReply<number>;
    decrby(this: RedisClient, key: string, decrement: number): RedisReply<number>;
    /** 1 when the timeout was set, 0 when the key does not exist. */
    expire(this: RedisClient, key: string, seconds: number): RedisReply<0 | 1>;
    pexpire(this: RedisClient, key: string, milliseconds: number): RedisReply<0 | 1>;
    expireat(this: RedisClient, key: string, unix_seconds: number): RedisReply<0 | 1>;
    /** Seconds to live; -1 without expiry, -2 when the key does not exist. */
    ttl(this: RedisClient, key: string): RedisReply<number>;
    pttl(this: RedisClient, key: string): RedisReply<number>;
    hget(this: RedisClient, key: string, field: string): RedisReply<string | NgxNull>;
    hset(this: RedisClient, key: string, ...fieldValues: (string | number)[]): RedisReply<number>;
    hincrby(this: RedisClient, key: string, field: string, increment: number): RedisReply<number>;
    hgetall(this: RedisClient, key: string): RedisReply<string[]>;

    /** Runs a Lua script: `eval(script, numkeys, ...keys_then_args)`. */
    eval(this: RedisClient, script: string, numkeys: number, ...keysAndArgs: (string | number)[]): RedisReply<RedisValue>;
    /** Runs a loaded script by SHA1; fails with "NOSCRIPT ..." when Redis does not have it. */
    evalsha(this: RedisClient, sha1: string, numkeys: number, ...keysAndArgs: (string | number)[]): RedisReply<RedisValue>;
    /** `script("load", src)` replies the SHA1; `script("exists", sha...)` an array of 0/1; `script("flush")`. */
    script(this: RedisClient, subcommand: "load", script: string): RedisReply<string>;
    script(this: RedisClient, subcommand: "exists", ...sha1s: string[]): RedisReply<number[]>;
    script(this: RedisClient, subcommand: "flush" | "kill"): RedisReply<"OK">;

    /** Starts queueing commands (`n`: expected count, a sizing hint). */
    init_pipeline(this: RedisClient, n?: number): void;
    /** Sends the queued commands; the replies array holds each reply, or `[false, err]` for a failed command. */
    commit_pipeline(this: RedisClient): RedisReply<(RedisValue | [false, string])[]>;
    /** Drops the queued commands. */
    cancel_pipeline(this: RedisClient): void;

    multi(this: RedisClient): RedisReply<"OK">;
    exec(this: RedisClient): RedisReply<RedisValue[] | NgxNull>;
    discard(this: RedisClient): RedisReply<"OK">;
  }

  const _new: (this: void) => LuaMultiReturn<[RedisClient, undefined] | [undefined, string]>;
  /** A new client (not yet connected). */
  export { _new as new };
}

declare module "string.buffer" {
  // LuaJIT's string buffers: efficient concatenation without intermediate strings.
  /** @noSelf */
  export interface StringBuffer {
    /** Appends strings and numbers; returns the buffer. */
    put(this: StringBuffer, ...values: (string | number | StringBuffer)[]): StringBuffer;
    /** Appends a string.format result. */
    putf(this: StringBuffer, format: string, ...args: unknown[]): StringBuffer;
    /** Appends `len` bytes from a pointer (e.g. into a string: no intermediate string). */
    putcdata(this: StringBuffer, ptr: import("ffi").CData, len: number): StringBuffer;
    /** Replaces the content. */
    set(this: StringBuffer, text: string): StringBuffer;
    /** Empties the buffer (keeps the allocation). */
    reset(this: StringBuffer): StringBuffer;
    /** Drops `len` bytes from the front. */
    skip(this: StringBuffer, len: number): StringBuffer;
    /** Consumes and returns up to `len` bytes from the front (all without `len`). */
    get(this: StringBuffer, len?: number): string;
    /** The content as a string (not consumed). */
    tostring(this: StringBuffer): string;
    /** Frees the allocation. */
    free(this: StringBuffer): void;
    /** Length in bytes: `buf.length()` transpiles to `#buf`. */
    length: LuaLengthMethod<number>;
  }
  const _new: (this: void, size?: number) => StringBuffer;
  export { _new as new };
  /** Serializes a Lua value (LuaJIT format). */
  export function encode(this: void, value: unknown): string;
  export function decode(this: void, text: string): unknown;
}

declare module "ffi" {
  // The LuaJIT FFI: only what plugin code may reasonably need.
  export type CData = { readonly __cdata_brand: unique symbol };
  export type CType = { readonly __ctype_brand: unique symbol };
  export function cdef(this: void, declarations: string): void;
  const _new: (this: void, ct: string | CType, ...init: unknown[]) => CData;
  export { _new as new };
  export function string(this: void, ptr: CData, len?: number): string;
  export function cast(this: void, ct: string | CType, value: unknown): CData;
  /** Pointer arithmetic: `ffi.offset(p, n)` is LuaJIT's `p + n`. */
  export const offset: LuaAddition<CData, number, CData>;
  const _typeof: (this: void, ct: string) => CType;
  export { _typeof as typeof };
  export function sizeof(this: void, ct: string | CType | CData, nelem?: number): number | undefined;
  export function istype(this: void, ct: string | CType, obj: unknown): boolean;
  export function gc(this: void, cdata: CData, finalizer: ((this: void, cdata: CData) => void) | undefined): CData;
  export function copy(this: void, dst: CData, src: CData | string, len?: number): void;
  export function fill(this: void, dst: CData, len: number, c?: number): void;
  export function errno(this: void, newErrno?: number): number;
  /**
   * Loads a shared library (e.g. "z") and returns its namespace of `cdef`-declared symbols;
   * type the result with the library's own interface.
   */
  export function load<Namespace = { readonly [symbol: string]: (this: void, ...args: unknown[]) => unknown }>(this: void, name: string, global?: boolean): Namespace;
  /** The C namespace: functions declared with `cdef`. */
  export const C: { readonly [symbol: string]: (this: void, ...args: unknown[]) => unknown };
  export const os: string;
  export const arch: string;
}

declare module "table.new" {
  /** A table with `narr` array slots and `nrec` hash slots preallocated. */
  function tableNew<T extends object = LuaTable>(this: void, narr: number, nrec: number): T;
  export = tableNew;
}

declare module "table.clear" {
  /** Empties a table in place, keeping its allocation. */
  function tableClear(this: void, tab: object): void;
  export = tableClear;
}

declare module "ngx.re" {
  // resty.core's ngx.re additions (split, opt); match/find/gmatch/sub/gsub stay on the global ngx.re.
  /** Splits `subject` on a PCRE `regex`: `[parts]` or `[undefined, err]`. */
  export function split(this: void, subject: string, regex: string, options?: string, ctx?: NgxReCtx, max?: number, res?: string[]): LuaMultiReturn<[string[], undefined] | [undefined, string]>;
  /** Sets a PCRE option of this worker ("jit_stack_size"). */
  export function opt(this: void, option: string, value: number): void;
}

declare module "ngx.base64" {
  export function encode_base64url(this: void, text: string): string;
  /** `undefined` and an error for malformed input. */
  export function decode_base64url(this: void, text: string): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  export function decode_base64mime(this: void, text: string): LuaMultiReturn<[string, undefined] | [undefined, string]>;
}
