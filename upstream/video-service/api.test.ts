import { describe, expect, it } from "vitest";
import { ApiError, validateStart, validateStop } from "./api.ts";
import { backoffDelay, ffmpegArgs, parseStreamUrl, redactUrl } from "./source.ts";

function startError(body: unknown): { message: string; field: string | null; status: number } {
  try {
    validateStart(body, { cwd: "/videos" });
  } catch (err) {
    if (err instanceof ApiError) return { message: err.message, field: err.field, status: err.status };
    throw err;
  }
  throw new Error("validateStart accepted the body");
}

describe("validateStart", () => {
  it("applies the defaults: no drawing, 5 fps", () => {
    const req = validateStart({ stream_url: "rtsp://cam.local:554/live" });
    expect(req).toMatchObject({ streamUrl: "rtsp://cam.local:554/live", enableDrawing: false, fps: 5 });
    expect(req.source).toEqual({ kind: "rtsp", input: "rtsp://cam.local:554/live", key: "rtsp://cam.local:554/live" });
  });

  it("accepts every source form", () => {
    expect(validateStart({ stream_url: "https://example.com/a.mp4", fps: 30, enable_drawing: true }).source.kind).toBe("http");
    expect(validateStart({ stream_url: "file:///data/a%20b.mp4", fps: 1 }).source).toEqual({ kind: "file", input: "file:/data/a b.mp4", key: "/data/a b.mp4" });
    expect(validateStart({ stream_url: "clips/x.mp4" }, { cwd: "/videos" }).source).toEqual({ kind: "file", input: "file:/videos/clips/x.mp4", key: "/videos/clips/x.mp4" });
    expect(validateStart({ stream_url: "/videos/odd:name.mp4", fps: 12.5 }).source.input).toBe("file:/videos/odd:name.mp4");
  });

  it.each([
    [{}, "stream_url", /stream_url is required/],
    [{ stream_url: null }, "stream_url", /required/],
    [{ stream_url: 42 }, "stream_url", /must be a string/],
    [{ stream_url: "   " }, "stream_url", /must not be empty/],
    [{ stream_url: "concat:/etc/passwd|/x" }, "stream_url", /scheme concat: is not supported/],
    [{ stream_url: "ftp://host/a.mp4" }, "stream_url", /scheme ftp: is not supported/],
    [{ stream_url: "http://" }, "stream_url", /not a valid URL|no host/],
    [{ stream_url: "rtsp://cam/\nx" }, "stream_url", /control characters/],
    [{ stream_url: "x".repeat(5000) }, "stream_url", /at most 4096/],
    [{ stream_url: "/a.mp4", fps: 0 }, "fps", /between 1 and 30/],
    [{ stream_url: "/a.mp4", fps: 31 }, "fps", /between 1 and 30/],
    [{ stream_url: "/a.mp4", fps: "5" }, "fps", /must be a number/],
    [{ stream_url: "/a.mp4", enable_drawing: "yes" }, "enable_drawing", /must be a boolean/],
    [{ stream_url: "/a.mp4", colour: "red" }, "colour", /unknown field colour/],
  ])("rejects %j naming the field", (body, field, message) => {
    const err = startError(body);
    expect(err.status).toBe(400);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it.each([null, [], "rtsp://x", 5])("rejects a body that is not an object (%j)", (body) => {
    expect(startError(body)).toEqual({ status: 400, field: null, message: "request body must be a JSON object" });
  });

  it("keeps file sources under the file root when one is set", () => {
    expect(() => validateStart({ stream_url: "/etc/passwd" }, { fileRoot: "/videos" })).toThrow(/must lie under \/videos/);
    expect(() => validateStart({ stream_url: "/videos/../etc/passwd" }, { fileRoot: "/videos" })).toThrow(/must lie under/);
    expect(validateStart({ stream_url: "/videos/a.mp4" }, { fileRoot: "/videos" }).source.key).toBe("/videos/a.mp4");
  });
});

describe("validateStop", () => {
  it("takes a stream_id or a stream_url", () => {
    expect(validateStop({ stream_id: "abc" })).toEqual({ streamId: "abc" });
    expect(validateStop({ stream_url: "/a.mp4" })).toEqual({ streamUrl: "/a.mp4" });
  });

  it.each([
    [{}, /stream_id or stream_url is required/],
    [{ stream_id: "a", stream_url: "b" }, /not both/],
    [{ stream_id: 7 }, /non-empty string/],
    [{ stream_url: "" }, /non-empty string/],
    [{ id: "a" }, /unknown field id/],
  ])("rejects %j", (body, message) => {
    expect(() => validateStop(body)).toThrow(message);
  });
});

describe("source helpers", () => {
  it("hides passwords in URLs", () => {
    expect(redactUrl("rtsp://admin:s3cret@10.0.0.5:554/h264")).toBe("rtsp://admin:***@10.0.0.5:554/h264");
    expect(redactUrl("rtsp://token@cam/x")).toBe("rtsp://token@cam/x");
    expect(redactUrl("/videos/a.mp4")).toBe("/videos/a.mp4");
  });

  it("builds ffmpeg arguments per source kind", () => {
    const rtsp = parseStreamUrl("rtsp://cam/live");
    const file = parseStreamUrl("/v/a.mp4");
    const http = parseStreamUrl("http://h/a.ts");
    if ("error" in rtsp || "error" in file || "error" in http) throw new Error("parse failed");
    const tail = ["-an", "-sn", "-dn", "-vf", "fps=5,scale=320:180", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"];
    expect(ffmpegArgs(rtsp, 5, 320, 180)).toEqual(["-hide_banner", "-loglevel", "error", "-nostdin", "-protocol_whitelist", "rtsp,rtsps,rtp,srtp,tcp,udp,tls", "-rtsp_transport", "tcp", "-timeout", "5000000", "-i", "rtsp://cam/live", ...tail]);
    expect(ffmpegArgs(file, 5, 320, 180)).toEqual(["-hide_banner", "-loglevel", "error", "-nostdin", "-protocol_whitelist", "file", "-re", "-stream_loop", "-1", "-i", "file:/v/a.mp4", ...tail]);
    expect(ffmpegArgs(http, 5, 320, 180).slice(4, 9)).toEqual(["-protocol_whitelist", "http,https,tcp,tls,crypto", "-rw_timeout", "5000000", "-re"]);
  });

  it("backs off exponentially up to the cap", () => {
    const opts = { initialMs: 100, maxMs: 1000, factor: 2 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, opts))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(0)).toBe(500);
    expect(backoffDelay(50)).toBe(15000);
  });
});
