/**
 * Test-side readers for the mock's output, independent of the mock's own code: SSE through
 * eventsource-parser, HTTP/1.1 from a raw socket (to see TCP reads, chunked framing and abrupt
 * closes), and the usage/text a client would extract from each format.
 */
import { connect } from "node:net";
import { createParser, type EventSourceMessage } from "eventsource-parser";

export interface ParsedSse {
  events: EventSourceMessage[];
  comments: string[];
}

/** Parses SSE text, fed in pieces of `pieceSize` characters to exercise the parser's carry-over. */
export function parseSse(text: string, pieceSize = text.length || 1): ParsedSse {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
  });
  for (let i = 0; i < text.length; i += pieceSize) parser.feed(text.slice(i, i + pieceSize));
  return { events, comments };
}

export interface StreamSummary {
  text: string;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  /** Every usage object seen, in order (vLLM continuous usage has one per chunk). */
  usages: Record<string, number>[];
  finish_reason: string | null;
  terminator: string | null;
}

// Parsed JSON from the wire: the readers index it freely and the tests assert the shapes.
type Json = Record<string, any>;

/** What a client reads from an OpenAI-style stream (openai, vllm, sglang; chat or completions). */
export function summariseOpenAiStream(events: readonly EventSourceMessage[]): StreamSummary {
  const summary: StreamSummary = { text: "", prompt_tokens: null, completion_tokens: null, total_tokens: null, usages: [], finish_reason: null, terminator: null };
  for (const event of events) {
    if (event.data === "[DONE]") {
      summary.terminator = "[DONE]";
      continue;
    }
    const chunk = JSON.parse(event.data) as Json;
    for (const choice of (chunk.choices ?? []) as Json[]) {
      summary.text += choice.delta?.content ?? choice.text ?? "";
      if (choice.finish_reason) summary.finish_reason = choice.finish_reason;
    }
    if (chunk.usage) {
      summary.usages.push(chunk.usage);
      summary.prompt_tokens = chunk.usage.prompt_tokens;
      summary.completion_tokens = chunk.usage.completion_tokens;
      summary.total_tokens = chunk.usage.total_tokens;
    }
  }
  return summary;
}

/** What a client reads from an Anthropic Messages stream: prompt = input + cache tokens, completion = last output_tokens. */
export function summariseAnthropicStream(events: readonly EventSourceMessage[]): StreamSummary {
  const summary: StreamSummary = { text: "", prompt_tokens: null, completion_tokens: null, total_tokens: null, usages: [], finish_reason: null, terminator: null };
  for (const event of events) {
    const payload = JSON.parse(event.data) as Json;
    if (payload.type !== event.event) throw new Error(`event name ${event.event} but payload type ${payload.type}`);
    if (event.event === "message_start") {
      const usage = payload.message.usage;
      summary.usages.push(usage);
      summary.prompt_tokens = usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
      summary.completion_tokens = usage.output_tokens;
    } else if (event.event === "content_block_delta") {
      summary.text += payload.delta.text;
    } else if (event.event === "message_delta") {
      summary.usages.push(payload.usage);
      summary.completion_tokens = payload.usage.output_tokens;
      summary.finish_reason = payload.delta.stop_reason;
    } else if (event.event === "message_stop") {
      summary.terminator = "message_stop";
    }
  }
  if (summary.prompt_tokens !== null && summary.completion_tokens !== null) summary.total_tokens = summary.prompt_tokens + summary.completion_tokens;
  return summary;
}

/** What a client reads from Ollama's NDJSON chat stream. */
export function summariseOllamaStream(text: string): StreamSummary & { lines: Json[] } {
  if (!text.endsWith("\n")) throw new Error("NDJSON stream does not end with a newline");
  const lines = text.slice(0, -1).split("\n").map((line) => JSON.parse(line) as Json);
  const summary = { text: "", prompt_tokens: null, completion_tokens: null, total_tokens: null, usages: [], finish_reason: null, terminator: null, lines } as StreamSummary & { lines: Json[] };
  for (const line of lines) {
    summary.text += line.message?.content ?? "";
    if (line.done) {
      summary.prompt_tokens = line.prompt_eval_count;
      summary.completion_tokens = line.eval_count;
      summary.total_tokens = line.prompt_eval_count + line.eval_count;
      summary.finish_reason = line.done_reason;
      summary.terminator = "done";
    }
  }
  return summary;
}

export interface RawRead {
  at: number;
  bytes: Buffer;
}

export interface RawExchange {
  reads: RawRead[];
  /** When the request was written (performance.now()). */
  sentAt: number;
  /** When the connection closed, if it did. */
  closedAt: number | null;
}

export interface RawClient {
  done: Promise<RawExchange>;
  reads: RawRead[];
  /** Closes the connection from the client side (an abort). */
  destroy(): void;
  /** Resolves once the bytes received so far contain `needle`. */
  waitFor(needle: string, timeoutMs?: number): Promise<void>;
}

/** Sends one HTTP/1.1 request on a fresh TCP connection and records every read as it arrives. */
export function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body: string): RawClient {
  const socket = connect(port, "127.0.0.1");
  const reads: RawRead[] = [];
  const watchers: (() => void)[] = [];
  const bytes = Buffer.from(body, "utf8");
  const head =
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\nContent-Length: ${bytes.length}\r\n` +
    Object.entries({ "content-type": "application/json", ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("") +
    "\r\n";
  let sentAt = 0;
  socket.setNoDelay(true);
  socket.on("connect", () => {
    sentAt = performance.now();
    socket.write(Buffer.concat([Buffer.from(head, "latin1"), bytes]));
  });
  socket.on("data", (chunk: Buffer) => {
    reads.push({ at: performance.now(), bytes: chunk });
    for (const watch of [...watchers]) watch();
  });
  const done = new Promise<RawExchange>((resolve) => {
    socket.on("close", () => {
      resolve({ reads, sentAt, closedAt: performance.now() });
      for (const watch of [...watchers]) watch();
    });
    socket.on("error", () => undefined);
  });
  return {
    done,
    reads,
    destroy: () => socket.destroy(),
    waitFor(needle: string, timeoutMs = 5_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (Buffer.concat(reads.map((r) => r.bytes)).includes(needle)) {
            clearTimeout(timer);
            watchers.splice(watchers.indexOf(check), 1);
            resolve();
          } else if (socket.destroyed) {
            clearTimeout(timer);
            watchers.splice(watchers.indexOf(check), 1);
            reject(new Error(`connection closed before ${JSON.stringify(needle)} arrived`));
          }
        };
        const timer = setTimeout(() => {
          watchers.splice(watchers.indexOf(check), 1);
          reject(new Error(`${JSON.stringify(needle)} did not arrive within ${timeoutMs} ms`));
        }, timeoutMs);
        watchers.push(check);
        check();
      });
    },
  };
}

export interface ParsedHttpResponse {
  status: number;
  headers: Record<string, string>;
  /** The de-chunked body. */
  body: Buffer;
  /** Whether the chunked body ended with its zero-size last chunk (a complete response). */
  complete: boolean;
  /** For each TCP read, how many body bytes were available once it arrived (a read boundary in body offsets). */
  bodyOffsetsAtReads: number[];
  /** When the first body byte arrived (performance.now()), null when none did. */
  firstBodyByteAt: number | null;
  headersAt: number | null;
  /** Arrival time of each body byte range, per read that carried body bytes. */
  bodyReads: { at: number; from: number; to: number }[];
}

/** Parses a raw HTTP/1.1 response (chunked or Content-Length) and maps TCP reads onto body offsets. */
export function parseHttpResponse(reads: readonly RawRead[]): ParsedHttpResponse {
  const raw = Buffer.concat(reads.map((r) => r.bytes));
  const readEnds: number[] = [];
  let acc = 0;
  for (const r of reads) readEnds.push((acc += r.bytes.length));
  const headerEnd = raw.indexOf("\r\n\r\n");
  if (headerEnd < 0) throw new Error("no complete response head");
  const headLines = raw.subarray(0, headerEnd).toString("latin1").split("\r\n");
  const status = Number(headLines[0].split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of headLines.slice(1)) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  // Map raw offsets to body offsets: segments [rawStart, rawEnd) -> body [bodyStart, ...).
  const segments: { rawStart: number; rawEnd: number; bodyStart: number }[] = [];
  const parts: Buffer[] = [];
  let complete = false;
  let pos = headerEnd + 4;
  let bodyLength = 0;
  if (headers["transfer-encoding"]?.includes("chunked")) {
    while (pos < raw.length) {
      const lineEnd = raw.indexOf("\r\n", pos);
      if (lineEnd < 0) break;
      const size = parseInt(raw.subarray(pos, lineEnd).toString("latin1"), 16);
      if (size === 0) {
        complete = raw.indexOf("\r\n", lineEnd + 2) === lineEnd + 2;
        break;
      }
      const dataStart = lineEnd + 2;
      const dataEnd = Math.min(dataStart + size, raw.length);
      segments.push({ rawStart: dataStart, rawEnd: dataEnd, bodyStart: bodyLength });
      parts.push(raw.subarray(dataStart, dataEnd));
      bodyLength += dataEnd - dataStart;
      if (dataEnd < dataStart + size) break;
      pos = dataEnd + 2;
    }
  } else {
    const length = Number(headers["content-length"] ?? raw.length - pos);
    segments.push({ rawStart: pos, rawEnd: raw.length, bodyStart: 0 });
    parts.push(raw.subarray(pos));
    bodyLength = raw.length - pos;
    complete = bodyLength === length;
  }
  const bodyOffsetAt = (rawOffset: number): number => {
    let offset = 0;
    for (const s of segments) {
      if (rawOffset >= s.rawEnd) offset = s.bodyStart + (s.rawEnd - s.rawStart);
      else if (rawOffset > s.rawStart) return s.bodyStart + (rawOffset - s.rawStart);
      else break;
    }
    return offset;
  };
  const bodyOffsetsAtReads = readEnds.map(bodyOffsetAt);
  const bodyReads: { at: number; from: number; to: number }[] = [];
  let previous = 0;
  let headersAt: number | null = null;
  reads.forEach((r, i) => {
    if (headersAt === null && readEnds[i] >= headerEnd + 4) headersAt = r.at;
    const to = bodyOffsetsAtReads[i];
    if (to > previous) bodyReads.push({ at: r.at, from: previous, to });
    previous = to;
  });
  return {
    status,
    headers,
    body: Buffer.concat(parts),
    complete,
    bodyOffsetsAtReads,
    firstBodyByteAt: bodyReads[0]?.at ?? null,
    headersAt,
    bodyReads,
  };
}

/** Whether `offset` falls inside a multi-byte UTF-8 character of `bytes` (the byte there is a continuation byte). */
export function splitsUtf8Character(bytes: Buffer, offset: number): boolean {
  return offset > 0 && offset < bytes.length && (bytes[offset] & 0xc0) === 0x80;
}
