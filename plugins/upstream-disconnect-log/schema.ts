// Configuration of upstream-disconnect-log. The field names are fixed (kong.yml uses them).

import * as typedefs from "kong.db.schema.typedefs";
import { METRICS_FIELD } from "../ai-gateway-shared/metrics";

const schema = {
  name: "upstream-disconnect-log",
  fields: [
    { protocols: typedefs.protocols_http },
    {
      config: {
        type: "record",
        fields: [
          {
            log_completed: {
              type: "boolean",
              required: true,
              default: false,
              description: "Also record responses that ended normally (outcome `completed`); off: only abnormal endings are recorded.",
            },
          },
          {
            sample_rate: {
              type: "number",
              required: true,
              default: 1,
              between: [0, 1],
              description: "Fraction of `completed` records kept when `log_completed` is on (0 none, 1 all). Abnormal endings are always recorded.",
            },
          },
          {
            log_level: {
              type: "string",
              required: true,
              default: "warn",
              one_of: ["err", "warn", "notice", "info"],
              description: "Error-log level of the `[upstream-disconnect]` line (nginx drops lines below its error_log level).",
            },
          },
          {
            include_query: {
              type: "boolean",
              required: true,
              default: false,
              description: "Keep the query string in the recorded path (values of key, token, secret and signature parameters are still redacted).",
            },
          },
          METRICS_FIELD,
        ],
      },
    },
  ],
} as const satisfies KongPluginSchema;

export = schema;
