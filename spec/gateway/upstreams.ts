// Small real HTTP upstreams for the gateway tests, each on a free port of 127.0.0.1.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Upstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export async function startUpstream(handler: Handler): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The JSON body startEchoUpstream answers with. */
export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Answers with JSON describing the request it received (method, url, headers, body). */
export function startEchoUpstream(): Promise<Upstream> {
  return startUpstream((req, res, body) => {
    const payload = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body });
    res.writeHead(200, { "content-type": "application/json", "x-upstream": "echo" });
    res.end(payload);
  });
}

/** An SSE stream: first event after `firstMs`, the rest after `restMs`. */
export function startSseUpstream(firstMs: number, restMs: number): Promise<Upstream> {
  return startUpstream((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const t1 = setTimeout(() => res.write("data: first\n\n"), firstMs);
    const t2 = setTimeout(() => {
      res.write("data: second\n\n");
      res.end("data: [DONE]\n\n");
    }, restMs);
    res.on("close", () => {
      clearTimeout(t1);
      clearTimeout(t2);
    });
  });
}

/** Never answers (for read timeouts); the socket is destroyed on close(). */
export function startSilentUpstream(): Promise<Upstream> {
  return startUpstream(() => {
    // keep the request pending
  });
}
