// Pure helpers of the Projects page (unit-tested without the app): the declaration joined
// with the live state, what `up` and `down` did in one line, the facts of the state.
import type { BackendChange, BackendDecl, BackendState, Health, ProjectBackend, ProjectView, UpSummary } from "../backend";
import { formatBytes } from "../format";

/** The task scope of a project folder: one Up or Down at a time, its status line kept. */
export const projectScope = (dir: string) => `project:${dir}`;

/** The last part of a folder's path, its name in the list. */
export function folderName(dir: string): string {
  const parts = dir.split(/[\\/]+/).filter(Boolean);
  return parts[parts.length - 1] ?? dir;
}

/** "every 5 s, timeout 2 s, 3 failures". */
export function formatHealth(h: Health | null): string {
  if (!h) return "—";
  const t = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
  return `every ${t(h.every_ms)}, timeout ${t(h.timeout_ms)}, ${h.failures} failure${h.failures === 1 ? "" : "s"}`;
}

export interface Memory {
  text: string;
  /** Used / limit, when both are known. */
  ratio: number | null;
  over: boolean;
}

/** "120 MB / 2.0 GB", "120 MB", "limit 2.0 GB", "—". */
export function memory(rss: number | null, limit: number | null): Memory {
  if (rss == null) return { text: limit ? `limit ${formatBytes(limit)}` : "—", ratio: null, over: false };
  if (!limit) return { text: formatBytes(rss), ratio: null, over: false };
  return { text: `${formatBytes(rss)} / ${formatBytes(limit)}`, ratio: rss / limit, over: rss > limit };
}

/** One backend row: the declaration (if still declared) beside what runs. */
export interface Row {
  name: string;
  decl: BackendDecl | null;
  live: ProjectBackend | null;
  /** What the state column says. */
  state: BackendState | "not running";
  /** "healthy", "unhealthy", "no probe", "—" (not running). */
  health: string;
  memory: Memory;
  /** Why `up` would touch it, if it would. */
  pending: string | null;
}

export function rows(view: ProjectView): Row[] {
  const live = new Map(view.status.backends.map((b) => [b.name, b]));
  const out: Row[] = view.declaration.backends.map((decl) => row(decl.name, decl, live.get(decl.name) ?? null));
  for (const b of view.status.backends) if (!b.declared) out.push(row(b.name, null, b));
  return out;
}

const ENDED = new Set(["stopped", "crashed", "lost"]);

function row(name: string, decl: BackendDecl | null, live: ProjectBackend | null): Row {
  const running = !!live?.state && !ENDED.has(live.state);
  let health = "—";
  if (running) health = live!.healthy == null ? "no probe" : live!.healthy ? "healthy" : "unhealthy";
  let pending: string | null = null;
  if (!decl) pending = "no longer declared: Up stops it";
  else if (!running) pending = "Up starts it";
  else if (!live!.current) pending = "declaration changed: Up restarts it";
  return {
    name, decl, live,
    state: live?.state ?? "not running",
    health,
    memory: memory(running ? live!.rss_bytes : null, decl?.memory_limit ?? live?.memory_limit ?? null),
    pending,
  };
}

export type Tone = "ok" | "bad" | "idle";
export interface Fact {
  label: string;
  value: string;
  tone: Tone;
}

/** Runtime, lock, environment and the whole, as the state column lists them. */
export function facts(view: ProjectView): Fact[] {
  const s = view.status;
  return [
    {
      label: "Runtime",
      value: s.runtime ? `${s.runtime} ${s.runtime_present ? "installed" : "missing"}` : `Python ${view.declaration.python} (not locked yet)`,
      tone: s.runtime && s.runtime_present ? "ok" : "idle",
    },
    {
      label: "Lock",
      value: !s.lock_present ? "no beep.lock" : s.lock_current ? "beep.lock is current" : "beep.lock is stale (beep.toml changed)",
      tone: s.lock_present && s.lock_current ? "ok" : "idle",
    },
    {
      label: "Environment",
      value: `${view.declaration.environment}: ${!s.environment_present ? "missing" : s.environment_in_sync ? "in sync with the lock" : "not in sync with the lock"}`,
      tone: s.environment_in_sync ? "ok" : "idle",
    },
    {
      label: "Project",
      value: s.up_to_date ? "up to date" : "Up has work to do",
      tone: s.up_to_date ? "ok" : "idle",
    },
  ];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function changes(list: BackendChange[]): string[] {
  const by = (a: BackendChange["action"]) => list.filter((c) => c.action === a).map((c) => c.name);
  const parts: string[] = [];
  for (const a of ["started", "restarted", "stopped"] as const) {
    const names = by(a);
    if (names.length) parts.push(`${a} ${names.join(", ")}`);
  }
  return parts;
}

/** What `up` did, in one line: "Nothing to do: …" or "installed …; created …; started model". */
export function upMessage(r: UpSummary): string {
  const parts: string[] = [];
  if (r.runtime_installed) parts.push(`installed runtime ${r.runtime ?? "?"}`);
  if (r.locked) parts.push("wrote beep.lock");
  if (r.environment_created) parts.push(`created environment “${r.environment}”`);
  if (r.environment_synced) parts.push(`synced “${r.environment}” to the lock`);
  parts.push(...changes(r.backends));
  if (!parts.length)
    return `Nothing to do: environment “${r.environment}” in sync, ${plural(r.backends.length, "backend")} running as declared`;
  const line = parts.join("; ");
  return line[0].toUpperCase() + line.slice(1);
}

/** What `down` did. */
export function downMessage(list: BackendChange[]): string {
  const stopped = list.filter((c) => c.action === "stopped").map((c) => c.name);
  return stopped.length ? `Stopped ${stopped.join(", ")}` : "Nothing to stop: no backend of this project was running";
}
