import { describe, expect, it } from "vitest";
import type { BackendDecl, ProjectBackend, ProjectView, UpSummary } from "../backend";
import { downMessage, facts, folderName, formatHealth, memory, rows, upMessage } from "./project";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const decl = (name: string, extra: Partial<BackendDecl> = {}): BackendDecl => ({
  name, transport: "pipe", restart: "never", preload: null, health: null, memory_limit: null, env: {}, ...extra,
});
const live = (name: string, extra: Partial<ProjectBackend> = {}): ProjectBackend => ({
  name, declared: true, id: "b1", state: "ready", pid: 42, address: "pipe", healthy: null, rss_bytes: 50 * MiB,
  memory_limit: null, current: true, ...extra,
});
const view = (backends: BackendDecl[], status: ProjectBackend[], extra: Partial<ProjectView["status"]> = {}): ProjectView => ({
  dir: "/p/vision",
  declaration: { python: "3.12", environment: "vision", requirements: [], requirements_file: null, backends },
  status: {
    runtime: "cpython-3.12.7-linux-x86_64-gnu", runtime_present: true, lock_present: true, lock_current: true,
    environment_present: true, environment_in_sync: true, backends: status, up_to_date: true, ...extra,
  },
});

describe("projects page state", () => {
  it("joins each declared backend with what runs, and lists the undeclared ones after", () => {
    const v = view(
      [decl("model", { health: { every_ms: 5000, timeout_ms: 2000, failures: 3 }, memory_limit: 2 * GiB }), decl("web"), decl("idle")],
      [
        live("model", { healthy: false, state: "unhealthy", memory_limit: 2 * GiB }),
        live("web", { current: false }),
        live("idle", { state: "stopped", pid: null, rss_bytes: null }),
        live("old", { declared: false, current: false }),
      ],
    );
    const r = rows(v);
    expect(r.map((x) => x.name)).toEqual(["model", "web", "idle", "old"]);
    expect(r[0]).toMatchObject({ state: "unhealthy", health: "unhealthy", pending: null });
    expect(r[0].memory.text).toBe("50 MB / 2.0 GB");
    expect(r[1]).toMatchObject({ state: "ready", health: "no probe", pending: "declaration changed: Up restarts it" });
    expect(r[2]).toMatchObject({ state: "stopped", health: "—", pending: "Up starts it" });
    expect(r[2].memory.text).toBe("—");
    expect(r[3]).toMatchObject({ decl: null, pending: "no longer declared: Up stops it" });
  });

  it("shows a declared backend never started as not running", () => {
    const r = rows(view([decl("model", { memory_limit: 512 * MiB })], [live("model", { id: null, state: null, pid: null, rss_bytes: null, current: false })]));
    expect(r[0]).toMatchObject({ state: "not running", pending: "Up starts it" });
    expect(r[0].memory.text).toBe("limit 512 MB");
  });

  it("tells memory over its limit", () => {
    expect(memory(3 * GiB, 2 * GiB)).toMatchObject({ over: true, ratio: 1.5 });
    expect(memory(1 * GiB, 2 * GiB)).toMatchObject({ over: false, ratio: 0.5 });
    expect(memory(1 * MiB, null)).toEqual({ text: "1.0 MB", ratio: null, over: false });
  });

  it("states runtime, lock and environment", () => {
    expect(facts(view([], [])).map((f) => f.tone)).toEqual(["ok", "ok", "ok", "ok"]);
    const fresh = facts(view([], [], {
      runtime: null, runtime_present: false, lock_present: false, lock_current: false,
      environment_present: false, environment_in_sync: false, up_to_date: false,
    }));
    expect(fresh.map((f) => f.value)).toEqual([
      "Python 3.12 (not locked yet)", "no beep.lock", "vision: missing", "Up has work to do",
    ]);
    const stale = facts(view([], [], { lock_current: false, environment_in_sync: false, up_to_date: false }));
    expect(stale[1].value).toBe("beep.lock is stale (beep.toml changed)");
    expect(stale[2].value).toBe("vision: not in sync with the lock");
  });

  it("says what up and down did", () => {
    const up: UpSummary = {
      dir: "/p/vision", environment: "vision", runtime: "cpython-3.12.7", runtime_installed: true, locked: true,
      environment_created: true, environment_synced: true,
      backends: [
        { name: "model", action: "started", id: "b1", address: "pipe" },
        { name: "web", action: "unchanged", id: "b2", address: null },
      ],
    };
    expect(upMessage(up)).toBe(
      "Installed runtime cpython-3.12.7; wrote beep.lock; created environment “vision”; synced “vision” to the lock; started model",
    );
    const nothing = { ...up, runtime_installed: false, locked: false, environment_created: false, environment_synced: false,
      backends: up.backends.map((b) => ({ ...b, action: "unchanged" as const })) };
    expect(upMessage(nothing)).toBe("Nothing to do: environment “vision” in sync, 2 backends running as declared");
    expect(downMessage([{ name: "model", action: "stopped", id: "b1", address: null }])).toBe("Stopped model");
    expect(downMessage([])).toBe("Nothing to stop: no backend of this project was running");
  });

  it("formats probes and folder names", () => {
    expect(formatHealth({ every_ms: 5000, timeout_ms: 500, failures: 1 })).toBe("every 5 s, timeout 500 ms, 1 failure");
    expect(formatHealth(null)).toBe("—");
    expect(folderName("/home/me/vision/")).toBe("vision");
  });
});
