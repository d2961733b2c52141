// Pure helpers of the bundle forms on the Projects page (unit-tested without the app): the
// paths checked before anything runs, the platforms chosen, what was written in one line.
import type { BundleWritten } from "../backend";
import { formatBytes } from "../format";

/** The task scope of bundle work: one export or open at a time, its status line kept. */
export const bundleScope = "bundle";

/** The platforms a bundle can carry (as `beep-host bundle --platform` names them). */
export const BUNDLE_PLATFORMS = ["linux-x86_64-gnu", "windows-x86_64", "macos-aarch64"] as const;

const isAbsolute = (p: string) => p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith("\\\\");

/** The folder part of a path ("" when it has none). */
export function parentOf(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (i < 0) return "";
  return i === 0 ? "/" : path.slice(0, i);
}

/**
 * Why a bundle path cannot be used, or null: absolute, ends in .zip; `folderExists` says
 * whether its folder exists (null: not known yet, then the backend checks it).
 */
export function zipPathProblem(given: string, folderExists: boolean | null = null): string | null {
  const path = given.trim();
  if (!path) return "Give the path of the bundle (a .zip file)";
  if (!isAbsolute(path)) return `The bundle must be an absolute path, not “${path}”`;
  if (!/\.zip$/i.test(path) || /[\\/]\.zip$/i.test(path)) return "The bundle must be a file ending in .zip";
  if (folderExists === false) return `Folder “${parentOf(path)}” does not exist`;
  return null;
}

/** Why a folder to open a bundle into cannot be used, or null. */
export function folderProblem(given: string): string | null {
  const path = given.trim();
  if (!path) return "Give the folder to open the bundle into (empty, or the bundle's own project)";
  if (!isAbsolute(path)) return `The project folder must be an absolute path, not “${path}”`;
  return null;
}

/** The export form: its output path and the platforms ticked. */
export interface ExportForm {
  output: string;
  platforms: string[];
}

/** A fresh export form for the project in `dir`: `<dir>/<name>-bundle.zip`, this platform ticked. */
export function exportForm(dir: string, current: string | null): ExportForm {
  const trimmed = dir.replace(/[\\/]+$/, "");
  const name = trimmed.split(/[\\/]+/).pop() || "project";
  const sep = trimmed.includes("\\") && !trimmed.includes("/") ? "\\" : "/";
  return { output: `${trimmed}${sep}${name}-bundle.zip`, platforms: current ? [current] : [] };
}

/** Tick or untick one platform, keeping the list in BUNDLE_PLATFORMS order. */
export function togglePlatform(chosen: string[], platform: string, on: boolean): string[] {
  const set = new Set(chosen);
  if (on) set.add(platform);
  else set.delete(platform);
  return BUNDLE_PLATFORMS.filter((p) => set.has(p));
}

/** Why the export cannot start, or null. */
export function exportProblem(form: ExportForm): string | null {
  return zipPathProblem(form.output) ?? (form.platforms.length ? null : "Choose at least one platform");
}

/** "Wrote /x/p-bundle.zip (12.3 MB) for linux-x86_64-gnu". */
export function bundleMessage(w: BundleWritten): string {
  return `Wrote ${w.path} (${formatBytes(w.size)}) for ${w.platforms.join(", ")}`;
}
