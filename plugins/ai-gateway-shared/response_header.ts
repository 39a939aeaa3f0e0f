/**
 * One response header, as kong.response.get_header returns it (the first value of a repeated
 * header), read through ngx.header. Kong's get_header builds the table of every response header
 * on each call; the filters of these plugins read two or three headers on every response, so
 * they read them one by one instead. Header, body_filter and log phases only.
 */
export function responseHeader(name: string): string | undefined {
  // Reading gives a string, or an array for a repeated header (numbers are only ever written).
  const value = ngx.header[name] as string | readonly string[] | undefined;
  if (typeof value === "object") return value[0];
  return value;
}
