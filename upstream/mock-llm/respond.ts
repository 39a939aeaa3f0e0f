/**
 * The answer to a valid completion request, streamed or whole, with the timing and mid-response
 * faults of its options (abort_after_tokens, stall_after_tokens, delays).
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { Exchange } from "./exchange.ts";
import type { Flavor, ResponseContext } from "./flavors/index.ts";
import type { MockOptions } from "./faults.ts";
import { sleep, Wire } from "./wire.ts";

export async function streamResponse(ex: Exchange, flavor: Flavor, ctx: ResponseContext, options: MockOptions): Promise<void> {
  const framing = flavor.stream(ctx);
  await sleep(options.headerDelayMs, ex.signal);
  if (ex.closed) return;
  const headers: OutgoingHttpHeaders = { "content-type": framing.contentType, "cache-control": "no-cache" };
  if (options.gzip) {
    headers["content-encoding"] = "gzip";
    headers.vary = "Accept-Encoding";
  }
  ex.writeHead(200, headers);
  ex.res.flushHeaders();
  const wire = new Wire(ex.res, options, ex.signal, framing.sse);
  ex.wire = wire;

  await sleep(options.ttftMs, ex.signal);
  const total = ctx.plan.completionTokens;
  const faults: StreamFaults = {
    abortAt: options.abortAfterTokens === undefined ? undefined : Math.min(options.abortAfterTokens, total),
    stallAt: options.stallAfterTokens === undefined ? undefined : Math.min(options.stallAfterTokens, total),
  };

  for (const event of framing.open()) await wire.send(event);
  if (await endedByFault(ex, wire, faults)) return;
  const pieces = ctx.plan.pieces;
  for (let i = 0; i < pieces.length; i++) {
    if (i > 0) await sleep(options.tokenDelayMs, ex.signal);
    if (ex.closed) return;
    const tokensAfter = ex.tokensSent + countPieceTokens(pieces[i]);
    for (const event of framing.token(i, pieces[i], tokensAfter)) await wire.send(event);
    ex.tokensSent = tokensAfter;
    if (await endedByFault(ex, wire, faults)) return;
  }
  for (const event of framing.close()) await wire.send(event);
  if (ex.closed) return;
  ex.usageSent = framing.closeCarriesUsage;
  ex.record("completed");
  await wire.end();
}

export async function bodyResponse(ex: Exchange, flavor: Flavor, ctx: ResponseContext, options: MockOptions): Promise<void> {
  const generation = options.ttftMs + options.tokenDelayMs * Math.max(0, ctx.plan.pieces.length - 1);
  await sleep(options.headerDelayMs + generation, ex.signal);
  if (ex.closed) return;
  if (options.abortAfterTokens !== undefined) {
    // A non-streamed answer has nothing to cut mid-way: the connection drops before the headers.
    ex.record("aborted_by_fault");
    ex.res.socket?.destroy();
    ex.res.destroy();
    return;
  }
  if (options.stallAfterTokens !== undefined) {
    await ex.untilClosed();
    return;
  }
  ex.usageSent = true;
  await ex.sendJson(200, flavor.body(ctx), { "content-type": "application/json" }, options, () => {
    ex.tokensSent = ctx.plan.completionTokens;
  });
}

/** Token counts at which a stream is cut or stalls (capped at the completion's length). */
interface StreamFaults {
  abortAt: number | undefined;
  stallAt: number | undefined;
}

/** After each send: true when the stream ends here, because the client left or a fault ended it. */
async function endedByFault(ex: Exchange, wire: Wire, faults: StreamFaults): Promise<boolean> {
  if (ex.closed) return true;
  if (faults.abortAt !== undefined && ex.tokensSent >= faults.abortAt) {
    ex.record("aborted_by_fault");
    await wire.cut();
    return true;
  }
  if (faults.stallAt !== undefined && ex.tokensSent >= faults.stallAt) {
    // Nothing more is sent; the close handler records the client's departure.
    await ex.untilClosed();
    return true;
  }
  return false;
}

function countPieceTokens(piece: string): number {
  // A piece is one token unless it is whitespace only (see tokenPieces).
  return piece.trim().length === 0 ? 0 : 1;
}
