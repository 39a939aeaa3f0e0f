// The nginx.conf the local gateway runs: Kong 3.9's proxy server (nginx_kong.lua template)
// reduced to one plain-HTTP listener, with the Kong phases driven by gateway/lua/kong_local.

export interface SharedDict {
  name: string;
  size: string;
}

export interface NginxConfOptions {
  prefix: string;
  listenHost: string;
  port: number;
  configJsonPath: string;
  luaPackagePath: string[];
  luaPackageCpath: string[];
  sharedDicts: SharedDict[];
  workerProcesses: number;
  logLevel: string;
  /** Extra directives for the http block (Kong's `nginx_http_*` injection), already formatted. */
  httpDirectives: string[];
  /** Extra directives for the proxy server block (Kong's `nginx_proxy_*` injection). */
  proxyDirectives: string[];
  modulesDir: string;
  /** Environment variables kept for Lua code (os.getenv), besides Kong's own. */
  envVars?: string[];
  /** Run the workers as this user (set when the CLI runs as root, see cli.ts). */
  workerUser?: string;
  /** Kong's status_listen: a listener for the Status API (GET /metrics of the prometheus plugin). */
  statusListen?: { host: string; port: number };
}

/** The dicts Kong 3.9's nginx_kong.lua template always declares (kong_db_cache at mem_cache_size 128m). */
export const KONG_SHARED_DICTS: SharedDict[] = [
  { name: "kong", size: "5m" },
  { name: "kong_locks", size: "8m" },
  { name: "kong_healthchecks", size: "5m" },
  { name: "kong_cluster_events", size: "5m" },
  { name: "kong_rate_limiting_counters", size: "12m" },
  { name: "kong_core_db_cache", size: "128m" },
  { name: "kong_core_db_cache_miss", size: "12m" },
  { name: "kong_db_cache", size: "128m" },
  { name: "kong_db_cache_miss", size: "12m" },
  { name: "kong_secrets", size: "5m" },
  { name: "kong_dns_cache", size: "5m" },
  // the bundled prometheus plugin's metrics (its stand-in: lua/kong/plugins/prometheus)
  { name: "prometheus_metrics", size: "5m" },
];

const SHARED_DICT_NAME_RE = /^[A-Za-z0-9_]+$/;
const SIZE_RE = /^\d+[kKmM]?$/;

/**
 * Parses Kong's injected `nginx_http_lua_shared_dict` value ("name 12m", several separated by ";").
 * Throws on malformed entries so that a typo is reported instead of silently dropped.
 */
export function parseSharedDictEnv(value: string | undefined): SharedDict[] {
  if (!value) return [];
  const dicts: SharedDict[] = [];
  for (const part of value.split(";")) {
    const entry = part.trim();
    if (!entry) continue;
    const [name, size, ...rest] = entry.split(/\s+/);
    if (!name || !size || rest.length > 0 || !SHARED_DICT_NAME_RE.test(name) || !SIZE_RE.test(size)) {
      throw new Error(`invalid KONG_NGINX_HTTP_LUA_SHARED_DICT entry '${entry}': expected '<name> <size>' such as 'my_dict 12m'`);
    }
    dicts.push({ name, size });
  }
  return dicts;
}

/** Kong's shared dicts plus the injected ones; an injected dict with a standard name replaces its size. */
export function mergeSharedDicts(extra: SharedDict[]): SharedDict[] {
  const byName = new Map<string, SharedDict>();
  for (const d of [...KONG_SHARED_DICTS, ...extra]) byName.set(d.name, d);
  return [...byName.values()];
}

/**
 * Kong's generic injection: `KONG_NGINX_HTTP_<DIRECTIVE>` goes to the http block and
 * `KONG_NGINX_PROXY_<DIRECTIVE>` to the proxy server block, several values separated by ";".
 * lua_shared_dict is handled separately (it must be merged with Kong's own dicts).
 */
export function injectedDirectives(env: NodeJS.ProcessEnv, prefix: "KONG_NGINX_HTTP_" | "KONG_NGINX_PROXY_"): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(prefix) || value === undefined || value === "") continue;
    const directive = key.slice(prefix.length).toLowerCase();
    if (directive === "lua_shared_dict") continue;
    if (!/^[a-z0-9_]+$/.test(directive)) continue;
    for (const v of value.split(";")) {
      if (v.trim()) out.push(`${directive} ${v.trim()};`);
    }
  }
  return out;
}

function luaString(s: string): string {
  return JSON.stringify(s);
}

/** The upstream request headers every Kong proxy location sets (nginx_kong.lua). */
function proxyHeaders(indent: string): string {
  return [
    "proxy_http_version 1.1;",
    "proxy_set_header      TE                        $upstream_te;",
    "proxy_set_header      Via                       $upstream_via;",
    "proxy_set_header      Host                      $upstream_host;",
    "proxy_set_header      Upgrade                   $upstream_upgrade;",
    "proxy_set_header      Connection                $upstream_connection;",
    "proxy_set_header      X-Forwarded-For           $upstream_x_forwarded_for;",
    "proxy_set_header      X-Forwarded-Proto         $upstream_x_forwarded_proto;",
    "proxy_set_header      X-Forwarded-Host          $upstream_x_forwarded_host;",
    "proxy_set_header      X-Forwarded-Port          $upstream_x_forwarded_port;",
    "proxy_set_header      X-Forwarded-Path          $upstream_x_forwarded_path;",
    "proxy_set_header      X-Forwarded-Prefix        $upstream_x_forwarded_prefix;",
    "proxy_set_header      X-Real-IP                 $remote_addr;",
    "proxy_set_header      X-Kong-Request-Id         $kong_request_id;",
    "proxy_pass_header     Server;",
    "proxy_pass_header     Date;",
    "proxy_ssl_name        $upstream_host;",
    "proxy_ssl_server_name on;",
    "proxy_pass            $upstream_scheme://kong_upstream$upstream_uri;",
  ].map((l) => indent + l).join("\n");
}

/**
 * Kong's status server (status_listen): no plugin phases, only the Status API routes of the loaded
 * plugins (kong.plugins.<name>.status_api, as Kong mounts them), else Kong's 404.
 */
function statusServer(listen: { host: string; port: number }): string {
  return `
    server {
        server_name kong_status;
        listen ${listen.host}:${listen.port};
        access_log off;

        location / {
            default_type application/json;
            content_by_lua_block {
                local path, method = ngx.var.uri, ngx.req.get_method()
                for _, p in ipairs(require("kong_local.state").plugins or {}) do
                    local mod = "kong.plugins." .. p.name .. ".status_api"
                    local routes = package.searchpath(mod, package.path) and require(mod)
                    local handler = type(routes) == "table" and routes[path] and routes[path][method]
                    if handler then
                        return handler()
                    end
                end
                ngx.status = 404
                ngx.header["Content-Type"] = "application/json; charset=utf-8"
                ngx.print('{"message":"Not found"}')
            }
        }
    }
`;
}

export function renderNginxConf(o: NginxConfOptions): string {
  const pkgPath = [...o.luaPackagePath, ""].join(";") + ";";
  const pkgCpath = [...o.luaPackageCpath, ""].join(";") + ";";
  const dicts = o.sharedDicts.map((d) => `    lua_shared_dict ${d.name} ${d.size};`).join("\n");
  const httpInjected = o.httpDirectives.map((d) => `    ${d}`).join("\n");
  const proxyInjected = o.proxyDirectives.map((d) => `        ${d}`).join("\n");
  const phase = (fn: string) => `require("kong_local.runloop").${fn}()`;
  return `# Generated by gateway/cli.ts: do not edit (rewritten at every start).
load_module ${o.modulesDir}/ndk_http_module.so;
load_module ${o.modulesDir}/ngx_http_lua_module.so;

daemon off;
master_process on;
${o.workerUser ? `user ${o.workerUser};` : ""}
worker_processes ${o.workerProcesses};
pid logs/nginx.pid;
error_log logs/error.log ${o.logLevel};
worker_rlimit_nofile 16384;
worker_shutdown_timeout 10s;

${[...new Set(["KONG_PLUGINS", "KONG_LOCAL_HOSTS", "KONG_TRUSTED_IPS", "KONG_NGINX_HTTP_LUA_SHARED_DICT", ...(o.envVars ?? [])])]
  .filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n))
  .map((n) => `env ${n};`)
  .join("\n")}

events {
    worker_connections 16384;
    multi_accept on;
}

http {
    charset UTF-8;
    server_tokens off;
    default_type application/octet-stream;
    access_log logs/access.log;

    client_body_temp_path  tmp/client_body;
    proxy_temp_path        tmp/proxy;
    fastcgi_temp_path      tmp/fastcgi;
    uwsgi_temp_path        tmp/uwsgi;
    scgi_temp_path         tmp/scgi;

    lua_package_path  ${luaString(pkgPath)};
    lua_package_cpath ${luaString(pkgCpath)};

    lua_socket_pool_size 256;
    lua_socket_log_errors off;
    lua_max_running_timers 4096;
    lua_max_pending_timers 16384;
    lua_regex_match_limit 100000;
    lua_regex_cache_max_entries 8192;
    lua_ssl_verify_depth 1;
    lua_ssl_protocols TLSv1.2 TLSv1.3;

${dicts}

    underscores_in_headers on;
    client_max_body_size 0;
    proxy_ssl_server_name on;

    # Kong's request id (32 hex characters), sent upstream and in X-Kong-Request-Id.
    map $request_id $kong_request_id {
        default $request_id;
    }

${httpInjected}

    init_by_lua_block {
        require("kong_local.init").init(${luaString(o.configJsonPath)})
    }

    init_worker_by_lua_block {
        require("kong_local.init").init_worker()
    }

    upstream kong_upstream {
        server 0.0.0.1;
        balancer_by_lua_block {
            ${phase("balancer")}
        }
        # after balancer_by_lua: the keepalive module wraps the Lua balancer's peer functions
        keepalive 60;
        keepalive_requests 10000;
        keepalive_timeout 60s;
    }

    server {
        server_name kong;
        listen ${o.listenHost}:${o.port} reuseport backlog=16384;

        error_page 400 404 405 408 411 412 413 414 417 /kong_error_handler;
        error_page 494 =494 /kong_error_handler;
        error_page 500 502 503 504 /kong_error_handler;

        client_body_buffer_size 8k;
        client_header_buffer_size 1k;
        large_client_header_buffers 4 8k;

${proxyInjected}

        rewrite_by_lua_block {
            ${phase("rewrite")}
        }

        access_by_lua_block {
            ${phase("access")}
        }

        header_filter_by_lua_block {
            ${phase("header_filter")}
        }

        body_filter_by_lua_block {
            ${phase("body_filter")}
        }

        log_by_lua_block {
            ${phase("log")}
        }

        location / {
            default_type                     '';

            set $ctx_ref                     '';
            set $upstream_te                 '';
            set $upstream_via                '';
            set $upstream_host               '';
            set $upstream_upgrade            '';
            set $upstream_connection         '';
            set $upstream_scheme             '';
            set $upstream_uri                '';
            set $upstream_x_forwarded_for    '';
            set $upstream_x_forwarded_proto  '';
            set $upstream_x_forwarded_host   '';
            set $upstream_x_forwarded_port   '';
            set $upstream_x_forwarded_path   '';
            set $upstream_x_forwarded_prefix '';
            set $kong_proxy_mode             'http';

            proxy_buffering          on;
            proxy_request_buffering  on;

${proxyHeaders("            ")}
        }

        location @unbuffered {
            internal;
            default_type         '';
            set $kong_proxy_mode 'unbuffered';

            proxy_buffering          off;
            proxy_request_buffering  off;

${proxyHeaders("            ")}
        }

        location @unbuffered_request {
            internal;
            default_type         '';
            set $kong_proxy_mode 'unbuffered';

            proxy_buffering          on;
            proxy_request_buffering  off;

${proxyHeaders("            ")}
        }

        location @unbuffered_response {
            internal;
            default_type         '';
            set $kong_proxy_mode 'unbuffered';

            proxy_buffering          off;
            proxy_request_buffering  on;

${proxyHeaders("            ")}
        }

        location = /kong_buffered_http {
            internal;
            default_type         '';
            set $kong_proxy_mode 'http';

            rewrite_by_lua_block       { return }
            access_by_lua_block        { return }
            header_filter_by_lua_block { return }
            body_filter_by_lua_block   { return }
            log_by_lua_block           { return }

${proxyHeaders("            ")}
        }

        location = /kong_error_handler {
            internal;
            default_type                 '';

            uninitialized_variable_warn  off;

            rewrite_by_lua_block { return }
            access_by_lua_block  { return }

            content_by_lua_block {
                ${phase("handle_error")}
            }
        }
    }
${o.statusListen ? statusServer(o.statusListen) : ""}}
`;
}
