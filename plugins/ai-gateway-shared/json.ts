/**
 * Typed access to decoded JSON (cjson tables). JSON null decodes to cjson.null, which is none of
 * these types, so it reads as absent everywhere.
 */

export type JsonObject = { [key: string]: unknown };

export function asObject(v: unknown): JsonObject | undefined {
  // typeof "object" is Lua's type "table" (TypeScriptToLua); Lua has no null object.
  return typeof v === "object" && v !== null ? (v as JsonObject) : undefined;
}

/** cjson decodes `[]` and `{}` alike, so an empty object passes as an empty array. */
export function asArray(v: unknown): unknown[] | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const list = v as unknown[];
  let count = 0;
  for (const [key] of pairs(v)) {
    if (typeof key !== "number") return undefined;
    count += 1;
  }
  return count === list.length ? list : undefined;
}

export function asString(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** Finite and non-negative. */
export function asCount(v: unknown): number | undefined {
  if (typeof v !== "number") return undefined;
  return v >= 0 && v < math.huge ? v : undefined;
}
