// The web page in headless Chromium (Debian's chromium driven by playwright-core): it connects to
// /ws through the gateway, draws the motion boxes on its canvas, and the screenshot shows them.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway } from "../helpers/gateway.ts";
import { BOX_RGB } from "../../upstream/video-service/draw.ts";
import { decodePng, type DecodedPng } from "../../upstream/video-service/png.ts";
import { startVideoService, type VideoService } from "../../upstream/video-service/server.ts";
import { makeTestVideo, postJson, requireFfmpeg, SQUARE } from "../../upstream/video-service/test-helpers.ts";
import { VIDEO_TEST_KEY, videoGatewayYaml } from "./gateway-config.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let dir: string;
let service: VideoService;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let context: BrowserContext;
let page: Page;

/** Pixels of the box colour in a screenshot of the canvas, with their normalised positions. */
function boxPixels(png: DecodedPng): { count: number; minY: number; maxY: number } {
  let count = 0;
  let minY = 1;
  let maxY = 0;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const i = (y * png.width + x) * 4;
      const near = Math.abs(png.rgba[i] - BOX_RGB[0]) < 40 && Math.abs(png.rgba[i + 1] - BOX_RGB[1]) < 40 && Math.abs(png.rgba[i + 2] - BOX_RGB[2]) < 40;
      if (!near) continue;
      count++;
      minY = Math.min(minY, y / png.height);
      maxY = Math.max(maxY, y / png.height);
    }
  }
  return { count, minY, maxY };
}

async function canvasShot(): Promise<DecodedPng> {
  return decodePng(await page.locator("#view").screenshot());
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the page test needs it (apt-get install -y --no-install-recommends chromium, or set CHROMIUM_PATH)`);
  }
  requireFfmpeg();
  dir = await mkdtemp(join(tmpdir(), "video-page-test-"));
  service = await startVideoService({ port: 0, modelPath: null, log: () => {} });
  gateway = await startGateway({ yaml: videoGatewayYaml(service.port) });
  context = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1000, height: 800 },
  });
  page = await context.newPage();
}, 90_000);

afterAll(async () => {
  await context?.close();
  await gateway?.stop();
  await service?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the web page through the gateway", () => {
  it("without a key the page loads but the gateway refuses its WebSocket", async () => {
    await page.goto(`${gateway.url}/`);
    await page.waitForFunction(() => document.getElementById("conn")?.textContent?.startsWith("closed"), undefined, { timeout: 15_000 });
    expect(await page.locator("#conn").textContent()).toMatch(/API key needed/);
  });

  it("with the key (from ?apikey=) it connects to /ws and names the detector, with nothing drawn before a stream runs", async () => {
    await page.goto(`${gateway.url}/?apikey=${VIDEO_TEST_KEY}`);
    await page.waitForFunction(() => (window as unknown as { videoStats: { detector: string | null } }).videoStats.detector !== null, undefined, { timeout: 15_000 });
    expect(await page.locator("#detector").textContent()).toBe("motion");
    await page.waitForFunction(() => document.getElementById("conn")?.textContent === "open", undefined, { timeout: 15_000 });
    expect(boxPixels(await canvasShot()).count).toBe(0);
  });

  it("draws the moving square's boxes on the canvas", async () => {
    const video = await makeTestVideo(join(dir, "square.mp4"));
    const res = await postJson(`${gateway.url}/api/v1/video/start`, { stream_url: video, fps: 5 }, { apikey: VIDEO_TEST_KEY });
    expect(res.status).toBe(201);
    await page.waitForFunction(() => (window as unknown as { videoStats: { framesWithBoxes: number } }).videoStats.framesWithBoxes >= 3, undefined, { timeout: 20_000 });
    const shot = await canvasShot();
    const green = boxPixels(shot);
    expect(green.count, "box-coloured pixels in the canvas screenshot").toBeGreaterThan(100);
    // Boxes (and their label tags just above) lie in the band the square moves along.
    const labelTag = 20 / 360;
    expect(green.minY).toBeGreaterThanOrEqual((SQUARE.y - 8) / 180 - labelTag);
    expect(green.maxY).toBeLessThanOrEqual((SQUARE.y + SQUARE.size + 8) / 180);
    expect(Number(await page.locator("#boxes").textContent())).toBeGreaterThan(0);
  });
});
