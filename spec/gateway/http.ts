// A plain node:http client for the gateway tests: unlike fetch it can set Host and repeat a header,
// and it reports when the first byte of the body arrived.
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** ms from sending the request to the response headers */
  headersAt: number;
  /** ms from sending the request to the first body chunk (-1 when the body is empty) */
  firstByteAt: number;
  json<T = Record<string, unknown>>(): T;
}

export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = httpRequest(url, { method: opts.method ?? "GET", headers: opts.headers, agent: false }, (res) => {
      const headersAt = Date.now() - t0;
      let firstByteAt = -1;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        if (firstByteAt < 0) firstByteAt = Date.now() - t0;
        chunks.push(c);
      });
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          headersAt,
          firstByteAt,
          json: <T>() => JSON.parse(body) as T,
        });
      });
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/**
 * A GET over HTTP/1.0 (node:http speaks only 1.1), header lines as given; the server closes the
 * connection after the response, which ends it. Returns the status and the body.
 */
export function requestHttp10(port: number, path: string, headerLines: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write([`GET ${path} HTTP/1.0`, `Host: 127.0.0.1:${port}`, ...headerLines, "", ""].join("\r\n"));
    });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.setTimeout(15_000, () => socket.destroy(new Error(`HTTP/1.0 request to ${path} timed out`)));
    socket.on("end", () => {
      const raw = Buffer.concat(chunks).toString();
      const split = raw.indexOf("\r\n\r\n");
      const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ status, body: split < 0 ? "" : raw.slice(split + 4) });
    });
  });
}
