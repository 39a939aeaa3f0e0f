// prompt-guard: allow and deny patterns and size limits over the prompts of LLM requests,
// enforced in access before the request is proxied.
import * as metrics from "../ai-gateway-shared/metrics";
import { decodeRequestJson } from "../ai-gateway-shared/request_json";
import { decodeJsonObject, nothingToCheck, readRawBody } from "./body";
import { evaluate, type Verdict } from "./guard";
import { actionFor, logEntry, logLine, SERIALIZER_KEY } from "./report";
import { styleOf, violationBody } from "./response";

type Config = ConfigOf<typeof import("./schema")>;

function inspect(conf: Config): Verdict {
  const [raw, bodyViolation, readError] = readRawBody(conf.max_body_size);
  if (raw === undefined) {
    if (readError !== undefined && bodyViolation.reason === "body_unreadable") kong.log.err("could not read the request body: ", readError);
    return { violation: bodyViolation, items: [] };
  }
  if (nothingToCheck(kong.request.get_method(), raw)) return { items: [] };
  const [body, jsonViolation] = decodeJsonObject(raw, decodeRequestJson);
  if (body === undefined) return { violation: jsonViolation, items: [] };
  return evaluate(conf, body);
}

const handler: KongPluginHandler<Config> = {
  // After authentication and request-size-limiting (951), which bounds what the guard reads;
  // before rate-limiting (910) and token-rate-limiting (905), so a refused prompt costs no quota.
  PRIORITY: 930,
  VERSION: "0.1.0",

  init_worker() {
    metrics.init();
  },

  access(conf) {
    const verdict = inspect(conf);
    const violation = verdict.violation;
    const action = actionFor(violation, conf.mode);
    kong.log.set_serialize_value(SERIALIZER_KEY, logEntry(action, violation, verdict.items, conf.log_prompt));
    if (metrics.counting(conf.metrics)) {
      metrics.recordGuardDecision(conf.metrics, kong.router.get_route(), violation === undefined ? "" : (violation.rule ?? violation.reason), action);
    }
    if (violation === undefined) return;
    if (action === "monitored") {
      kong.log.notice(logLine(action, violation));
      return;
    }
    kong.log.info(logLine(action, violation));
    const style = styleOf(kong.request.get_path(), kong.request.get_header("anthropic-version"));
    return kong.response.exit(violation.status, violationBody(style, violation));
  },
};

export = handler;
