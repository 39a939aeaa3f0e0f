/** @noSelfInFile */
// The Kong 3.9 Plugin Development Kit, as the `kong` global that Kong installs in every worker.
// Every function is declared without a self parameter, so `kong.request.get_header("x")`
// transpiles to exactly that dot call. Several Lua return values are `LuaMultiReturn<[...]>`:
// destructure them (`const [body, err] = kong.request.get_raw_body()`).
//
// Each function's `@phases` tag lists the phases in which Kong's *code* lets it run (its
// check_phase list, see types/reference/pdk-functions.tsv); calling it elsewhere raises
// "function cannot be called in <phase> phase". Plugin handlers only ever run in init_worker,
// configure, certificate, rewrite, access, response, header_filter, body_filter and log; the
// other names (balancer, error, admin_api, ...) are Kong-internal phases.

/** A header value as Kong accepts it when setting headers: several values become repeated headers. */
type KongHeaderValue = string | number | boolean | readonly string[];

/**
 * Headers as Kong reads them: names lower-cased; a header sent several times is an array.
 * @noSelf
 */
interface KongHeaders {
  [name: string]: string | string[] | undefined;
}

/**
 * Headers as Kong accepts them when setting several at once.
 * @noSelf
 */
interface KongHeadersInput {
  [name: string]: KongHeaderValue | undefined;
}

/**
 * Query or form arguments as Kong reads them: a flag without value is `true`; repeated names are arrays.
 * @noSelf
 */
interface KongArgs {
  [name: string]: string | boolean | (string | boolean)[] | undefined;
}

/**
 * Query arguments as Kong accepts them in `kong.service.request.set_query`.
 * @noSelf
 */
interface KongArgsInput {
  [name: string]: string | number | boolean | readonly (string | number | boolean)[] | undefined;
}

/** Phases in which Kong calls a plugin's handler methods, plus the PDK's internal ones. */
type KongPhase =
  | "init_worker" | "configure" | "certificate" | "client_hello" | "rewrite" | "access" | "balancer"
  | "response" | "header_filter" | "body_filter" | "log" | "preread" | "error" | "admin_api" | "cluster_listener";

/**
 * A consumer entity (`kong.client.get_consumer()`).
 * @noSelf
 */
interface KongConsumer {
  id: string;
  username?: string;
  custom_id?: string;
  created_at?: number;
  updated_at?: number;
  tags?: string[];
}

/**
 * A credential entity (key-auth key, basic-auth credential, ...): its fields depend on the auth plugin.
 * @noSelf
 */
interface KongCredential {
  id: string;
  consumer?: { id: string };
  [field: string]: unknown;
}

/**
 * A route entity (`kong.router.get_route()`).
 * @noSelf
 */
interface KongRoute {
  id: string;
  name?: string;
  protocols?: string[];
  methods?: string[];
  hosts?: string[];
  paths?: string[];
  headers?: { [name: string]: string[] };
  strip_path?: boolean;
  preserve_host?: boolean;
  request_buffering?: boolean;
  response_buffering?: boolean;
  service?: { id: string };
  tags?: string[];
  created_at?: number;
  updated_at?: number;
  [field: string]: unknown;
}

/**
 * A service entity (`kong.router.get_service()`).
 * @noSelf
 */
interface KongService {
  id: string;
  name?: string;
  protocol: string;
  host: string;
  port: number;
  path?: string;
  retries?: number;
  connect_timeout?: number;
  write_timeout?: number;
  read_timeout?: number;
  enabled?: boolean;
  tags?: string[];
  [field: string]: unknown;
}

/**
 * Captures of a regex route path (`kong.request.get_uri_captures()`).
 * @noSelf
 */
interface KongUriCaptures {
  unnamed: string[];
  named: { [name: string]: string };
}

/** What `kong.response.get_source()` reports. */
type KongResponseSource = "service" | "exit" | "error";

/**
 * Request-scoped data shared by all plugins (`kong.ctx.shared`). Plugins add typed fields by
 * declaration merging: `declare global { interface KongSharedCtx { my_plugin_started?: number } }`.
 * @noSelf
 */
interface KongSharedCtx {
  [key: string]: unknown;
}

/**
 * Request-scoped data private to the running plugin (`kong.ctx.plugin`); extend it like KongSharedCtx.
 * @noSelf
 */
interface KongPluginCtx {
  [key: string]: unknown;
}

/**
 * The request information table that `kong.log.serialize()` builds (what http-log sends).
 * @noSelf
 */
interface KongSerializedLog {
  request: {
    uri: string;
    url: string;
    querystring: KongArgs;
    method: string;
    headers: KongHeaders;
    size: number;
    tls?: { version?: string; cipher?: string; client_verify?: string };
    id?: string;
  };
  upstream_uri?: string;
  upstream_status?: string;
  response: { status: number; headers: KongHeaders; size: number };
  tries?: { ip: string; port: number; balancer_latency?: number; balancer_start?: number; state?: string; code?: number }[];
  latencies: { kong: number; proxy: number; request: number; receive?: number };
  authenticated_entity?: { id: string; consumer_id?: string };
  route?: KongRoute;
  service?: KongService;
  consumer?: KongConsumer;
  client_ip: string;
  started_at: number;
  source?: KongResponseSource;
  workspace?: string;
  workspace_name?: string;
  [field: string]: unknown;
}

/** A logging function: arguments are converted with tostring and joined with spaces. */
type KongLogFn = (...args: unknown[]) => void;

/**
 * `kong.log`: callable (same as `kong.log.notice`), with one function per nginx log level.
 * @noSelf
 */
interface KongLog {
  /**
   * Writes to the error log at notice level (`kong.log(...)` is `kong.log.notice(...)`).
   * @phases any (no phase check in Kong's code)
   */
  (...args: unknown[]): void;
  /**
   * Writes the arguments, joined by spaces, to the error log at debug level, prefixed with the plugin's namespace.
   * @phases any (no phase check in Kong's code)
   */
  debug: KongLogFn;
  /**
   * Writes to the error log at info level.
   * @phases any (no phase check in Kong's code)
   */
  info: KongLogFn;
  /**
   * Writes to the error log at notice level.
   * @phases any (no phase check in Kong's code)
   */
  notice: KongLogFn;
  /**
   * Writes to the error log at warn level.
   * @phases any (no phase check in Kong's code)
   */
  warn: KongLogFn;
  /**
   * Writes to the error log at error level.
   * @phases any (no phase check in Kong's code)
   */
  err: KongLogFn;
  /**
   * Writes to the error log at crit level.
   * @phases any (no phase check in Kong's code)
   */
  crit: KongLogFn;
  /**
   * Writes to the error log at alert level.
   * @phases any (no phase check in Kong's code)
   */
  alert: KongLogFn;
  /**
   * Writes to the error log at emerg level.
   * @phases any (no phase check in Kong's code)
   */
  emerg: KongLogFn;
  /**
   * Logs a deprecation warning (at warn level, once per message). The last argument may be an
   * options table `{ after?: string; removal?: string }`.
   * @phases any (no phase check in Kong's code)
   */
  deprecation: (...args: unknown[]) => void;
  /**
   * Pretty-prints its arguments (with `inspect`) to the error log at notice level; a no-op once
   * `kong.log.inspect.off()` was called. Callable, with `on`, `off` and `print`.
   * @phases any (no phase check in Kong's code)
   */
  inspect: KongLogInspect;
  /**
   * Adds (or replaces, per `options.mode`) a value in the table that `kong.log.serialize()`
   * returns. `key` is a dot path such as `"request.headers.x-my"`.
   * @phases rewrite, access, response, header_filter, body_filter, log
   */
  set_serialize_value: (key: string, value: string | number | boolean | object, options?: { mode?: "set" | "add" | "replace" }) => void;
  /**
   * Builds the request information table that logging plugins send (http-log, file-log).
   * @phases log
   */
  serialize: (options?: object) => KongSerializedLog;
  /**
   * Undocumented: sets the prefix format of this logger's lines (e.g. `"%namespace %file_src:%line_src %message"`).
   * @phases any (no phase check in Kong's code)
   */
  set_format: (format: string) => void;
  /**
   * Undocumented: creates a logger whose lines carry `namespace` (what Kong does for each plugin).
   * @phases any (no phase check in Kong's code)
   */
  new: (namespace: string, format?: string) => KongLog;
}

/**
 * `kong.log.inspect`: callable pretty-printer.
 * @noSelf
 */
interface KongLogInspect {
  /**
   * Pretty-prints the arguments at notice level.
   * @phases any (no phase check in Kong's code)
   */
  (...args: unknown[]): void;
  /**
   * Re-enables `kong.log.inspect` output.
   * @phases any (no phase check in Kong's code)
   */
  on: () => void;
  /**
   * Disables `kong.log.inspect` output (for production).
   * @phases any (no phase check in Kong's code)
   */
  off: () => void;
  /**
   * The printing function behind `kong.log.inspect(...)`.
   * @phases any (no phase check in Kong's code)
   */
  print: (...args: unknown[]) => void;
}

/**
 * `kong.request`: the request as the client sent it.
 * @noSelf
 */
interface KongRequest {
  /**
   * The scheme of the request URL: `"http"` or `"https"`, lower-case.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_scheme(): string;
  /**
   * The host of the request URL (from the Host header or the request line), lower-case.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_host(): string;
  /**
   * The port the request was received on (the listener's port).
   * @phases certificate, client_hello, rewrite, access, balancer, response, header_filter, body_filter, log, preread, error, admin_api, cluster_listener
   */
  get_port(): number;
  /**
   * The scheme, honoring X-Forwarded-Proto when the client is a trusted IP.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_forwarded_scheme(): string;
  /**
   * The host, honoring X-Forwarded-Host when the client is a trusted IP.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_forwarded_host(): string;
  /**
   * The port, honoring X-Forwarded-Port when the client is a trusted IP.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_forwarded_port(): number;
  /**
   * The path, honoring X-Forwarded-Path when the client is a trusted IP.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_forwarded_path(): string;
  /**
   * The stripped path prefix, honoring X-Forwarded-Prefix when trusted; `undefined` when nothing was stripped.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_forwarded_prefix(): string | undefined;
  /**
   * The HTTP version as a number (1.0, 1.1, 2.0); `undefined` for an unknown version.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_http_version(): number | undefined;
  /**
   * The request method, upper-case (`"GET"`, `"POST"`, ...).
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_method(): string;
  /**
   * The normalized path of the request URL (percent-decoded, no query string).
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_path(): string;
  /**
   * The path as the client sent it, not normalized and not decoded.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_raw_path(): string;
  /**
   * The path plus `?` and the query string when there is one.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_path_with_query(): string;
  /**
   * The query string without `?` (`""` when there is none).
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_raw_query(): string;
  /**
   * The first value of a query argument: `true` for a flag without `=`, `""` for `a=`, `undefined` when absent.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_query_arg(name: string): string | boolean | undefined;
  /**
   * The query arguments as a table (at most `max_args`, default 100).
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_query(max_args?: number): KongArgs;
  /**
   * The first value of a request header (case-insensitive name, `_` matches `-`); `undefined` when absent.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_header(name: string): string | undefined;
  /**
   * The request headers with lower-case names (at most `max_headers`, default 100).
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_headers(max_headers?: number): KongHeaders;
  /**
   * The raw request body (`""` when there is none). A body that nginx wrote to a temp file
   * (larger than client_body_buffer_size, 8k in Kong) is returned only when
   * `max_allowed_file_size` is given (0 = no limit); otherwise `[undefined, err]`.
   * @phases rewrite, access, response, error, admin_api
   */
  get_raw_body(max_allowed_file_size?: number): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /**
   * The body decoded by MIME type (JSON, form-urlencoded, multipart): `[args, err, mimetype]`.
   * @phases rewrite, access, response, error, admin_api
   */
  get_body(
    mimetype?: string,
    max_args?: number,
    max_allowed_file_size?: number,
  ): LuaMultiReturn<[{ [key: string]: unknown } | undefined, string | undefined, string | undefined]>;
  /**
   * When Kong received the request, in milliseconds since the epoch.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_start_time(): number;
  /**
   * The captures of the matched route's regex path.
   * @phases rewrite, access, balancer, response, header_filter, body_filter, log, error, admin_api, cluster_listener
   */
  get_uri_captures(): KongUriCaptures;
}

/**
 * `kong.response`: the response Kong sends to the client.
 * @noSelf
 */
interface KongResponse {
  /**
   * The HTTP status currently set for the response to the client.
   * @phases response, header_filter, body_filter, log, error, admin_api
   */
  get_status(): number;
  /**
   * The first value of a response header; `undefined` when absent.
   * @phases response, header_filter, body_filter, log, error, admin_api
   */
  get_header(name: string): string | undefined;
  /**
   * The response headers; the second value is `"truncated"` when there were more than `max_headers` (default 100).
   * @phases response, header_filter, body_filter, log, error, admin_api
   */
  get_headers(max_headers?: number): LuaMultiReturn<[KongHeaders, "truncated" | undefined]>;
  /**
   * Where the response came from: `"service"` (proxied), `"exit"` (a plugin or Kong called
   * `kong.response.exit`), or `"error"` (an error while proxying).
   * @phases response, header_filter, body_filter, log, error, admin_api
   */
  get_source(): KongResponseSource;
  /**
   * Sets the status of the response to the client (before headers are sent).
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  set_status(status: number): void;
  /**
   * Sets a response header, replacing existing values.
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  set_header(name: string, value: KongHeaderValue): void;
  /**
   * Adds a response header value, keeping existing ones.
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  add_header(name: string, value: KongHeaderValue): void;
  /**
   * Removes every value of a response header.
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  clear_header(name: string): void;
  /**
   * Sets several response headers at once (each replaces existing values).
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  set_headers(headers: KongHeadersInput): void;
  /**
   * Buffers the body: returns `undefined` for every chunk but the last (and suppresses those
   * chunks), then the whole body on the last chunk (which it also puts in `ngx.arg[1]`).
   * Do not use it on a stream that must reach the client chunk by chunk.
   * @phases body_filter
   */
  get_raw_body(): string | undefined;
  /**
   * Replaces the whole body (sets `ngx.arg[1]` and eof). Cannot change a Content-Length already
   * sent: clear that header in header_filter.
   * @phases body_filter
   */
  set_raw_body(body: string): void;
  /**
   * Ends the request with `status` and `body` (a table body is JSON-encoded with
   * `Content-Type: application/json`). Always write `return kong.response.exit(...)`:
   * - access: Kong stores the response and yields the plugin's coroutine, which it never
   *   resumes; later plugins' access is skipped, header_filter/body_filter/log still run.
   * - rewrite/response: sends the response and calls `ngx.exit`.
   * - header_filter: stores the body for body_filter and *returns* (code after it would run).
   * Raises in body_filter and log, and when headers were already sent.
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  exit(status: number, body?: string | object, headers?: KongHeadersInput): never;
  /**
   * Ends the request with an error status (400..599) and Kong's standard error body
   * (`{"message": ...}` in the format the client accepts). Same phase behaviour as `exit`.
   * @phases rewrite, access, balancer, response, header_filter, error, admin_api
   */
  error(status: number, message?: string, headers?: KongHeadersInput): never;
}

/**
 * `kong.service.request`: the request Kong sends to the upstream service.
 * @noSelf
 */
interface KongServiceRequest {
  /**
   * Turns on buffered proxying for this request, so `kong.service.response.get_raw_body()` works
   * and `response` handlers run.
   * @phases rewrite, access, balancer
   */
  enable_buffering(): void;
  /**
   * Sets the scheme (`"http"` or `"https"`) used to connect to the service.
   * @phases rewrite, access, balancer
   */
  set_scheme(scheme: string): void;
  /**
   * Sets the path of the upstream request (no query string).
   * @phases rewrite, access, balancer
   */
  set_path(path: string): void;
  /**
   * Sets the raw query string (without `?`) of the upstream request.
   * @phases rewrite, access
   */
  set_raw_query(query: string): void;
  /**
   * Sets the method of the upstream request.
   * @phases rewrite, access
   */
  set_method(method: string): void;
  /**
   * Replaces the query string of the upstream request with these arguments.
   * @phases rewrite, access
   */
  set_query(args: KongArgsInput): void;
  /**
   * Removes a query argument from the upstream request.
   * @phases rewrite, access
   */
  clear_query_arg(name: string): void;
  /**
   * Sets a header of the upstream request, replacing existing values.
   * @phases rewrite, access, balancer
   */
  set_header(header: string, value: KongHeaderValue): void;
  /**
   * Adds a header value to the upstream request.
   * @phases rewrite, access
   */
  add_header(header: string, value: KongHeaderValue): void;
  /**
   * Removes a header from the upstream request (no error when absent).
   * @phases rewrite, access
   */
  clear_header(header: string): void;
  /**
   * Sets several upstream request headers at once.
   * @phases rewrite, access
   */
  set_headers(headers: KongHeadersInput): void;
  /**
   * Replaces the body of the upstream request (and its Content-Length).
   * @phases rewrite, access, balancer
   */
  set_raw_body(body: string): void;
  /**
   * Encodes `args` per MIME type (default: the request's Content-Type) and sets it as the upstream body.
   * @phases rewrite, access
   */
  set_body(args: object, mimetype?: string): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Stream subsystem only: disables TLS towards the upstream.
   * @phases balancer, preread
   */
  disable_tls(): LuaMultiReturn<[true, undefined] | [undefined, string]>;
}

/**
 * `kong.service.response`: the response as the upstream service sent it.
 * @noSelf
 */
interface KongServiceResponse {
  /**
   * The upstream's status; `undefined` when the request was not proxied.
   * @phases response, header_filter, body_filter, log
   */
  get_status(): number | undefined;
  /**
   * The upstream's response headers; the second value is `"truncated"` beyond `max_headers`.
   * @phases response, header_filter, body_filter, log
   */
  get_headers(max_headers?: number): LuaMultiReturn<[KongHeaders, "truncated" | undefined]>;
  /**
   * The first value of an upstream response header; `undefined` when absent.
   * @phases response, header_filter, body_filter, log
   */
  get_header(name: string): string | undefined;
  /**
   * The buffered upstream body. Raises unless buffered proxying is on (a `response` handler or
   * `kong.service.request.enable_buffering()`).
   * @phases response, header_filter, body_filter, log
   */
  get_raw_body(): string;
  /**
   * The buffered upstream body decoded by MIME type: `[args, err, mimetype]`. Needs buffered proxying.
   * @phases response, header_filter, body_filter, log
   */
  get_body(mimetype?: string, max_args?: number): LuaMultiReturn<[{ [key: string]: unknown } | undefined, string | undefined, string | undefined]>;
}

/**
 * `kong.service`: the upstream connection.
 * @noSelf
 */
interface KongServiceModule {
  /** The request sent to the service. */
  request: KongServiceRequest;
  /** The response from the service. */
  response: KongServiceResponse;
  /**
   * Routes the request to the named Upstream entity.
   * @phases access
   */
  set_upstream(host: string): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Routes the request to this host and port directly, bypassing load balancing.
   * @phases rewrite, access, balancer, preread
   */
  set_target(host: string, port: number): void;
  /**
   * Registers a function the balancer calls before each retry.
   * @phases access
   */
  set_target_retry_callback(retry_callback: (this: void) => void): void;
  /**
   * Sets the number of retries for this request.
   * @phases access
   */
  set_retries(retries: number): void;
  /**
   * Sets the connect, write and read timeouts (milliseconds) for this request.
   * @phases access
   */
  set_timeouts(connect_timeout: number, write_timeout: number, read_timeout: number): void;
  /**
   * Sets the client certificate chain and key (cdata from resty.openssl) for mTLS to the upstream.
   * @phases rewrite, access, balancer, preread
   */
  set_tls_cert_key(chain: unknown, key: unknown): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Turns upstream TLS certificate verification on or off.
   * @phases rewrite, access, balancer, preread
   */
  set_tls_verify(on: boolean): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Sets the upstream TLS verification depth.
   * @phases rewrite, access, balancer, preread
   */
  set_tls_verify_depth(depth: number): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Sets the CA store (a resty.openssl x509.store) used to verify the upstream.
   * @phases rewrite, access, balancer, preread
   */
  set_tls_verify_store(store: unknown): LuaMultiReturn<[true, undefined] | [undefined, string]>;
}

/**
 * `kong.client.tls`: the client's TLS connection (HTTP subsystem only).
 * @noSelf
 */
interface KongClientTls {
  /**
   * Asks the client for a certificate during the handshake (`ca_certs`: cdata STACK_OF(X509)).
   * @phases certificate
   */
  request_client_certificate(ca_certs?: unknown): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * Prevents TLS session resumption for this connection.
   * @phases certificate
   */
  disable_session_reuse(): LuaMultiReturn<[true, undefined] | [undefined, string]>;
  /**
   * The PEM client certificate chain when mTLS completed; `[undefined, undefined]` when the client sent none.
   * @phases rewrite, access, balancer, response, log
   */
  get_full_client_certificate_chain(): LuaMultiReturn<[string, undefined] | [undefined, string | undefined]>;
  /**
   * Overrides `$ssl_client_verify` as seen by logs and later plugins (`"SUCCESS"`, `"NONE"`, `"FAILED:reason"`).
   * @phases rewrite, access, balancer, response
   */
  set_client_verify(v: string): void;
  /**
   * Stops offering HTTP/2 in ALPN for this connection.
   * @phases client_hello
   */
  disable_http2_alpn(): LuaMultiReturn<[true, undefined] | [undefined, string]>;
}

/**
 * `kong.client`: the downstream client.
 * @noSelf
 */
interface KongClient {
  /** TLS of the client connection. */
  tls: KongClientTls;
  /**
   * The IP address of the peer (nginx's `$remote_addr`, not X-Forwarded-For).
   * @phases certificate, client_hello, rewrite, access, balancer, response, header_filter, body_filter, log, preread, error, admin_api, cluster_listener
   */
  get_ip(): string;
  /**
   * The client's IP considering X-Forwarded-For / real_ip settings when the peer is trusted.
   * @phases certificate, client_hello, rewrite, access, balancer, response, header_filter, body_filter, log, preread, error, admin_api, cluster_listener
   */
  get_forwarded_ip(): string;
  /**
   * The client's source port.
   * @phases certificate, client_hello, rewrite, access, balancer, response, header_filter, body_filter, log, preread, error, admin_api, cluster_listener
   */
  get_port(): number;
  /**
   * The client's port considering forwarding headers when the peer is trusted.
   * @phases certificate, client_hello, rewrite, access, balancer, response, header_filter, body_filter, log, preread, error, admin_api, cluster_listener
   */
  get_forwarded_port(): number;
  /**
   * The credential an auth plugin set with `authenticate`; `undefined` for anonymous requests.
   * @phases access, response, header_filter, body_filter, log
   */
  get_credential(): KongCredential | undefined;
  /**
   * Loads a consumer by id (or by username when `search_by_username` and no id matches).
   * @phases access, response, header_filter, body_filter, log
   */
  load_consumer(consumer_id: string, search_by_username?: boolean): LuaMultiReturn<[KongConsumer | undefined, string | undefined]>;
  /**
   * The consumer an auth plugin authenticated; `undefined` when none (run after the auth plugin:
   * key-auth's PRIORITY is 1250).
   * @phases access, response, header_filter, body_filter, log
   */
  get_consumer(): KongConsumer | undefined;
  /**
   * Sets the authenticated consumer and credential of this request (what auth plugins do).
   * @phases access
   */
  authenticate(consumer: KongConsumer | undefined, credential: KongCredential | undefined): void;
  /**
   * The protocol of the matched route: `"http"`, `"https"`, `"grpc"`, `"grpcs"`, `"tcp"`, `"tls"`.
   * @phases access, response, header_filter, body_filter, log
   */
  get_protocol(allow_terminated?: boolean): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  /**
   * The consumer groups of the authenticated consumer. Only Kong Enterprise has consumer groups:
   * in Kong OSS this function does not exist, so test for it before calling.
   * @phases access, header_filter, response, body_filter, log
   */
  get_consumer_groups?(): Array<{ id?: string; name?: string }> | undefined;
}

/**
 * `kong.ctx`: request-scoped tables.
 * @noSelf
 */
interface KongCtx {
  /**
   * One table per request, shared by every plugin (and Kong). Extend `KongSharedCtx` to type your fields.
   * @phases any (no phase check in Kong's code; it is per request, so use it from rewrite to log)
   */
  shared: KongSharedCtx;
  /**
   * One table per request and plugin, private to the running plugin. Extend `KongPluginCtx` to type your fields.
   * @phases any (no phase check in Kong's code; it is per request, so use it from rewrite to log)
   */
  plugin: KongPluginCtx;
}

/**
 * `kong.node`: this Kong node.
 * @noSelf
 */
interface KongNode {
  /**
   * The node's v4 UUID.
   * @phases any (no phase check in Kong's code)
   */
  get_id(): string;
  /**
   * Shared dict and worker Lua VM memory usage. With `unit` other than `"b"`, values are strings with the unit suffix.
   * @phases any (no phase check in Kong's code)
   */
  get_memory_stats(unit?: "b" | "B" | "k" | "K" | "m" | "M" | "g" | "G", scale?: number): {
    lua_shared_dicts: { [name: string]: { allocated_slabs: number | string; capacity: number | string } };
    workers_lua_vms: { http_allocated_gc: number | string; pid: number; err?: string }[];
  };
  /**
   * The machine's hostname.
   * @phases any (no phase check in Kong's code)
   */
  get_hostname(): string;
}

/**
 * `kong.router`: what the router matched.
 * @noSelf
 */
interface KongRouter {
  /**
   * The matched route; `undefined` when no route matched.
   * @phases access, response, header_filter, body_filter, log
   */
  get_route(): KongRoute | undefined;
  /**
   * The service of the matched route; `undefined` for routes without a service or when none matched.
   * @phases access, response, header_filter, body_filter, log
   */
  get_service(): KongService | undefined;
}

/**
 * `kong.ip`: trusted IP checks (`trusted_ips` setting).
 * @noSelf
 */
interface KongIp {
  /**
   * Whether `address` is in Kong's `trusted_ips`.
   * @phases any (no phase check in Kong's code)
   */
  is_trusted(address: string): boolean;
}

/**
 * `kong.plugin`: the running plugin instance.
 * @noSelf
 */
interface KongPluginModule {
  /**
   * The id of the running plugin instance (`conf.__plugin_id`).
   * @phases any (no phase check in Kong's code; meaningful in rewrite, access, header_filter, response, body_filter, log)
   */
  get_id(): string;
}

/**
 * `kong.nginx`: nginx-level facts.
 * @noSelf
 */
interface KongNginx {
  /**
   * `"http"` or `"stream"`.
   * @phases any (no phase check in Kong's code)
   */
  get_subsystem(): "http" | "stream";
  /**
   * Connection and request counters from nginx's stub_status.
   * @phases any (no phase check in Kong's code)
   */
  get_statistics(): {
    connections_active: number;
    connections_reading: number;
    connections_writing: number;
    connections_waiting: number;
    connections_accepted: number;
    connections_handled: number;
    total_requests: number;
  };
}

/**
 * `kong.table`: LuaJIT table helpers.
 * @noSelf
 */
interface KongTable {
  /**
   * A table with preallocated array and hash parts (LuaJIT `table.new`).
   * @phases any (no phase check in Kong's code)
   */
  new: <T extends object = LuaTable>(narr?: number, nrec?: number) => T;
  /**
   * Empties a table in place, keeping its allocation (LuaJIT `table.clear`).
   * @phases any (no phase check in Kong's code)
   */
  clear(tab: object): void;
  /**
   * A new table with the keys of `t1` then `t2` (shallow).
   * @phases any (no phase check in Kong's code)
   */
  merge<A extends object, B extends object>(t1?: A, t2?: B): A & B;
}

/**
 * `kong.configuration`: the node's kong.conf values, read-only. Known keys are typed; every other
 * key reads as `unknown` and must be narrowed.
 * @noSelf
 */
interface KongConfiguration {
  readonly prefix: string;
  readonly plugins: readonly string[];
  readonly database: "postgres" | "off" | string;
  readonly role: "traditional" | "control_plane" | "data_plane";
  readonly log_level: string;
  readonly proxy_listeners?: readonly { ip: string; port: number; ssl: boolean; http2?: boolean }[];
  readonly trusted_ips?: readonly string[];
  readonly real_ip_header?: string;
  readonly nginx_worker_processes?: string;
  readonly [key: string]: unknown;
}

/**
 * The `kong` global.
 * @noSelf
 */
interface KongGlobal {
  /** Kong's version, e.g. `"3.9.1"`. */
  readonly version: string;
  /** Kong's version as a number, e.g. 3009001. */
  readonly version_num: number;
  /** The node's kong.conf values (read-only). */
  readonly configuration: KongConfiguration;
  /** The client request. */
  readonly request: KongRequest;
  /** The response to the client. */
  readonly response: KongResponse;
  /** The upstream connection, request and response. */
  readonly service: KongServiceModule;
  /** The downstream client. */
  readonly client: KongClient;
  /** Request-scoped tables. */
  readonly ctx: KongCtx;
  /**
   * Logging to nginx's error log, namespaced per plugin. Callable: `kong.log(...)` logs at notice level.
   * @phases any (no phase check in Kong's code)
   */
  readonly log: KongLog;
  /** This Kong node. */
  readonly node: KongNode;
  /** The matched route and service. */
  readonly router: KongRouter;
  /** Trusted IP checks. */
  readonly ip: KongIp;
  /** The running plugin instance. */
  readonly plugin: KongPluginModule;
  /** nginx-level facts. */
  readonly nginx: KongNginx;
  /** LuaJIT table helpers. */
  readonly table: KongTable;
  /** Kong's DAO (untyped here: plugins in this project do not use the database). */
  readonly db: unknown;
  /** Kong's database cache (mlcache wrapper); untyped here. */
  readonly cache: unknown;
  /** Inter-worker events; untyped here. */
  readonly worker_events: unknown;
}

/** The Kong PDK, installed by Kong in every worker. */
declare const kong: KongGlobal;
