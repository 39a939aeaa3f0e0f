/**
 * As kong.response.get_header, which builds the table of every response header on each call,
 * read through ngx.header instead. Header, body_filter and log phases only.
 */
export function responseHeader(name: string): string | undefined {
  // An array for a repeated header.
  const value = ngx.header[name] as string | readonly string[] | undefined;
  if (typeof value === "object") return value[0];
  return value;
}
