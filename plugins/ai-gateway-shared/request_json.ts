/**
 * The JSON request body decoded once per request, for every plugin of the request that needs
 * it (prompt-guard, token-rate-limiting, ...): a 100 KB prompt is then parsed once, not once
 * per plugin.
 *
 *   const [value, err] = decodeRequestJson(raw)   // raw from kong.request.get_raw_body(...)
 *
 * The result is kept in kong.ctx.shared under SHARED_KEY together with the raw text it came
 * from, and reused only for the same raw text: LuaJIT interns strings, so that comparison is a
 * pointer compare, and a plugin that rewrote the body in between gets a fresh decode. The
 * decoded table is shared: treat it as read-only.
 */
import * as cjson from "cjson.safe";

export const SHARED_KEY = "ai_gateway_request_json";

export interface DecodeCache {
  raw?: string;
  value?: unknown;
  err?: string;
}

/** cjson.safe.decode through `cache` (pure: busted passes its own table). */
export function decodeCached(cache: DecodeCache, raw: string): LuaMultiReturn<[unknown, string | undefined]> {
  if (cache.raw !== raw) {
    const [value, err] = cjson.decode(raw);
    cache.raw = raw;
    cache.value = value;
    cache.err = err;
  }
  return $multi(cache.value, cache.err);
}

/** decodeCached with the request's kong.ctx.shared entry (any phase that has kong.ctx). */
export function decodeRequestJson(raw: string): LuaMultiReturn<[unknown, string | undefined]> {
  let cache = kong.ctx.shared[SHARED_KEY] as DecodeCache | undefined;
  if (cache === undefined) {
    cache = {};
    kong.ctx.shared[SHARED_KEY] = cache;
  }
  return decodeCached(cache, raw);
}

/** The request body as a plugin before this one decoded it (undefined when none did). */
export function decodedRequestJson(): unknown {
  const cache = kong.ctx.shared[SHARED_KEY] as DecodeCache | undefined;
  return cache === undefined ? undefined : cache.value;
}
