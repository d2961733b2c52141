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
    case "unhealthy":
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
    if (row.state === "ready" && row.rss_bytes > 0) kept.push({ at: now, cpu: row.cpu_percent ?? 0, rss: row.rss_bytes });
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

const FINAL = new Set(["stopped", "crashed"]);

/**
 * The table after an update: the supervisor forgets a backend once it has ended, but the
 * table keeps it (state stopped/crashed, no pid) until the user clears it.
 * `ended` carries those rows between updates; the function returns the new pair.
 */
export function mergeRows(
  previous: BackendRow[],
  next: BackendRow[],
  ended: Map<string, BackendRow>,
): { rows: BackendRow[]; ended: Map<string, BackendRow> } {
  const live = new Set(next.map((r) => r.id));
  const kept = new Map([...ended].filter(([id]) => !live.has(id)));
  for (const row of previous) {
    if (!live.has(row.id) && !kept.has(row.id)) {
      kept.set(row.id, {
        ...row,
        state: FINAL.has(row.state) ? row.state : "stopped",
        pid: null,
        cpu_percent: 0,
        rss_bytes: 0,
        uptime_secs: 0,
      });
    }
  }
  // Stable order: rows keep their place; new ones come last.
  const place = new Map(previous.map((r, i) => [r.id, i]));
  const rows = [...next, ...kept.values()];
  const order = (r: BackendRow) => place.get(r.id) ?? previous.length + rows.indexOf(r);
  rows.sort((a, b) => order(a) - order(b));
  return { rows, ended: kept };
}

/** A short endpoint for the table: a socket's file name, an address as it is. */
export function shortEndpoint(address: string | null): string {
  if (!address) return "—";
  const slash = Math.max(address.lastIndexOf("/"), address.lastIndexOf("\\"));
  return slash >= 0 ? address.slice(slash + 1) : address;
}
