import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["spec/**/*.test.ts", "upstream/**/*.test.ts", "gateway/**/*.test.ts", "bench/**/*.test.ts", "tools/**/*.test.ts"],
    // Integration suites start nginx, redis-server and Node upstreams on free ports; two cores only.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
