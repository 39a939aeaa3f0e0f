/**
 * One request header, as kong.request.get_header returns it, read through its nginx variable
 * ($http_<name>, lower case, "-" as "_"), which is how Kong 3.9 reads it too; the local
 * gateway's get_header builds the table of every request header on each call. Request phases
 * that have ngx.var (rewrite to log).
 */
const variableNames: { [header: string]: string } = {};

function variableName(header: string): string {
  let name = variableNames[header];
  if (name === undefined) {
    [name] = string.gsub(string.lower(header), "-", "_");
    name = "http_" + name;
    variableNames[header] = name;
  }
  return name;
}

export function requestHeader(name: string): string | undefined {
  return ngx.var[variableName(name)];
}
