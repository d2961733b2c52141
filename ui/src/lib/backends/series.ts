// Backend state colours and the CPU/memory history behind the sparklines.
import type { BackendRow } from "../backend";

/** The CSS class of a state (coloured by the stylesheet). */
export function stateTone(state: string): "ok" | "busy" | "idle" | "bad" {
  switch (state) {
    case "ready":
      return "ok";
    case "starting":
    case "stopping":
    case "restarting":
      return "busy";
    case "crashed":
      return "bad";
    default:
      return "idle";
  }
}

export interface Sample {
  at: number;
  cpu: number;
  rss: number;
}

/** Keep the last `minutes` of samples per backend. */
export function pushSamples(
  history: Map<string, Sample[]>,
  rows: BackendRow[],
  now: number,
  minutes = 5,
): Map<string, Sample[]> {
  const cutoff = now - minutes * 60_000;
  const next = new Map<string, Sample[]>();
  for (const row of rows) {
    const old = history.get(row.id) ?? [];
    const kept = old.filter((s) => s.at >= cutoff);
    if (row.state === "ready" || row.state === "starting") kept.push({ at: now, cpu: row.cpu_percent ?? 0, rss: row.rss_bytes });
    next.set(row.id, kept);
  }
  return next;
}

/** An SVG polyline `points` string scaled into width x height (max at the top). */
export function sparkline(values: number[], width: number, height: number, floorMax = 0): string {
  if (values.length === 0) return "";
  const max = Math.max(floorMax, ...values);
  const min = 0;
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const x = values.length > 1 ? i * step : width;
      const y = height - ((Math.max(min, v) - min) / span) * height;
      return `${round(x)},${round(y)}`;
    })
    .join(" ");
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
