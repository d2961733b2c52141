// Backend state colours and the CPU/memory history behind the sparklines.
import type { BackendChanged, BackendRow } from "../backend";

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

/** A sparkline's drawing and its scale: what the top of the box means and the time it covers. */
export interface Spark {
  /** SVG polyline `points` in a `width` x `height` box (drawn with preserveAspectRatio none). */
  points: string;
  /** The value at the top of the box: the largest sample, at least `floorMax`. */
  max: number;
  /** Seconds from the first sample (left edge) to the last (right edge). */
  spanSecs: number;
}

/**
 * Scale samples into the whole box: time runs from the first sample at the left edge to the
 * last at the right edge (by their times, not their count), 0 at the bottom and `max` at
 * the top.
 */
export function sparkScale(
  samples: { at: number; value: number }[],
  width: number,
  height: number,
  floorMax = 0,
): Spark {
  const max = Math.max(floorMax, ...samples.map((s) => s.value), 0);
  if (samples.length === 0) return { points: "", max, spanSecs: 0 };
  const first = samples[0].at;
  const span = samples[samples.length - 1].at - first;
  const top = max || 1;
  const points = samples
    .map((s) => {
      // One sample: a level line across the box.
      const xs = span > 0 ? [((s.at - first) / span) * width] : [0, width];
      const y = height - (Math.max(0, s.value) / top) * height;
      return xs.map((x) => `${round(x)},${round(y)}`).join(" ");
    })
    .join(" ");
  return { points, max, spanSecs: span / 1000 };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

const FINAL = new Set(["stopped", "crashed"]);
/** States in which no process runs: a row in one has no pid, CPU, memory or uptime. */
const ENDED = new Set(["stopped", "crashed", "lost"]);

/** A row whose process is gone: nothing of the last process stays on it. */
function withoutProcess(row: BackendRow): BackendRow {
  return { ...row, pid: null, cpu_percent: 0, rss_bytes: 0, uptime_secs: 0 };
}

/**
 * The table after a `BackendChanged` event: the new state at once, and on a final state
 * (stopped, crashed, lost) no pid, CPU, memory or uptime of the process that ended — not
 * only on the next tick.
 */
export function applyChange(
  rows: BackendRow[],
  ended: Map<string, BackendRow>,
  change: BackendChanged,
): { rows: BackendRow[]; ended: Map<string, BackendRow> } {
  const update = (r: BackendRow): BackendRow => {
    const next = { ...r, state: change.state, pid: change.pid ?? r.pid, last_exit: change.last_exit ?? r.last_exit };
    return ENDED.has(change.state) ? withoutProcess(next) : next;
  };
  const kept = new Map(ended);
  const gone = kept.get(change.id);
  if (gone) kept.set(change.id, update(gone));
  return { rows: rows.map((r) => (r.id === change.id ? update(r) : r)), ended: kept };
}

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
      kept.set(row.id, withoutProcess({ ...row, state: FINAL.has(row.state) ? row.state : "stopped" }));
    }
  }
  // Stable order: rows keep their place; new ones come last.
  const place = new Map(previous.map((r, i) => [r.id, i]));
  const rows = [...next, ...kept.values()];
  const order = (r: BackendRow) => place.get(r.id) ?? previous.length + rows.indexOf(r);
  rows.sort((a, b) => order(a) - order(b));
  return { rows, ended: kept };
}

/** Where a backend runs, for the table: its environment, or `runtime <key>` for one on a
 * runtime itself (`beep-host start --runtime`). */
export function placeLabel(b: Pick<BackendRow, "env" | "runtime">): string {
  return b.runtime ? `runtime ${b.runtime}` : b.env;
}

/** The start form's "Run in" value of a runtime (an environment's value is its name, which
 * holds no `:`). */
export const RUNTIME_CHOICE = "runtime:";

/** What the start form's "Run in" value asks for: an environment, or a runtime itself. */
export function placeChoice(value: string): { env: string; runtime: string | null } {
  return value.startsWith(RUNTIME_CHOICE)
    ? { env: "", runtime: value.slice(RUNTIME_CHOICE.length) }
    : { env: value, runtime: null };
}

/** Where a backend runs, in a sentence: `in admin`, `on runtime <key>`. */
export function placePhrase(b: Pick<BackendRow, "env" | "runtime">): string {
  return b.runtime ? `on runtime ${b.runtime}` : `in ${b.env}`;
}

/** A short endpoint for the table: a socket's file name, an address as it is. */
export function shortEndpoint(address: string | null): string {
  if (!address) return "—";
  const slash = Math.max(address.lastIndexOf("/"), address.lastIndexOf("\\"));
  return slash >= 0 ? address.slice(slash + 1) : address;
}
