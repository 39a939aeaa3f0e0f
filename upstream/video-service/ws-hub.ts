import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";

/** The part of a ws WebSocket the hub's fan-out uses (tests pass fakes). */
export interface Sink {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close?(code: number, reason: string): void;
}

const OPEN = 1;

export interface HubClient {
  id: number;
  sink: Sink;
  /** null: every stream. */
  streamId: string | null;
  sent: number;
  dropped: number;
  remote: string;
}

export type ClientMessage = { type: "subscribe"; streamId: string | null } | { type: "ping" };

/** Parses one text message from a browser; returns an error message for anything else. */
export function parseClientMessage(text: string): ClientMessage | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: "message is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "message must be a JSON object" };
  const msg = value as Record<string, unknown>;
  if (msg.type === "ping") return { type: "ping" };
  if (msg.type === "unsubscribe") return { type: "subscribe", streamId: null };
  if (msg.type !== "subscribe") return { error: 'type must be "subscribe", "unsubscribe" or "ping"' };
  const id = msg.stream_id;
  if (id === undefined || id === null || id === "" || id === "*") return { type: "subscribe", streamId: null };
  if (typeof id !== "string" || id.length > 128) return { error: "stream_id must be a string" };
  return { type: "subscribe", streamId: id };
}

export interface HubOptions {
  /** A client with more than this queued is skipped for the frame (the frame is dropped for it). */
  maxBufferedBytes?: number;
  heartbeatMs?: number;
}

/**
 * Fans detection messages out to WebSocket clients. A slow client gets frames
 * dropped while its send queue is above the limit, so memory per client stays
 * bounded by that limit plus one message.
 */
export class WsHub {
  readonly clients = new Set<HubClient>();
  droppedTotal = 0;
  readonly droppedByStream = new Map<string, number>();
  private nextId = 1;
  private readonly maxBuffered: number;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly alive = new WeakMap<WebSocket, boolean>();

  constructor(private readonly options: HubOptions = {}) {
    this.maxBuffered = options.maxBufferedBytes ?? 256 * 1024;
  }

  add(sink: Sink, streamId: string | null, remote = ""): HubClient {
    const client: HubClient = { id: this.nextId++, sink, streamId, sent: 0, dropped: 0, remote };
    this.clients.add(client);
    return client;
  }

  remove(client: HubClient): void {
    this.clients.delete(client);
  }

  /** Sends to every open client subscribed to streamId (or to all streams); serialises once. */
  broadcast(streamId: string, message: object): { sent: number; dropped: number } {
    let text: string | null = null;
    let sent = 0;
    let dropped = 0;
    for (const client of this.clients) {
      if (client.streamId !== null && client.streamId !== streamId) continue;
      if (client.sink.readyState !== OPEN) continue;
      if (client.sink.bufferedAmount > this.maxBuffered) {
        client.dropped++;
        dropped++;
        continue;
      }
      text ??= JSON.stringify(message);
      client.sink.send(text);
      client.sent++;
      sent++;
    }
    if (dropped > 0) {
      this.droppedTotal += dropped;
      this.droppedByStream.set(streamId, (this.droppedByStream.get(streamId) ?? 0) + dropped);
    }
    return { sent, dropped };
  }

  /** Control messages (hello, stream state) go out regardless of the frame budget, but only to open clients. */
  notify(streamId: string | null, message: object): void {
    const text = JSON.stringify(message);
    for (const client of this.clients) {
      if (streamId !== null && client.streamId !== null && client.streamId !== streamId) continue;
      if (client.sink.readyState === OPEN) client.sink.send(text);
    }
  }

  /** Ends the connections of clients subscribed to exactly this stream (they have nothing left to receive). */
  closeSubscribers(streamId: string, code = 1000, reason = "stream stopped"): number {
    let closed = 0;
    for (const client of this.clients) {
      if (client.streamId !== streamId || typeof client.sink.close !== "function") continue;
      client.sink.close(code, reason);
      this.remove(client);
      closed++;
    }
    return closed;
  }

  /** Wires a ws connection: subscribe messages, heartbeat, cleanup on close. */
  attach(ws: WebSocket, req: IncomingMessage, streamId: string | null, hello: object): HubClient {
    const client = this.add(ws, streamId, req.socket.remoteAddress ?? "");
    this.alive.set(ws, true);
    ws.on("pong", () => this.alive.set(ws, true));
    ws.on("message", (data, isBinary) => {
      const parsed = isBinary ? { error: "binary messages are not accepted" } : parseClientMessage(data.toString());
      if ("error" in parsed) {
        ws.send(JSON.stringify({ type: "error", error: { message: parsed.error } }));
      } else if (parsed.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else {
        client.streamId = parsed.streamId;
        ws.send(JSON.stringify({ type: "subscribed", stream_id: parsed.streamId }));
      }
    });
    ws.on("close", () => this.remove(client));
    ws.on("error", () => this.remove(client));
    ws.send(JSON.stringify(hello));
    this.startHeartbeat();
    return client;
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    // Pings keep idle connections open through proxies (Kong's 60 s read timeout) and find dead peers.
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) {
        const ws = client.sink as WebSocket;
        if (typeof ws.ping !== "function") continue;
        if (this.alive.get(ws) === false) {
          ws.terminate();
          this.remove(client);
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }, this.options.heartbeatMs ?? 25_000);
    this.heartbeat.unref();
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const client of this.clients) {
      const ws = client.sink as WebSocket;
      if (typeof ws.close !== "function") continue;
      ws.close(1001, "service stopping");
      // A peer that never answers the close frame must not hold the process open.
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    this.clients.clear();
  }
}
