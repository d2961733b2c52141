// Which catalog entry to recommend: the newest version (then the newest build).
import type { AvailableRuntime } from "../backend";

const parts = (v: string) => v.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);

/** Compare versions numerically ("3.10.2" > "3.9.18"). */
export function compareVersions(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

export function newestAvailable(available: AvailableRuntime[]): AvailableRuntime | null {
  let best: AvailableRuntime | null = null;
  for (const a of available) {
    if (!best || compareVersions(a.version, best.version) > 0 || (compareVersions(a.version, best.version) === 0 && a.build > best.build)) best = a;
  }
  return best;
}

/** Python 3.6–3.8 reached their end of life: no more security fixes. */
export function endOfLife(version: string): boolean {
  const [major, minor] = parts(version);
  return major === 3 && minor >= 6 && minor <= 8;
}

/** What a runtime's kind means to a person: installed by this app (`managed`), python.org's
 * Windows embeddable package installed by this app (`embedded`), or found on the machine. */
export function kindLabel(kind: string): string {
  if (kind === "managed") return "managed";
  if (kind === "embedded") return "embedded package";
  return "found on this machine";
}

/** The longer explanation of a kind (a tooltip). */
export function kindTitle(kind: string): string {
  if (kind === "managed") return "Downloaded and kept by this app; it can remove it";
  if (kind === "embedded") return "python.org's embeddable package, installed by this app: runs backends itself, holds no environment; it can remove it";
  return "Found on this machine; the app only uses it";
}

/** Can the app remove it? Only what it installed. */
export function removable(kind: string): boolean {
  return kind === "managed" || kind === "embedded";
}

/** A runtime as a person reads it: "Python 3.12.1 (managed)" / "(found on this machine)". */
export function runtimeLabel(r: { version: string; kind: string }): string {
  return `Python ${r.version} (${kindLabel(r.kind)})`;
}
