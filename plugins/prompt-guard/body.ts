/**
 * Reading the request body for the guard, and telling the client clearly what is wrong with
 * it: too large (413), not JSON, invalid JSON (400 invalid_json), JSON that is not an object
 * (400 invalid_request_body). Only readRawBody touches Kong; the rest is pure.
 */
import * as cjson from "cjson.safe";
import { requestViolation, type Violation } from "./guard";
import { asObject, type JsonObject } from "../ai-gateway-shared/json";


/** A JSON decoder with cjson.safe's contract: [value] or [undefined, error]. */
export type JsonDecoder = (this: void, raw: string) => LuaMultiReturn<[unknown, string | undefined]>;

/** Methods whose requests usually carry no body: without one there is nothing to check. */
const BODYLESS_METHODS: { [method: string]: boolean } = { GET: true, HEAD: true, OPTIONS: true, DELETE: true, TRACE: true };

export function bodyTooLarge(size: number, max: number): Violation {
  return requestViolation("body_too_large", `request body too large: ${size} bytes, at most ${max} allowed`, 413);
}

/**
 * A violation when the declared Content-Length is over the limit, so that a large upload is
 * refused before it is read at all.
 */
export function checkDeclaredLength(contentLength: string | undefined, max: number): Violation | undefined {
  if (contentLength === undefined) return undefined;
  const size = tonumber(contentLength);
  if (size === undefined || size <= max) return undefined;
  return bodyTooLarge(size, max);
}

/** Maps kong.request.get_raw_body's error: the temp file over the limit is a 413, anything else a 500. */
export function readErrorViolation(err: string, max: number): Violation {
  const [size] = string.match(err, "too big: (%d+)");
  if (size !== undefined) return bodyTooLarge(tonumber(size) ?? max + 1, max);
  return requestViolation("body_unreadable", "the request body could not be read", 500);
}

/**
 * The raw body, read up to max bytes; a body nginx wrote to a temp file (over
 * client_body_buffer_size, 8k in Kong) is read from that file. Returns [body] or
 * [undefined, violation, internal error for the log].
 */
export function readRawBody(max: number): LuaMultiReturn<[string, undefined, undefined] | [undefined, Violation, string | undefined]> {
  const declared = checkDeclaredLength(kong.request.get_header("content-length"), max);
  if (declared !== undefined) return $multi(undefined, declared, undefined);
  const [raw, err] = kong.request.get_raw_body(max);
  if (raw === undefined) return $multi(undefined, readErrorViolation(err, max), err);
  // A body that nginx kept in memory is returned whatever its size (chunked uploads have no
  // Content-Length to check first).
  if (raw.length > max) return $multi(undefined, bodyTooLarge(raw.length, max), undefined);
  return $multi(raw, undefined, undefined);
}

/** True when the request has no body and its method does not need one: nothing to check. */
export function nothingToCheck(method: string, raw: string): boolean {
  return raw === "" && BODYLESS_METHODS[string.upper(method)] === true;
}

/** The first byte of a JSON text that is not JSON whitespace, or undefined. */
function firstSignificant(raw: string): string | undefined {
  const [at] = string.find(raw, "[^ \t\r\n]");
  return at === undefined ? undefined : string.sub(raw, at, at);
}

/**
 * Decodes the body into a JSON object, or says clearly why it is not one. The handler passes
 * the shared per-request decoder (ai-gateway-shared/request_json), so that later plugins reuse
 * the decoded body.
 */
export function decodeJsonObject(raw: string, decode: JsonDecoder = cjson.decode): LuaMultiReturn<[JsonObject, undefined] | [undefined, Violation]> {
  const first = firstSignificant(raw);
  if (first === undefined) return $multi(undefined, requestViolation("invalid_json", "request body is empty: expected a JSON object"));
  const [value, err] = decode(raw);
  if (err !== undefined) {
    if (first === "{" || first === "[") {
      return $multi(undefined, requestViolation("invalid_json", `request body is not valid JSON: ${err}`));
    }
    return $multi(undefined, requestViolation("invalid_json", "request body is not JSON: expected a JSON object"));
  }
  // cjson decodes [] and {} alike: the text tells an object from an array.
  const object = asObject(value);
  if (first !== "{" || object === undefined) {
    return $multi(undefined, requestViolation("invalid_request_body", "request body must be a JSON object"));
  }
  return $multi(object, undefined);
}
