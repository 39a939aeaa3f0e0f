/** Reading the request body for the guard, and telling the client clearly what is wrong with it. */
import * as cjson from "cjson.safe";
import { requestViolation, type Violation } from "./guard";
import { asObject, type JsonObject } from "../ai-gateway-shared/json";


export type JsonDecoder = (this: void, raw: string) => LuaMultiReturn<[unknown, string | undefined]>;

const BODYLESS_METHODS: { [method: string]: boolean } = { GET: true, HEAD: true, OPTIONS: true, DELETE: true, TRACE: true };

export function bodyTooLarge(size: number, max: number): Violation {
  return requestViolation("body_too_large", `request body too large: ${size} bytes, at most ${max} allowed`, 413);
}

/** Refuses a large upload before it is read at all. */
export function checkDeclaredLength(contentLength: string | undefined, max: number): Violation | undefined {
  if (contentLength === undefined) return undefined;
  const size = tonumber(contentLength);
  if (size === undefined || size <= max) return undefined;
  return bodyTooLarge(size, max);
}

export function readErrorViolation(err: string, max: number): Violation {
  const [size] = string.match(err, "too big: (%d+)");
  if (size !== undefined) return bodyTooLarge(tonumber(size) ?? max + 1, max);
  return requestViolation("body_unreadable", "the request body could not be read", 500);
}

export function readRawBody(max: number): LuaMultiReturn<[string, undefined, undefined] | [undefined, Violation, string | undefined]> {
  const declared = checkDeclaredLength(kong.request.get_header("content-length"), max);
  if (declared !== undefined) return $multi(undefined, declared, undefined);
  const [raw, err] = kong.request.get_raw_body(max);
  if (raw === undefined) return $multi(undefined, readErrorViolation(err, max), err);
  // A body nginx kept in memory comes back whatever its size (a chunked upload has no Content-Length).
  if (raw.length > max) return $multi(undefined, bodyTooLarge(raw.length, max), undefined);
  return $multi(raw, undefined, undefined);
}

export function nothingToCheck(method: string, raw: string): boolean {
  return raw === "" && BODYLESS_METHODS[string.upper(method)] === true;
}

function firstSignificant(raw: string): string | undefined {
  const [at] = string.find(raw, "[^ \t\r\n]");
  return at === undefined ? undefined : string.sub(raw, at, at);
}

/** The handler passes the shared per-request decoder, so that later plugins reuse the decoded body. */
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
