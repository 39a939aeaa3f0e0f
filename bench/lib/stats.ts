// Pure arithmetic of the benchmark: medians, per-round ratios of a row to the reference rows of
// its workload, and the targets. No I/O, so vitest checks it directly.
import type { WrkResult } from "./wrk.ts";

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One wrk result per row of a workload, all measured in the same round. */
export type Round = Record<string, WrkResult | undefined>;

/** Medians over rounds of (this row / the reference row of the same round). */
export interface Ratio {
  rps: number;
  rps_min: number;
  rps_max: number;
  p50: number;
  p99: number;
}

export interface RowSummary {
  row: string;
  rounds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Response bytes per request as wrk read them (headers included). */
  bytes_per_request: number;
  /** Ratio to each reference row, by its id; null for the reference itself or when never measured together. */
  vs: Record<string, Ratio | null>;
}

function ratio(rounds: Round[], row: string, base: string): Ratio | null {
  const rps: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  for (const round of rounds) {
    const a = round[row];
    const b = round[base];
    if (!a || !b) continue;
    rps.push(a.rps / b.rps);
    p50.push(a.latency_us.p50 / b.latency_us.p50);
    p99.push(a.latency_us.p99 / b.latency_us.p99);
  }
  if (rps.length === 0) return null;
  return { rps: median(rps), rps_min: Math.min(...rps), rps_max: Math.max(...rps), p50: median(p50), p99: median(p99) };
}

/**
 * A row's medians over rounds and its ratios to each reference row: every ratio is taken within
 * a round, then the median over rounds, so the shared machine's drift between rounds cancels.
 */
export function summarise(rounds: Round[], row: string, bases: string[]): RowSummary {
  const mine = rounds.map((r) => r[row]).filter((r): r is WrkResult => r !== undefined);
  return {
    row,
    rounds: mine.length,
    rps: median(mine.map((r) => r.rps)),
    p50_ms: median(mine.map((r) => r.latency_us.p50)) / 1000,
    p99_ms: median(mine.map((r) => r.latency_us.p99)) / 1000,
    bytes_per_request: median(mine.map((r) => r.bytes / Math.max(1, r.requests))),
    vs: Object.fromEntries(bases.map((b) => [b, b === row ? null : ratio(rounds, row, b)])),
  };
}

export type TargetStatus = "met" | "not met" | "not measured";

export interface Target {
  id: string;
  description: string;
  target: string;
  measured: string;
  status: TargetStatus;
}

export function judge(value: number | null | undefined, ok: (v: number) => boolean): TargetStatus {
  if (value === null || value === undefined || !Number.isFinite(value)) return "not measured";
  return ok(value) ? "met" : "not met";
}

type Maybe = number | null | undefined;

export interface TargetInputs {
  /** OpenAI saturated stream, streams/s as a ratio to the byte counter (median of rounds). */
  streamTrlVsBytes: Maybe;
  streamUdlVsBytes: Maybe;
  streamAllVsBytes: Maybe;
  /** Small JSON, requests/s as a ratio to the gateway without plugins. */
  jsonTrlVsGateway: Maybe;
  jsonAllVsGateway: Maybe;
  /** The reader alone, µs per event, by stream shape and chunking ("4096", "event"). */
  readerUsPerEvent: Record<string, Record<string, number>>;
  /** Lua memory per active stream with all three plugins, KB. */
  luaKbPerStream: Maybe;
  /** Exact-count checks made before the load, and how many failed. */
  exactChecks: { made: number; failed: number };
  /** The JIT check on the reader's modules (current dist). */
  jit: { aborts: number; nyi: number; blacklisted: number; loop_structure: number } | undefined;
}

const fmt = (v: Maybe, digits: number, unit = "") => (v === null || v === undefined || !Number.isFinite(v) ? "n/a" : `${v.toFixed(digits)}${unit}`);
const times = (v: Maybe) => fmt(v, 2, "×");

/** The reader targets: OpenAI's figure, and every other shape within 1.5× of it. */
export const READER_TARGET_US = { "4096": 0.25, event: 0.6 } as const;
export const OTHER_SHAPES_FACTOR = 1.5;

function ratioTarget(id: string, description: string, v: Maybe, min: number): Target {
  return { id, description, target: `>= ${min.toFixed(2)}×`, measured: times(v), status: judge(v, (x) => x >= min) };
}

function readerTargets(us: Record<string, Record<string, number>>): Target[] {
  const out: Target[] = [];
  for (const shape of ["openai", "vllm", "anthropic", "ollama"]) {
    for (const chunks of ["4096", "event"] as const) {
      // rounded, so 0.6 × 1.5 is 0.9 and not 0.8999999999999999
      const limit = Math.round(READER_TARGET_US[chunks] * (shape === "openai" ? 1 : OTHER_SHAPES_FACTOR) * 1e6) / 1e6;
      const v = us[shape]?.[chunks];
      out.push({
        id: `reader_${shape}_${chunks}`,
        description: `reader alone, ${shape} events, ${chunks === "event" ? "one event per chunk" : "4 KiB chunks"}`,
        target: `<= ${limit.toFixed(3)} µs/event`,
        measured: fmt(v, 3, " µs/event"),
        status: judge(v, (x) => x <= limit),
      });
    }
  }
  return out;
}

export function evaluateTargets(t: TargetInputs): Target[] {
  return [
    ratioTarget("stream_trl_vs_bytes", "saturated OpenAI stream: token-rate-limiting / byte counter, streams/s", t.streamTrlVsBytes, 0.8),
    ratioTarget("stream_udl_vs_bytes", "saturated OpenAI stream: upstream-disconnect-log / byte counter, streams/s", t.streamUdlVsBytes, 0.8),
    ratioTarget("stream_all3_vs_bytes", "saturated OpenAI stream: all three / byte counter, streams/s", t.streamAllVsBytes, 0.65),
    ...readerTargets(t.readerUsPerEvent),
    ratioTarget("json_trl_vs_gateway", "small JSON: token-rate-limiting / gateway without plugins, req/s", t.jsonTrlVsGateway, 0.8),
    ratioTarget("json_all3_vs_gateway", "small JSON: all three / gateway without plugins, req/s", t.jsonAllVsGateway, 0.65),
    {
      id: "lua_memory_per_stream",
      description: "Lua memory per active stream with all three plugins (after a full GC)",
      target: "< 64 KB",
      measured: fmt(t.luaKbPerStream, 1, " KB"),
      status: judge(t.luaKbPerStream, (v) => v < 64),
    },
    {
      id: "exact_counts",
      description: "exact counts: tokens counted by token-rate-limiting and bytes by the byte counter equal the streams' (checked before the load)",
      target: "all exact",
      measured: t.exactChecks.made === 0 ? "n/a" : `${t.exactChecks.made - t.exactChecks.failed} of ${t.exactChecks.made} exact`,
      status: t.exactChecks.made === 0 ? "not measured" : t.exactChecks.failed === 0 ? "met" : "not met",
    },
    {
      id: "reader_jit",
      description: "reader's hot path under LuaJIT (bench/sse-reader/jit-check.lua): trace aborts in the shared library's modules",
      target: "0 aborts, 0 NYI",
      measured: t.jit
        ? `${t.jit.aborts} aborts (NYI ${t.jit.nyi}, blacklisted ${t.jit.blacklisted}, inner/leaving loop in root trace ${t.jit.loop_structure})`
        : "n/a",
      status: t.jit ? (t.jit.aborts === 0 && t.jit.nyi === 0 ? "met" : "not met") : "not measured",
    },
  ];
}
