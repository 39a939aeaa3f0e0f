/**
 * GET /_mock/requests (the records, optionally waiting for N with ?wait_for=N&timeout_ms=M) and
 * DELETE /_mock/requests (forget them).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendPlain } from "./exchange.ts";
import type { RecordStore } from "./records.ts";

const DEFAULT_WAIT_TIMEOUT_MS = 5_000;
const MAX_WAIT_TIMEOUT_MS = 120_000;

export async function serveRecords(store: RecordStore, req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
  req.resume();
  if (method === "DELETE") {
    const cleared = store.list().length;
    store.clear();
    sendPlain(res, 200, { cleared });
    return;
  }
  if (method !== "GET") {
    sendPlain(res, 405, { error: "use GET or DELETE" });
    return;
  }
  const waitFor = url.searchParams.get("wait_for");
  if (waitFor === null) {
    sendPlain(res, 200, store.list());
    return;
  }
  const count = Number(waitFor);
  const timeoutParam = url.searchParams.get("timeout_ms");
  const timeout = timeoutParam === null ? DEFAULT_WAIT_TIMEOUT_MS : Number(timeoutParam);
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(timeout) || timeout < 0 || timeout > MAX_WAIT_TIMEOUT_MS) {
    sendPlain(res, 400, { error: `wait_for must be an integer >= 0 and timeout_ms an integer from 0 to ${MAX_WAIT_TIMEOUT_MS}` });
    return;
  }
  const gone = new AbortController();
  res.on("close", () => gone.abort());
  const records = await store.waitFor(count, timeout, gone.signal);
  if (gone.signal.aborted && res.destroyed) return;
  sendPlain(res, 200, records, { "x-mock-wait-satisfied": String(records.length >= count) });
}
