/** @noSelfInFile */
// Lua modules that Kong (OpenResty) provides at run time. Declared as ambient modules so that
// `import * as cjson from "cjson.safe"` transpiles to `local cjson = require("cjson.safe")`.

declare module "cjson" {
  /** A value cjson can encode: tables become objects or arrays. */
  export type JsonValue = string | number | boolean | null | undefined | JsonValue[] | { [key: string]: JsonValue } | LuaTable;
  /** Raises on invalid JSON. */
  export function decode(this: void, text: string): unknown;
  /** Raises on values that cannot be encoded (functions, userdata, sparse arrays). */
  export function encode(this: void, value: unknown): string;
  /** The sentinel that stands for JSON null in decoded tables (Lua: `cjson.null`). */
  const json_null: unknown;
  export { json_null as null };
  export function encode_empty_table_as_object(this: void, enabled: boolean | "on" | "off"): void;
  export function decode_array_with_array_mt(this: void, enabled: boolean): void;
  /** Tables with this metatable encode as `[]` even when empty. */
  export const empty_array_mt: LuaTable;
  export const array_mt: LuaTable;
  export const empty_array: LuaTable;
  export function encode_escape_forward_slash(this: void, enabled: boolean): void;
  export function encode_number_precision(this: void, precision: number): void;
  export function decode_max_depth(this: void, depth: number): void;
  export function encode_max_depth(this: void, depth: number): void;
}

declare module "cjson.safe" {
  /** Never raises: returns nil and an error message on invalid JSON. */
  export function decode(this: void, text: string): LuaMultiReturn<[unknown, undefined] | [undefined, string]>;
  /** Never raises: returns nil and an error message for values that cannot be encoded. */
  export function encode(this: void, value: unknown): LuaMultiReturn<[string, undefined] | [undefined, string]>;
  const json_null: unknown;
  export { json_null as null };
  export const empty_array_mt: LuaTable;
  export const array_mt: LuaTable;
  export const empty_array: LuaTable;
  export function encode_empty_table_as_object(this: void, enabled: boolean | "on" | "off"): void;
  export function decode_array_with_array_mt(this: void, enabled: boolean): void;
}
