import { execFileSync } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOX_RGB } from "./draw.ts";
import { decodePng } from "./png.ts";
import { startVideoService, type VideoService } from "./server.ts";
import type { Box } from "./types.ts";
import { Collector, makeNoiseVideo, makeTestVideo, postJson, requireFfmpeg, SQUARE, waitFor, type WsMessage } from "./test-helpers.ts";

// The square's position is known to a few source frames (ffmpeg's fps filter picks the nearest frame).
const TOLERANCE = 8;
const BACKOFF = { initialMs: 200, maxMs: 800, factor: 2 };

let dir: string;
let video: string;
let videoTs: string;
let service: VideoService;
let api: string;
let wsUrl: string;
const servers: Server[] = [];
const collectors: Collector[] = [];

async function open(path = "/ws"): Promise<Collector> {
  const c = await Collector.open(`${wsUrl}${path}`);
  collectors.push(c);
  return c;
}

async function status(): Promise<any> {
  return (await fetch(`${api}/status`)).json();
}

async function streamStatus(id: string): Promise<any> {
  return (await status()).streams.find((s: { stream_id: string }) => s.stream_id === id);
}

/** A local HTTP server for the .ts video; `behave` decides per request (counted from 1). */
async function videoServer(behave: (n: number, res: import("node:http").ServerResponse, body: Buffer) => void): Promise<{ url: string; times: number[] }> {
  const body = await readFile(videoTs);
  const times: number[] = [];
  const server = createServer((req, res) => {
    times.push(Date.now());
    behave(times.length, res, body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/video.ts`, times };
}

beforeAll(async () => {
  requireFfmpeg();
  dir = await mkdtemp(join(tmpdir(), "video-service-test-"));
  video = await makeTestVideo(join(dir, "square.mp4"));
  videoTs = await makeTestVideo(join(dir, "square.ts"));
  service = await startVideoService({ port: 0, modelPath: null, backoff: BACKOFF, stallTimeoutMs: 3000, log: () => {} });
  api = `${service.url}/api/v1/video`;
  wsUrl = service.url.replace("http:", "ws:");
});

afterAll(async () => {
  await Promise.all(collectors.map((c) => c.close()));
  await service?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("analysing a generated video", () => {
  let streamId: string;
  let watcher: Collector;

  it("starts the stream: 201 with its id, the motion detector and the WebSocket path", async () => {
    watcher = await open();
    expect(watcher.messages[0]).toMatchObject({ type: "hello", detector: "motion" });
    const res = await postJson(`${api}/start`, { stream_url: video, fps: 10 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ stream_url: video, source_kind: "file", fps: 10, enable_drawing: false, detector: "motion", reconnects: 0 });
    streamId = res.body.stream_id;
    expect(streamId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.ws_path).toBe(`/ws?stream_id=${streamId}`);
  });

  it("finds the moving square, and only it, in every analysed frame", async () => {
    const frames = await waitFor("2 s of analysed frames", () => {
      const d = watcher.detections(streamId);
      return d.length > 0 && (d[d.length - 1].pts as number) >= 2 && d;
    });
    expect(frames[0]).toMatchObject({ type: "detections", stream_id: streamId, frame: 0, pts: 0, detector: "motion", width: 320, height: 180, boxes: [] });
    let checked = 0;
    for (let i = 1; i < frames.length; i++) {
      const prev = frames[i - 1].pts as number;
      const now = frames[i].pts as number;
      if (now > 3.6) break; // the file loops at 4 s
      const boxes = frames[i].boxes as Box[];
      expect(boxes.length, `frame at ${now}s has boxes`).toBeGreaterThan(0);
      // Differencing sees the square where it was and where it is now.
      const left = SQUARE.x(prev) - TOLERANCE;
      const right = SQUARE.x(now) + SQUARE.size + TOLERANCE;
      for (const b of boxes) {
        expect(b.label).toBe("motion");
        expect(b.score).toBeGreaterThan(0);
        expect(b.x, `box ${JSON.stringify(b)} at ${now}s`).toBeGreaterThanOrEqual(left);
        expect(b.x + b.w).toBeLessThanOrEqual(right);
        expect(b.y).toBeGreaterThanOrEqual(SQUARE.y - TOLERANCE);
        expect(b.y + b.h).toBeLessThanOrEqual(SQUARE.y + SQUARE.size + TOLERANCE);
      }
      expect(Math.min(...boxes.map((b) => b.x))).toBeLessThanOrEqual(SQUARE.x(prev) + TOLERANCE);
      expect(Math.max(...boxes.map((b) => b.x + b.w))).toBeGreaterThanOrEqual(SQUARE.x(now) + SQUARE.size - TOLERANCE);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it("refuses a second analysis of the same file, in any spelling, with 409", async () => {
    for (const url of [video, `file://${video}`, ` ${video} `]) {
      const res = await postJson(`${api}/start`, { stream_url: url });
      expect(res.status).toBe(409);
      expect(res.body.error).toEqual({ message: "stream_url is already being analysed", field: "stream_url", stream_id: streamId });
    }
  });

  it("reports the stream in /status", async () => {
    const s = await status();
    expect(s.detector).toMatchObject({ name: "motion", reason: "motion detector requested", frame_width: 320, frame_height: 180 });
    const mine = s.streams.find((x: { stream_id: string }) => x.stream_id === streamId);
    expect(mine).toMatchObject({ state: "running", reconnects: 0, last_error: null, detector: "motion", messages_dropped: 0 });
    expect(mine.frames_analysed).toBeGreaterThan(10);
    expect(s.websocket.clients.length).toBeGreaterThanOrEqual(1);
  });

  it("sends each client only the stream it subscribed to, by query or by message", async () => {
    const other = join(dir, "other.mp4");
    await copyFile(video, other);
    const res = await postJson(`${api}/start`, { stream_url: other, fps: 5, enable_drawing: true });
    expect(res.status).toBe(201);
    const otherId = res.body.stream_id as string;
    const byQuery = await open(`/ws?stream_id=${streamId}`);
    const byMessage = await open();
    byMessage.ws.send(JSON.stringify({ type: "subscribe", stream_id: otherId }));
    await waitFor("subscription ack", () => byMessage.messages.find((m) => m.type === "subscribed"));
    const ackAt = byMessage.messages.findIndex((m) => m.type === "subscribed");
    await waitFor("frames of both streams", () => byQuery.detections().length >= 5 && byMessage.detections().length >= 5);
    expect(new Set(byQuery.detections().map((m) => m.stream_id))).toEqual(new Set([streamId]));
    expect(new Set(byMessage.messages.slice(ackAt).filter((m) => m.type === "detections").map((m) => m.stream_id))).toEqual(new Set([otherId]));

    // enable_drawing: the frame comes along with the boxes drawn in.
    const drawn = await waitFor("a drawn frame with boxes", () => byMessage.detections(otherId).find((m) => (m.boxes as Box[]).length > 0));
    const png = decodePng(Buffer.from((drawn.image as string).replace(/^data:image\/png;base64,/, ""), "base64"));
    expect([png.width, png.height]).toEqual([320, 180]);
    const pixel = (x: number, y: number) => Array.from(png.rgba.subarray((y * 320 + x) * 4, (y * 320 + x) * 4 + 3));
    const box = (drawn.boxes as Box[])[0];
    expect(pixel(box.x, box.y)).toEqual([...BOX_RGB]);
    expect(pixel(box.x + box.w - 1, box.y + box.h - 1)).toEqual([...BOX_RGB]);
    // The white square itself is in the frame, inside the band it moves along.
    expect(pixel(Math.round(SQUARE.x(drawn.pts as number)) + 20, SQUARE.y + 20).every((v) => v > 200)).toBe(true);
    expect(byQuery.detections().every((m) => m.image === undefined)).toBe(true);

    const stop = await postJson(`${api}/stop`, { stream_url: other });
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({ stream_id: otherId, stopped: true, state: "stopped" });
  });

  it("stops a stream: no more frames, its subscribers closed, gone from /status, and the URL can be started again", async () => {
    const subscriber = await open(`/ws?stream_id=${streamId}`);
    const res = await postJson(`${api}/stop`, { stream_id: streamId });
    expect(await subscriber.closed).toBe(1000);
    expect(watcher.closeCode).toBeNull();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ stream_id: streamId, stopped: true, state: "stopped" });
    expect(await streamStatus(streamId)).toBeUndefined();
    const count = watcher.detections(streamId).length;
    await new Promise((r) => setTimeout(r, 600));
    expect(watcher.detections(streamId).length).toBe(count);
    expect((await postJson(`${api}/stop`, { stream_id: streamId })).status).toBe(404);

    const again = await postJson(`${api}/start`, { stream_url: `file://${video}` });
    expect(again.status).toBe(201);
    expect((await postJson(`${api}/stop`, { stream_url: video })).status).toBe(200);
  });
});

describe("control API errors", () => {
  it.each([
    ["not json", 400, null, /not valid JSON/],
    [{}, 400, "stream_url", /required/],
    [{ stream_url: "gopher://x" }, 400, "stream_url", /not supported/],
    [{ stream_url: "/x.mp4", fps: 60 }, 400, "fps", /between 1 and 30/],
  ])("POST /start %j -> %i", async (body, code, field, message) => {
    const res = await postJson(`${api}/start`, body);
    expect(res.status).toBe(code);
    expect(res.body.error.field).toBe(field);
    expect(res.body.error.message).toMatch(message);
  });

  it("answers 413 for a huge body, 404 and 405 as JSON", async () => {
    const big = await postJson(`${api}/start`, JSON.stringify({ stream_url: "x".repeat(70_000) }));
    expect(big.status).toBe(413);
    const missing = await fetch(`${api}/nothing`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/application\/json/);
    expect((await missing.json()).error.message).toMatch(/no route for GET \/api\/v1\/video\/nothing/);
    const wrong = await fetch(`${api}/start`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect((await fetch(`${api}/status`, { method: "DELETE" })).status).toBe(405);
  });

  it("serves /health (both paths), the page and its script", async () => {
    for (const path of ["/health", "/api/v1/video/health"]) {
      const res = await fetch(`${service.url}${path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: "ok", detector: "motion" });
    }
    const page = await fetch(`${service.url}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain('<canvas id="view"');
    const script = await fetch(`${service.url}/app.js`);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect(await script.text()).toContain("new WebSocket(");
  });
});

describe("WebSocket endpoint", () => {
  it("refuses upgrades elsewhere than /ws with 404", async () => {
    await expect(Collector.open(`${wsUrl}/nope`)).rejects.toThrow(/HTTP 404/);
  });

  it("answers bad client messages with an error message and keeps the connection", async () => {
    const c = await open();
    c.ws.send("hello?");
    c.ws.send(JSON.stringify({ type: "ping" }));
    await waitFor("pong", () => c.messages.find((m) => m.type === "pong"));
    expect(c.messages.find((m) => m.type === "error")).toEqual({ type: "error", error: { message: "message is not JSON" } });
  });

  it("forgets a client that closes", async () => {
    const before = (await status()).websocket.clients.length;
    const c = await open();
    await waitFor("client listed", async () => (await status()).websocket.clients.length === before + 1);
    expect(await c.close()).toBe(1000);
    await waitFor("client forgotten", async () => (await status()).websocket.clients.length === before);
  });
});

describe("reconnecting to a source", () => {
  it("retries a missing source with exponential backoff, then analyses it once it appears", async () => {
    const source = await videoServer((n, res, body) => {
      if (n <= 4) {
        res.writeHead(404).end();
      } else {
        res.writeHead(200, { "content-type": "video/mp2t", "content-length": body.length }).end(body);
      }
    });
    const watcher = await open();
    const res = await postJson(`${api}/start`, { stream_url: source.url, fps: 5 });
    expect(res.status).toBe(201);
    const id = res.body.stream_id as string;
    const failing = await waitFor("a failed attempt in /status", async () => {
      const s = await streamStatus(id);
      return s.reconnects >= 1 && s;
    });
    expect(failing.last_error).toMatch(/404/);
    expect(["reconnecting", "connecting"]).toContain(failing.state);
    await waitFor("frames after the source appeared", () => watcher.detections(id).length >= 5, 20_000);
    const s = await streamStatus(id);
    expect(s.state).toBe("running");
    expect(s.reconnects).toBe(4);
    // Attempt k+1 waits at least the backoff delay after attempt k fails: 200, 400, 800, 800 ms.
    const gaps = source.times.slice(1, 5).map((t, i) => t - source.times[i]);
    expect(gaps).toHaveLength(4);
    [200, 400, 800, 800].forEach((min, i) => expect(gaps[i], `gap ${i}: ${gaps}`).toBeGreaterThanOrEqual(min - 5));
    expect((await postJson(`${api}/stop`, { stream_id: id })).status).toBe(200);
  }, 40_000);

  it("reconnects when the source drops mid-stream and keeps counting frames", async () => {
    const source = await videoServer((n, res, body) => {
      res.writeHead(200, { "content-type": "video/mp2t", "content-length": body.length });
      if (n === 1) {
        // Half the video, then the connection dies.
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      } else {
        res.end(body);
      }
    });
    const watcher = await open();
    const res = await postJson(`${api}/start`, { stream_url: source.url, fps: 5 });
    const id = res.body.stream_id as string;
    await waitFor("frames from the second connection", () => source.times.length >= 2 && watcher.detections(id).some((m, i, all) => i > 0 && (m.pts as number) < (all[i - 1].pts as number)), 20_000);
    const frames = watcher.detections(id);
    const restart = frames.findIndex((m, i) => i > 0 && (m.pts as number) < (frames[i - 1].pts as number));
    expect(restart).toBeGreaterThan(1);
    // Frame numbers run on across the reconnect; pts starts again with the new connection.
    expect(frames[restart].frame as number).toBeGreaterThan(frames[restart - 1].frame as number);
    const s = await streamStatus(id);
    expect(s.reconnects).toBeGreaterThanOrEqual(1);
    expect(s.last_error).toBeTruthy();
    const stream = watcher.messages.filter((m: WsMessage) => m.type === "stream" && m.stream_id === id).map((m) => m.state);
    expect(stream).toContain("reconnecting");
    expect((await postJson(`${api}/stop`, { stream_id: id })).status).toBe(200);
  }, 40_000);

  it("restarts ffmpeg when a source stops sending", async () => {
    const source = await videoServer((_n, res, body) => {
      // Headers and a little data, then silence on an open connection.
      res.writeHead(200, { "content-type": "video/mp2t", "content-length": body.length });
      res.write(body.subarray(0, 188 * 4));
    });
    const res = await postJson(`${api}/start`, { stream_url: source.url, fps: 5 });
    const id = res.body.stream_id as string;
    const s = await waitFor("a stall restart", async () => {
      const st = await streamStatus(id);
      return st.reconnects >= 1 && st;
    }, 15_000);
    expect(s.last_error).toMatch(/no frame for 3s/);
    expect(source.times.length).toBeGreaterThanOrEqual(1);
    expect((await postJson(`${api}/stop`, { stream_id: id })).status).toBe(200);
  }, 30_000);
});

describe("backpressure", () => {
  it("drops frames for a client that stops reading, keeps its queue bounded, and serves the others in full", async () => {
    const noise = await makeNoiseVideo(join(dir, "noise.mp4"));
    const fast = await open();
    // A client that completes the handshake and then never reads: the kernel buffers fill, then ws queues.
    const slow = connect(service.port, "127.0.0.1");
    slow.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await new Promise<void>((resolve) => slow.once("data", () => resolve()));
    slow.pause();
    try {
      const res = await postJson(`${api}/start`, { stream_url: noise, fps: 30, enable_drawing: true });
      expect(res.status).toBe(201);
      const id = res.body.stream_id as string;
      const st = await waitFor("drops for the slow client", async () => {
        const s = await status();
        const stalled = s.websocket.clients.find((c: { dropped: number }) => c.dropped > 0);
        return stalled && s.streams.find((x: { stream_id: string }) => x.stream_id === id).messages_dropped >= 10 && { s, stalled };
      }, 30_000, 200);
      const message = (fast.detections(id)[0].image as string).length;
      // One frame over the 256 KiB limit at most: it is checked before each send.
      expect(st.stalled.buffered_bytes).toBeLessThanOrEqual(256 * 1024 + 2 * message);
      const others = st.s.websocket.clients.filter((c: { id: number }) => c.id !== st.stalled.id);
      expect(others.every((c: { dropped: number }) => c.dropped === 0)).toBe(true);
      const frames = fast.detections(id).map((m) => m.frame as number);
      expect(frames.length).toBeGreaterThan(20);
      expect(frames.every((f, i) => i === 0 || f > frames[i - 1])).toBe(true);
      expect((await postJson(`${api}/stop`, { stream_id: id })).status).toBe(200);
    } finally {
      slow.destroy();
    }
  }, 60_000);
});

describe("shutdown", () => {
  it("closes WebSocket clients with 1001 and kills ffmpeg when the service closes", async () => {
    const own = await startVideoService({ port: 0, modelPath: null, log: () => {} });
    const c = await Collector.open(`${own.url.replace("http:", "ws:")}/ws`);
    const res = await postJson(`${own.url}/api/v1/video/start`, { stream_url: video, fps: 5 });
    expect(res.status).toBe(201);
    await waitFor("a frame", () => c.detections().length > 0);
    const ffmpegChildren = () =>
      execFileSync("ps", ["-o", "comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
        .split("\n")
        .filter((name) => name.trim() === "ffmpeg").length;
    expect(ffmpegChildren()).toBeGreaterThanOrEqual(1);
    await own.close();
    expect(await c.closed).toBe(1001);
    expect(own.api.streams.size).toBe(0);
    expect(ffmpegChildren()).toBe(0);
  });
});
