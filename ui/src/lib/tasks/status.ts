// Pure helpers of the task store (unit-tested without the app).
import type { ErrorCode, PackageRow } from "../backend";

export type TaskStatus = "running" | "done" | "failed" | "cancelled";

/** How a task that threw ends: a cancel is neutral, anything else failed. */
export function endStatus(code: ErrorCode): TaskStatus {
  return code === "cancelled" ? "cancelled" : "failed";
}

/** What a package task changed, from the lists before and after: "added a 1.0; removed b 2.0". */
export function packageChanges(before: PackageRow[], after: PackageRow[]): string {
  const key = (p: PackageRow) => p.name.toLowerCase().replace(/[-_.]+/g, "-");
  const old = new Map(before.map((p) => [key(p), p]));
  const now = new Map(after.map((p) => [key(p), p]));
  const added: string[] = [];
  const upgraded: string[] = [];
  const removed: string[] = [];
  for (const [k, p] of now) {
    const was = old.get(k);
    if (!was) added.push(`${p.name} ${p.version}`);
    else if (was.version !== p.version) upgraded.push(`${p.name} ${was.version} → ${p.version}`);
  }
  for (const [k, p] of old) if (!now.has(k)) removed.push(`${p.name} ${p.version}`);
  const parts = [
    added.length ? `added ${added.join(", ")}` : "",
    upgraded.length ? `changed ${upgraded.join(", ")}` : "",
    removed.length ? `removed ${removed.join(", ")}` : "",
  ].filter(Boolean);
  return parts.length ? parts.join("; ") : "nothing changed";
}

/** Seconds since `from` as "12 s" / "2 min 5 s". */
export function elapsed(from: number, now: number): string {
  const s = Math.max(0, Math.floor((now - from) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
