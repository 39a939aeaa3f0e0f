// The video service behind the local gateway: control API and WebSocket through Kong's routes,
// closes from the client, from the service, and the service going away.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway } from "../helpers/gateway.ts";
import { startVideoService, type VideoService } from "../../upstream/video-service/server.ts";
import { Collector, makeTestVideo, postJson, requireFfmpeg, SQUARE, waitFor } from "../../upstream/video-service/test-helpers.ts";
import { VIDEO_TEST_KEY, videoGatewayYaml } from "./gateway-config.ts";

let dir: string;
let video: string;
let service: VideoService;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let api: string;
let ws: string;
const collectors: Collector[] = [];

/** Opens /ws... through the gateway with the key in the query, as browsers must send it. */
async function open(path: string): Promise<Collector> {
  const c = await Collector.open(`${ws}${path}${path.includes("?") ? "&" : "?"}apikey=${VIDEO_TEST_KEY}`);
  collectors.push(c);
  return c;
}

function post(path: string, body: unknown) {
  return postJson(`${api}${path}`, body, { apikey: VIDEO_TEST_KEY });
}

async function status(): Promise<any> {
  const res = await fetch(`${api}/status`, { headers: { apikey: VIDEO_TEST_KEY } });
  expect(res.status).toBe(200);
  return res.json();
}

beforeAll(async () => {
  requireFfmpeg();
  dir = await mkdtemp(join(tmpdir(), "video-gateway-test-"));
  video = await makeTestVideo(join(dir, "square.mp4"));
  service = await startVideoService({ port: 0, modelPath: null, log: () => {} });
  gateway = await startGateway({ yaml: videoGatewayYaml(service.port) });
  api = `${gateway.url}/api/v1/video`;
  ws = gateway.url.replace(/^http/, "ws");
}, 90_000);

afterAll(async () => {
  await Promise.all(collectors.map((c) => c.close()));
  await gateway?.stop();
  await service?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("video service through the gateway", () => {
  let streamId: string;

  it("needs the API key for the control API and the WebSocket, not for the page", async () => {
    const noKey = await postJson(`${api}/start`, { stream_url: video });
    expect(noKey.status).toBe(401);
    expect(noKey.body).toMatchObject({ message: "No API key found in request" });
    expect((await fetch(`${api}/status`, { headers: { apikey: "wrong" } })).status).toBe(401);
    expect((await fetch(`${api}/status`)).status).toBe(401);
    await expect(Collector.open(`${ws}/ws`)).rejects.toThrow(/HTTP 401/);
    expect((await fetch(`${gateway.url}/`)).status).toBe(200);
  });

  it("serves the control API: 201, 409, JSON 400s, status and health", async () => {
    const start = await post("/start", { stream_url: video, fps: 10 });
    expect(start.status).toBe(201);
    streamId = start.body.stream_id;
    const again = await post("/start", { stream_url: video });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ field: "stream_url", stream_id: streamId });
    const bad = await post("/start", { stream_url: video, fps: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: { message: "fps must be between 1 and 30", field: "fps" } });
    expect((await status()).streams.map((s: { stream_id: string }) => s.stream_id)).toContain(streamId);
    const health = await fetch(`${api}/health`, { headers: { apikey: VIDEO_TEST_KEY } });
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", detector: "motion" });
  });

  it("carries the WebSocket: hello, then detections of the moving square", async () => {
    const c = await open(`/ws?stream_id=${streamId}`);
    await waitFor("10 detection messages through the gateway", () => c.detections(streamId).length >= 10);
    expect(c.messages[0]).toMatchObject({ type: "hello", detector: "motion", stream_id: streamId });
    const withBoxes = c.detections(streamId).filter((m) => (m.boxes as unknown[]).length > 0);
    expect(withBoxes.length).toBeGreaterThan(5);
    for (const m of withBoxes) {
      for (const b of m.boxes as { y: number; h: number }[]) {
        expect(b.y).toBeGreaterThanOrEqual(SQUARE.y - 8);
        expect(b.y + b.h).toBeLessThanOrEqual(SQUARE.y + SQUARE.size + 8);
      }
    }
    // Client to server through the gateway too.
    c.ws.send(JSON.stringify({ type: "ping" }));
    await waitFor("pong", () => c.messages.find((m) => m.type === "pong"));
  });

  it("client closes: the close handshake completes and the service forgets the client", async () => {
    const before = (await status()).websocket.clients.length;
    const c = await open("/ws");
    await waitFor("client listed", async () => (await status()).websocket.clients.length === before + 1);
    expect(await c.close()).toBe(1000);
    await waitFor("client forgotten", async () => (await status()).websocket.clients.length === before);
  });

  it("service closes: stopping the stream ends its subscribers' connections with 1000", async () => {
    const subscriber = await open(`/ws?stream_id=${streamId}`);
    const watcher = await open("/ws");
    await waitFor("frames", () => subscriber.detections().length > 0);
    expect((await post("/stop", { stream_id: streamId })).status).toBe(200);
    expect(await subscriber.closed).toBe(1000);
    expect(watcher.closeCode).toBeNull();
  });

  it("the service going away closes the client's connection through the gateway", async () => {
    const res = await post("/start", { stream_url: video, fps: 5 });
    expect(res.status).toBe(201);
    const c = await open("/ws");
    await waitFor("frames", () => c.detections().length > 0);
    await service.close();
    const code = await Promise.race([c.closed, new Promise<string>((r) => setTimeout(() => r("still open after 10 s"), 10_000))]);
    // The service says goodbye (1001) and nginx passes the close frame through.
    expect(code).toBe(1001);
  });
});
