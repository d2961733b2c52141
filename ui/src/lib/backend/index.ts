// The one module that talks to Tauri: wraps the generated bindings and event
// subscriptions. Components import from here, never from `bindings.ts` or `@tauri-apps/api`.
import { commands, events } from "../../bindings";
import type {
  AppError,
  ErrorCode,
  Hint,
  InstallProgress,
  TaskOutput,
  BackendChanged,
  BackendsTick,
  BackendLog,
  CloseRequested,
  CallOutput,
  CallEnded,
  CreateEnv,
  StartBackend,
  SettingsUpdate,
} from "../../bindings";

export type * from "../../bindings";

/** A command's `{code, message}` error, thrown so callers can `try/catch`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  /** What the UI can offer to do about it (the core's hint), shown as a button. */
  readonly hint: Hint | null;
  constructor(error: AppError) {
    super(error.message);
    this.code = error.code;
    this.hint = error.hint ?? null;
  }
}

/** A failure as shown: the message and, when the core knows one, the hint for its button. */
export interface Failure {
  message: string;
  hint: Hint | null;
}

type Result<T> = { status: "ok"; data: T } | { status: "error"; error: AppError };

async function unwrap<T>(result: Promise<Result<T>>): Promise<T> {
  let r: Result<T>;
  try {
    r = await result;
  } catch (e) {
    // Framework failures (unknown command, bad argument) reject with a string.
    throw new ApiError({ code: "failed", message: String(e), hint: null });
  }
  if (r.status === "error") throw new ApiError(r.error);
  return r.data;
}

export const api = {
  runtimes: {
    list: () => unwrap(commands.runtimesList()),
    available: () => unwrap(commands.runtimesAvailable()),
    install: (request: string) => unwrap(commands.runtimeInstall(request)),
    cancelInstall: (request: string) => unwrap(commands.runtimeCancelInstall(request)),
    remove: (key: string) => unwrap(commands.runtimeRemove(key)),
    setDefault: (key: string) => unwrap(commands.runtimeSetDefault(key)),
  },
  environments: {
    list: () => unwrap(commands.envsList()),
    /** Bytes on disk per environment: slower than `list`, so it is asked for after it. */
    sizes: () => unwrap(commands.envsSizes()),
    details: (name: string) => unwrap(commands.envDetails(name)),
    create: (task: string, request: CreateEnv) => unwrap(commands.envCreate(task, request)),
    remove: (name: string, force: boolean) => unwrap(commands.envDelete(name, force)),
    install: (task: string, name: string, requirements: string[]) =>
      unwrap(commands.envInstall(task, name, requirements)),
    uninstall: (task: string, name: string, packages: string[]) =>
      unwrap(commands.envUninstall(task, name, packages)),
    repairAdmin: (task: string) => unwrap(commands.envRepairAdmin(task)),
    /** Why a name is refused (the core's message), or null. */
    checkName: (name: string) => commands.envCheckName(name),
    /** Installed packages that require `pkg`. */
    dependents: (name: string, pkg: string) => unwrap(commands.envDependents(name, pkg)),
  },
  backends: {
    list: () => unwrap(commands.backendsList()),
    start: (request: StartBackend) => unwrap(commands.backendStart(request)),
    stop: (id: string) => unwrap(commands.backendStop(id)),
    restart: (id: string) => unwrap(commands.backendRestart(id)),
    logTail: (id: string) => unwrap(commands.backendLogTail(id)),
    connection: (id: string) => unwrap(commands.backendConnection(id)),
    interrupt: (id: string) => unwrap(commands.backendInterrupt(id)),
    /** Run statements as a live call: its id at once, then `on.callOutput`/`on.callEnded`. */
    execLive: (id: string, code: string, call: string | null) => unwrap(commands.backendExecLive(id, code, call)),
    /** Follow a call again after seq `after`. */
    attach: (id: string, call: string, after: number) => unwrap(commands.backendAttach(id, call, after)),
    calls: (id: string) => unwrap(commands.backendCalls(id)),
    interruptCall: (id: string, call: string) => unwrap(commands.backendInterruptCall(id, call)),
    handles: (id: string) => unwrap(commands.backendHandles(id)),
    release: (id: string, handle: string) => unwrap(commands.backendRelease(id, handle)),
  },
  projects: {
    /** The project folders opened before, the latest first. */
    list: () => unwrap(commands.projectsList()),
    /** Check and remember a folder; its canonical path. */
    open: (dir: string) => unwrap(commands.projectOpen(dir)),
    forget: (dir: string) => unwrap(commands.projectForget(dir)),
    /** The declaration beside the live state (a bad beep.toml throws its file:line error). */
    view: (dir: string) => unwrap(commands.projectView(dir)),
    up: (task: string, dir: string) => unwrap(commands.projectUp(task, dir)),
    down: (task: string, dir: string) => unwrap(commands.projectDown(task, dir)),
    /** The platforms a bundle can carry and this machine's. */
    bundlePlatforms: () => unwrap(commands.bundlePlatforms()),
    /** Write the project's offline bundle to `output` (an absolute .zip path). */
    exportBundle: (task: string, dir: string, output: string, platforms: string[]) =>
      unwrap(commands.projectBundle(task, dir, output, platforms)),
    /** `up --bundle`: verify `bundle`, bring its project up in `dir`, remember the folder. */
    openBundle: (task: string, bundle: string, dir: string) => unwrap(commands.bundleOpen(task, bundle, dir)),
  },
  settings: {
    get: () => unwrap(commands.settingsGet()),
    save: (update: SettingsUpdate) => unwrap(commands.settingsSave(update)),
    check: () => unwrap(commands.configCheck()),
    hostApi: () => unwrap(commands.hostApiStatus()),
  },
  app: {
    /** Quit: stop the backends this window started, or keep them running; `remember` the choice. */
    quit: (stop: boolean, remember: boolean) => unwrap(commands.appQuit(stop, remember)),
  },
};

type Unlisten = () => void;
function listen<T>(event: { listen: (cb: (e: { payload: T }) => void) => Promise<Unlisten> }, cb: (payload: T) => void): Promise<Unlisten> {
  return event.listen((e) => cb(e.payload));
}

/** Event subscriptions; each returns a promise of its unsubscribe function. */
export const on = {
  installProgress: (cb: (p: InstallProgress) => void) => listen(events.installProgress, cb),
  taskOutput: (cb: (p: TaskOutput) => void) => listen(events.taskOutput, cb),
  backendChanged: (cb: (p: BackendChanged) => void) => listen(events.backendChanged, cb),
  backendsTick: (cb: (p: BackendsTick) => void) => listen(events.backendsTick, cb),
  backendLog: (cb: (p: BackendLog) => void) => listen(events.backendLog, cb),
  closeRequested: (cb: (p: CloseRequested) => void) => listen(events.closeRequested, cb),
  callOutput: (cb: (p: CallOutput) => void) => listen(events.callOutput, cb),
  callEnded: (cb: (p: CallEnded) => void) => listen(events.callEnded, cb),
};

/** A message for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The message and hint of any thrown value. */
export function failure(e: unknown): Failure {
  return { message: errorMessage(e), hint: e instanceof ApiError ? e.hint : null };
}

/** Run `f`: null when it succeeded, else the failure to show where it happened. */
export async function attempt(f: () => Promise<unknown>): Promise<Failure | null> {
  try {
    await f();
    return null;
  } catch (e) {
    return failure(e);
  }
}

/** Copy text to the clipboard (the webview's own API; no plugin needed). */
export async function copyText(text: string): Promise<void> {
  await navigator.clipboard.writeText(text);
}
