// Pure arithmetic of the benchmark: medians, per-round ratios to the bare proxy and to the
// gateway without plugins, and the targets. No I/O, so vitest checks it directly.
import type { WrkResult } from "./wrk.ts";

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One wrk result per configuration, all measured in the same round. */
export type Round = Record<string, WrkResult | undefined>;

export interface CellSummary {
  config: string;
  rounds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Medians over rounds of (this config / bare proxy of the same round). */
  vs_bare: { rps: number; p50: number; p99: number; rps_min: number; rps_max: number } | null;
  /** Medians over rounds of (this config / gateway without plugins of the same round). */
  vs_gateway: { rps: number; p50: number; p99: number; rps_min: number; rps_max: number } | null;
  /** Median over rounds of p50(this) - p50(gateway without plugins), in ms. */
  added_p50_ms_vs_gateway: number | null;
  /** Median over rounds of p50(this) - p50(bare proxy), in ms. */
  added_p50_ms_vs_bare: number | null;
}

function ratios(rounds: Round[], config: string, base: string) {
  const rps: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const added: number[] = [];
  for (const round of rounds) {
    const a = round[config];
    const b = round[base];
    if (!a || !b) continue;
    rps.push(a.rps / b.rps);
    p50.push(a.latency_us.p50 / b.latency_us.p50);
    p99.push(a.latency_us.p99 / b.latency_us.p99);
    added.push((a.latency_us.p50 - b.latency_us.p50) / 1000);
  }
  if (rps.length === 0) return { ratio: null, added: null };
  return {
    ratio: { rps: median(rps), p50: median(p50), p99: median(p99), rps_min: Math.min(...rps), rps_max: Math.max(...rps) },
    added: median(added),
  };
}

export function summarise(rounds: Round[], config: string, bare = "bare", gateway = "gateway"): CellSummary {
  const mine = rounds.map((r) => r[config]).filter((r): r is WrkResult => r !== undefined);
  const vsBare = config === bare ? { ratio: null, added: null } : ratios(rounds, config, bare);
  const vsGateway = config === bare || config === gateway ? { ratio: null, added: null } : ratios(rounds, config, gateway);
  return {
    config,
    rounds: mine.length,
    rps: median(mine.map((r) => r.rps)),
    p50_ms: median(mine.map((r) => r.latency_us.p50)) / 1000,
    p99_ms: median(mine.map((r) => r.latency_us.p99)) / 1000,
    vs_bare: vsBare.ratio,
    vs_gateway: vsGateway.ratio,
    added_p50_ms_vs_gateway: vsGateway.added,
    added_p50_ms_vs_bare: vsBare.added,
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

export interface TargetInputs {
  /** all three plugins / gateway without plugins, requests/s on small JSON (median ratio). */
  jsonRpsAllVsGateway: number | null;
  /** p50 time to last byte of the 1,000-event stream, all three minus no plugins, ms. */
  sseAddedP50Ms: number | null;
  sseEvents: number;
  /** Lua memory per active stream with all three plugins, KB. */
  luaKbPerStream: number | null;
  /** SSE usage reader MB/s on 16 KiB chunks. */
  sseReaderMbps16k: number | null;
}

const fmt = (v: number | null, digits: number, unit = "") => (v === null || !Number.isFinite(v) ? "n/a" : `${v.toFixed(digits)}${unit}`);

export function evaluateTargets(t: TargetInputs): Target[] {
  return [
    {
      id: "json_rps_all_plugins",
      description: "all three plugins keep >= 90% of the no-plugin gateway's requests/s (small JSON)",
      target: ">= 90%",
      measured: t.jsonRpsAllVsGateway === null ? "n/a" : `${(t.jsonRpsAllVsGateway * 100).toFixed(1)}%`,
      status: judge(t.jsonRpsAllVsGateway, (v) => v >= 0.9),
    },
    {
      id: "sse_added_p50",
      description: `all three plugins add < 1 ms at p50 to a ${t.sseEvents}-event stream (time to last byte)`,
      target: "< 1 ms",
      measured: fmt(t.sseAddedP50Ms, 2, " ms"),
      status: judge(t.sseAddedP50Ms, (v) => v < 1),
    },
    {
      id: "lua_memory_per_stream",
      description: "Lua memory per active stream with all three plugins (after a full GC)",
      target: "< 64 KB",
      measured: fmt(t.luaKbPerStream, 1, " KB"),
      status: judge(t.luaKbPerStream, (v) => v < 64),
    },
    {
      id: "sse_reader_16k",
      description: "SSE usage reader throughput on 16 KiB chunks (LuaJIT)",
      target: ">= 200 MB/s",
      measured: fmt(t.sseReaderMbps16k, 1, " MB/s"),
      status: judge(t.sseReaderMbps16k, (v) => v >= 200),
    },
  ];
}
