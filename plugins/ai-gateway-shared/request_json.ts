/**
 * The JSON request body decoded once per request for every plugin that needs it. Reused only for
 * the same raw text (interned: a pointer compare), so a rewritten body is decoded afresh. The
 * decoded table is shared: treat it as read-only.
 */
import * as cjson from "cjson.safe";

export const SHARED_KEY = "ai_gateway_request_json";

export interface DecodeCache {
  raw?: string;
  value?: unknown;
  err?: string;
}

export function decodeCached(cache: DecodeCache, raw: string): LuaMultiReturn<[unknown, string | undefined]> {
  if (cache.raw !== raw) {
    const [value, err] = cjson.decode(raw);
    cache.raw = raw;
    cache.value = value;
    cache.err = err;
  }
  return $multi(cache.value, cache.err);
}

export function decodeRequestJson(raw: string): LuaMultiReturn<[unknown, string | undefined]> {
  let cache = kong.ctx.shared[SHARED_KEY] as DecodeCache | undefined;
  if (cache === undefined) {
    cache = {};
    kong.ctx.shared[SHARED_KEY] = cache;
  }
  return decodeCached(cache, raw);
}

/** Undefined when no plugin before this one decoded it. */
export function decodedRequestJson(): unknown {
  const cache = kong.ctx.shared[SHARED_KEY] as DecodeCache | undefined;
  return cache === undefined ? undefined : cache.value;
}
