// Where token counters live, behind one interface as in Kong's rate-limiting: `local` (this
// node's shared memory) or `redis` (one budget for a cluster).

import type { Adjustment, CounterValues, CounterWindow, WindowType } from "../windows";
import { logStoreFailure } from "./failures";
import * as local from "./local";
import * as redis from "./redis";
import type { RedisConfig } from "./redis";

export type PolicyName = "local" | "redis";

export interface PolicyConfig {
  readonly policy: PolicyName;
  readonly window_type: WindowType;
  readonly redis: RedisConfig;
}

export interface StoragePolicy {
  /** Reserves in every window only when all admit, atomically; returns the values before this request. */
  acquire(
    this: void,
    conf: PolicyConfig,
    windows: CounterWindow[],
    reserve: number,
  ): LuaMultiReturn<[CounterValues[], boolean, undefined] | [undefined, undefined, string]>;
  settle(this: void, conf: PolicyConfig, adjustments: Adjustment[]): void;
}

export const policies: { [P in PolicyName]: StoragePolicy } = {
  local: {
    acquire: (conf, windows, reserve) => local.acquire(windows, conf.window_type, reserve),
    settle: (_conf, adjustments) => {
      const err = local.settle(adjustments);
      if (err !== undefined) logStoreFailure("token counts could not be settled in the shared dict", err);
    },
  },
  redis: {
    acquire: (conf, windows, reserve) => redis.acquire(conf.redis, windows, reserve),
    settle: (conf, adjustments) => redis.settleLater(conf.redis, adjustments),
  },
};
