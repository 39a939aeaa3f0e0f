// The two plain nginx instances of the benchmark, on the same nginx binary as the gateway:
// the upstream (fixed JSON, static streams, a slow long stream) and the bare proxy_pass.
import { mkdirSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startListening, type Managed } from "./procs.ts";

export const NGINX_BIN = process.env.KONG_LOCAL_NGINX ?? "/usr/sbin/nginx";
export const MODULES_DIR = "/usr/lib/nginx/modules";
const RESTY_LUA = "/usr/share/lua/5.1";

function header(prefix: string, opts: { lua: boolean }): string {
  return [
    opts.lua ? `load_module ${MODULES_DIR}/ndk_http_module.so;\nload_module ${MODULES_DIR}/ngx_http_lua_module.so;` : "",
    "daemon off;",
    "master_process on;",
    // as root nginx would run its workers as nobody, who cannot read a private prefix
    process.getuid?.() === 0 ? "user root;" : "",
    "worker_processes 1;",
    "pid logs/nginx.pid;",
    "error_log logs/error.log warn;",
    "worker_rlimit_nofile 16384;",
    "events { worker_connections 16384; multi_accept on; }",
    "",
  ]
    .filter((l) => l !== "")
    .join("\n")
    .concat(`\n# prefix: ${prefix}\n`);
}

const TEMP_PATHS = `
    client_body_temp_path tmp/client_body;
    proxy_temp_path       tmp/proxy;
    fastcgi_temp_path     tmp/fastcgi;
    uwsgi_temp_path       tmp/uwsgi;
    scgi_temp_path        tmp/scgi;`;

function preparePrefix(prefix: string): void {
  for (const d of ["logs", "tmp", "html"]) mkdirSync(join(prefix, d), { recursive: true });
}

export interface UpstreamFiles {
  json: string;
  /** Static streamed answers, each served at its API-shaped path. */
  streams: { path: string; file: string; contentType: string; body: string }[];
  /** One event of the slow stream (sent every `slowIntervalMs`). */
  slowEvent: string;
  /** What ends the slow stream (finish, usage chunk and [DONE]). */
  slowTail: string;
}

/**
 * The upstream: never the bottleneck, and the same bytes for every request.
 * - /json and the streams: static files (sendfile), so the upstream spends next to nothing per
 *   stream and a proxy's own cost per byte and per event is what limits the rate. POST is turned
 *   into the static answer by `error_page 405`.
 * - /slow?n=N: one event every `slowIntervalMs` ms, N times, then the tail (the long-lived
 *   streams of the memory test).
 */
export function upstreamConf(prefix: string, port: number, files: UpstreamFiles, opts: { slowIntervalMs: number }): string {
  const streams = files.streams
    .map(
      (s) => `
        location = ${s.path} {
            alias ${prefix}/html/${s.file};
            default_type ${s.contentType};
            error_page 405 =200 $uri;
        }`,
    )
    .join("\n");
  return `${header(prefix, { lua: true })}
http {
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    etag off;
    types { }
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_buffer_size 1m;
    client_max_body_size 0;
${TEMP_PATHS}
    lua_package_path "${RESTY_LUA}/?.lua;;";

    init_by_lua_block {
        local function read(name)
            local f = assert(io.open("${prefix}/html/" .. name, "rb"))
            local s = f:read("*a")
            f:close()
            return s
        end
        BENCH_SLOW_EVENT = read("slow-event")
        BENCH_SLOW_TAIL = read("slow-tail")
    }

    server {
        listen 127.0.0.1:${port} reuseport backlog=16384;
        root ${prefix}/html;

        location = /json {
            default_type application/json;
            error_page 405 =200 $uri;
        }
${streams}

        location = /slow {
            default_type text/event-stream;
            content_by_lua_block {
                ngx.req.discard_body()
                ngx.header["Cache-Control"] = "no-cache"
                local n = tonumber(ngx.var.arg_n) or 50
                for _ = 1, n do
                    ngx.print(BENCH_SLOW_EVENT)
                    local ok = ngx.flush(true)
                    if not ok then return end
                    ngx.sleep(${opts.slowIntervalMs / 1000})
                end
                ngx.print(BENCH_SLOW_TAIL)
            }
        }
    }
}
`;
}

/**
 * The bare reference: a minimal proxy_pass with what any production proxy has (HTTP/1.1 and a
 * keepalive pool to the upstream, an access log to a file like the gateway's, Kong's body buffer
 * size) and nothing else; nginx's default proxy buffers, as the gateway's.
 */
export function bareProxyConf(prefix: string, port: number, upstreamPort: number): string {
  return `${header(prefix, { lua: false })}
http {
    server_tokens off;
    access_log logs/access.log;
    client_max_body_size 0;
${TEMP_PATHS}

    upstream bench_upstream {
        server 127.0.0.1:${upstreamPort};
        keepalive 60;
        keepalive_requests 10000;
        keepalive_timeout 60s;
    }

    server {
        listen 127.0.0.1:${port} reuseport backlog=16384;
        client_body_buffer_size 8k;

        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://bench_upstream;
        }
    }
}
`;
}

export interface NginxInstance extends Managed {
  port: number;
  prefix: string;
  errorLog(): string;
}

export async function startNginx(name: string, prefix: string, port: number, conf: string): Promise<NginxInstance> {
  preparePrefix(prefix);
  writeFileSync(join(prefix, "nginx.conf"), conf);
  const managed = await startListening(name, NGINX_BIN, ["-p", `${prefix}/`, "-c", "nginx.conf", "-e", "logs/error.log"], port, {
    gracefulSignal: "SIGQUIT",
  });
  const logPath = join(prefix, "logs", "error.log");
  return { ...managed, port, prefix, errorLog: () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "") };
}

export async function startUpstream(prefix: string, port: number, files: UpstreamFiles, opts: { slowIntervalMs: number }): Promise<NginxInstance> {
  preparePrefix(prefix);
  writeFileSync(join(prefix, "html", "json"), files.json);
  for (const s of files.streams) writeFileSync(join(prefix, "html", s.file), s.body);
  writeFileSync(join(prefix, "html", "slow-event"), files.slowEvent);
  writeFileSync(join(prefix, "html", "slow-tail"), files.slowTail);
  return startNginx("upstream nginx", prefix, port, upstreamConf(prefix, port, files, opts));
}
