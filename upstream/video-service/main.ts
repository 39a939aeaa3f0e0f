import { parseArgs } from "node:util";
import { startVideoService } from "./server.ts";

const USAGE = `usage: video-service [--port N] [--host ADDR] [--model PATH | --no-model] [--ffmpeg PATH] [--file-root DIR] [--max-streams N]
environment: PORT, HOST, RTDETR_MODEL, FFMPEG_PATH, VIDEO_FILE_ROOT`;

function intArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${value}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        host: { type: "string" },
        model: { type: "string" },
        "no-model": { type: "boolean" },
        ffmpeg: { type: "string" },
        "file-root": { type: "string" },
        "max-streams": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const env = process.env;
  const service = await startVideoService({
    port: intArg(values.port ?? env.PORT, "--port") ?? 8090,
    host: values.host ?? env.HOST ?? "127.0.0.1",
    modelPath: values["no-model"] ? null : (values.model ?? env.RTDETR_MODEL ?? undefined),
    ffmpegPath: values.ffmpeg ?? env.FFMPEG_PATH ?? undefined,
    fileRoot: values["file-root"] ?? env.VIDEO_FILE_ROOT ?? null,
    maxStreams: intArg(values["max-streams"], "--max-streams"),
  });
  console.log(`video-service listening on ${service.url}`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`[video-service] ${signal}: stopping streams`);
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  console.error(`[video-service] failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
