// Every long task (environment create / delete, package install / remove, admin repair,
// runtime install) in one store above the pages, fed by the commands' answers and the
// `TaskOutput` / `InstallProgress` events. A page that is left and opened again reads the
// truth from here; each task ends in a status line kept until dismissed or replaced.
import { ApiError, api, errorMessage, on, type Hint } from "../backend";
import { initialInstall, reduceInstall, type InstallState } from "../runtimes/progress";
import { endStatus, type TaskStatus } from "./status";

export type { TaskStatus } from "./status";

export interface Task {
  /** The id `TaskOutput` lines are tagged with. */
  id: string;
  /** Where its status line shows: one task per scope, the newest replaces the last. */
  scope: string;
  /** What it does, e.g. "Install numpy into `e2e`". */
  title: string;
  status: TaskStatus;
  /** Done: what changed; failed: the core's message; cancelled: "Cancelled". */
  message: string;
  /** Failed: what the UI can offer to do about it (the core's hint). */
  hint: Hint | null;
  lines: string[];
  startedAt: number;
  endedAt: number | null;
  /** Runtime installs: the progress folded from `InstallProgress`. */
  install: InstallState | null;
}

let counter = 0;

/** The store; `generation` grows when a task ends, so pages reload what it changed. */
export const tasks = $state({ byScope: {} as Record<string, Task>, generation: 0 });

function byId(id: string): Task | undefined {
  return Object.values(tasks.byScope).find((t) => t.id === id);
}

let fed = false;
/** Subscribe the store to the events (once, from the app shell). */
export function feedTasks(): void {
  if (fed) return;
  fed = true;
  void on.taskOutput((p) => {
    const t = byId(p.task);
    if (t && t.status === "running") t.lines.push(p.line);
  });
  void on.installProgress((p) => {
    const t = tasks.byScope[runtimeScope(p.request)];
    if (t && t.status === "running" && t.install) {
      t.install = reduceInstall(t.install, p.progress);
      if (p.progress.phase === "output") t.lines.push(p.progress.line);
    }
  });
}

export const runtimeScope = (key: string) => `runtime:${key}`;

/** The task shown in `scope`, if any. */
export function taskIn(scope: string): Task | undefined {
  return tasks.byScope[scope];
}

export function running(scope: string): boolean {
  return tasks.byScope[scope]?.status === "running";
}

export function dismiss(scope: string): void {
  delete tasks.byScope[scope];
}

/**
 * Run `f` as the task of `scope`: its output lines are collected; when it ends its status
 * line says `done(result)` or the core's message (or "Cancelled"). Resolves to the result,
 * or undefined when it failed (the failure stays on screen).
 */
export async function runTask<T>(
  scope: string,
  title: string,
  f: (task: string) => Promise<T>,
  done: (result: T) => string | Promise<string>,
  options: { id?: string; install?: boolean } = {},
): Promise<T | undefined> {
  counter += 1;
  const id = options.id ?? `${scope}-${Date.now().toString(36)}-${counter}`;
  tasks.byScope[scope] = {
    id, scope, title, status: "running", message: "", hint: null, lines: [], startedAt: Date.now(), endedAt: null,
    install: options.install ? { ...initialInstall } : null,
  };
  const task = () => tasks.byScope[scope];
  let result: T | undefined;
  let status: TaskStatus;
  let message: string;
  let hint: Hint | null = null;
  try {
    result = await f(id);
    status = "done";
    message = await done(result);
  } catch (e) {
    const code = e instanceof ApiError ? e.code : "failed";
    status = endStatus(code);
    message = status === "cancelled" ? "Cancelled" : errorMessage(e);
    hint = e instanceof ApiError ? e.hint : null;
    result = undefined;
  }
  const t = task();
  // A newer task in the same scope replaced this one: leave it alone.
  if (t && t.id === id) {
    t.status = status;
    t.message = message;
    t.hint = hint;
    t.endedAt = Date.now();
    if (t.install && status === "done") t.install = { ...t.install, phase: "done" };
    if (t.install && status !== "done") t.install = { ...t.install, phase: status === "cancelled" ? "cancelled" : "failed" };
  }
  tasks.generation += 1;
  return result;
}

/** Install a runtime from the catalog as the task of its scope. */
export function installRuntime(key: string, version: string): Promise<unknown> {
  return runTask(runtimeScope(key), `Install Python ${version}`, () => api.runtimes.install(key),
    (r) => `Installed Python ${r.version} at ${r.path}`, { install: true });
}

/** Create or repair the admin environment (the task of the Environments page). */
export function repairAdmin(): Promise<unknown> {
  return runTask("environments", "Repair the admin environment", (task) => api.environments.repairAdmin(task),
    (r) => `The admin environment is ready: Python ${r.python_version ?? "?"}, ${r.packages} packages`);
}
