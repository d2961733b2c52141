// The state of one runtime install, folded from `InstallProgress` steps.
import type { ProgressStep } from "../backend";

export type Phase = "resolve" | "download" | "verify" | "extract" | "finalize" | "done" | "failed" | "cancelled";

export interface InstallState {
  phase: Phase;
  /** Downloaded bytes and total when known. */
  bytes: number;
  total: number | null;
  /** Extracted entries and total when known. */
  entries: number;
  entriesTotal: number | null;
  /** Bytes per second, smoothed. */
  speed: number;
  /** When the last download step arrived (ms). */
  lastAt: number | null;
  message: string;
}

export const initialInstall: InstallState = {
  phase: "resolve",
  bytes: 0,
  total: null,
  entries: 0,
  entriesTotal: null,
  speed: 0,
  lastAt: null,
  message: "",
};

/** Fold one step in; `now` is milliseconds (injectable for tests). */
export function reduceInstall(state: InstallState, step: ProgressStep, now: number = Date.now()): InstallState {
  switch (step.phase) {
    case "resolve":
      return { ...state, phase: "resolve", message: `Resolving ${step.what}` };
    case "download": {
      let speed = state.speed;
      if (state.lastAt != null && now > state.lastAt && step.bytes >= state.bytes) {
        const instant = ((step.bytes - state.bytes) * 1000) / (now - state.lastAt);
        speed = speed > 0 ? speed * 0.7 + instant * 0.3 : instant;
      }
      return { ...state, phase: "download", bytes: step.bytes, total: step.total, speed, lastAt: now };
    }
    case "verify":
      return { ...state, phase: "verify" };
    case "extract":
      return { ...state, phase: "extract", entries: step.entries, entriesTotal: step.total };
    case "finalize":
      return { ...state, phase: "finalize" };
    case "output":
      return { ...state, message: step.line };
    case "done":
      return { ...state, phase: "done", message: step.message, bytes: state.total ?? state.bytes };
  }
}

const PHASE_SPAN: Record<Phase, [number, number]> = {
  resolve: [0, 0.02],
  download: [0.02, 0.8],
  verify: [0.8, 0.82],
  extract: [0.82, 0.97],
  finalize: [0.97, 0.99],
  done: [1, 1],
  failed: [0, 0],
  cancelled: [0, 0],
};

/** Overall fraction 0..1 for the progress bar. */
export function installFraction(state: InstallState): number {
  const [from, to] = PHASE_SPAN[state.phase];
  let within = 0;
  if (state.phase === "download" && state.total) within = Math.min(1, state.bytes / state.total);
  if (state.phase === "extract" && state.entriesTotal) within = Math.min(1, state.entries / state.entriesTotal);
  return from + (to - from) * within;
}

/** Bytes left when the total is known. */
export function remainingBytes(state: InstallState): number | null {
  return state.total == null ? null : Math.max(0, state.total - state.bytes);
}
