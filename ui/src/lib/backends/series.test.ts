import { describe, expect, it } from "vitest";
import { pushSamples, sparkScale, stateTone } from "./series";
import type { BackendRow, BackendState } from "../backend";

const row = (id: string, state: BackendState, cpu: number, rss: number): BackendRow => ({
  id, env: "e", runtime: null, transport: "pipe", address: null, state, pid: 1, cpu_percent: cpu, rss_bytes: rss,
  uptime_secs: 0, restarts: 0, last_exit: null, own: true,
});

describe("backend series", () => {
  it("colours states", () => {
    expect(stateTone("ready")).toBe("ok");
    expect(stateTone("starting")).toBe("busy");
    expect(stateTone("restarting")).toBe("busy");
    expect(stateTone("crashed")).toBe("bad");
    expect(stateTone("unhealthy")).toBe("bad");
    expect(stateTone("stopped")).toBe("idle");
  });
  it("scales a sparkline into the whole box by time, max at the top", () => {
    const at = (secs: number, value: number) => ({ at: 1_000_000 + secs * 1000, value });
    // First sample at the left edge, last at the right edge, whatever the span.
    expect(sparkScale([at(0, 0), at(10, 50), at(20, 100)], 100, 20)).toEqual({ points: "0,20 50,10 100,0", max: 100, spanSecs: 20 });
    // Placed by time, not by count: a gap stays a gap.
    expect(sparkScale([at(0, 10), at(1, 10), at(4, 20)], 100, 20).points).toBe("0,10 25,10 100,0");
    // The floor keeps a quiet series low in the box, and is the max label.
    expect(sparkScale([at(0, 1), at(30, 2)], 200, 40, 5)).toEqual({ points: "0,32 200,24", max: 5, spanSecs: 30 });
    // One sample: a level line across the whole width.
    expect(sparkScale([at(0, 5)], 100, 20, 10).points).toBe("0,10 100,10");
    expect(sparkScale([], 100, 20)).toEqual({ points: "", max: 0, spanSecs: 0 });
    expect(sparkScale([at(0, 0), at(1, 0)], 10, 10).points).toBe("0,10 10,10");
  });
  it("keeps the last minutes and drops gone backends", () => {
    let h = pushSamples(new Map(), [row("a", "ready", 1, 10), row("b", "ready", 2, 20)], 0);
    h = pushSamples(h, [row("a", "ready", 3, 30)], 4 * 60_000);
    expect(h.get("a")?.length).toBe(2);
    expect(h.has("b")).toBe(false);
    h = pushSamples(h, [row("a", "stopped", 0, 0)], 6 * 60_000);
    expect(h.get("a")?.map((s) => s.cpu)).toEqual([3]);
  });
});

import { mergeRows } from "./series";

describe("ended backends", () => {
  it("keep their row as stopped, with no pid, until cleared", () => {
    const a = row("a", "ready", 1, 10);
    const b = row("b", "ready", 1, 10);
    let m = mergeRows([], [a, b], new Map());
    expect(m.rows.map((r) => r.id)).toEqual(["a", "b"]);
    m = mergeRows(m.rows, [a], m.ended);
    expect(m.rows.find((r) => r.id === "b")).toMatchObject({ state: "stopped", pid: null, rss_bytes: 0 });
    m = mergeRows(m.rows, [a], m.ended);
    expect(m.rows.length).toBe(2);
    const crashed = { ...a, state: "crashed" as const };
    m = mergeRows([crashed, ...m.rows.slice(1)], [], m.ended);
    expect(m.rows.find((r) => r.id === "a")?.state).toBe("crashed");
    // Cleared: an empty `ended` forgets them.
    expect(mergeRows([], [], new Map()).rows).toEqual([]);
  });
});

import { placeLabel, placePhrase, shortEndpoint } from "./series";

describe("table order and endpoints", () => {
  const row = (id: string) => ({ id, env: "e", runtime: null, transport: "pipe" as const, address: null, state: "ready" as const, pid: 1, cpu_percent: 0, rss_bytes: 0, uptime_secs: 0, restarts: 0, last_exit: null, own: false });
  it("keeps rows in place when the daemon lists them in another order", () => {
    let m = mergeRows([], [row("a"), row("b")], new Map());
    m = mergeRows(m.rows, [row("c"), row("b"), row("a")], m.ended);
    expect(m.rows.map((r) => r.id)).toEqual(["a", "b", "c"]);
    m = mergeRows(m.rows, [row("c"), row("a")], m.ended);
    expect(m.rows.map((r) => [r.id, r.state])).toEqual([["a", "ready"], ["b", "stopped"], ["c", "ready"]]);
  });
  it("names the environment, or the runtime a backend runs on", () => {
    expect(placeLabel({ env: "admin", runtime: null })).toBe("admin");
    expect(placeLabel({ env: "", runtime: "embedded-3.13.2-windows-x86_64" })).toBe("runtime embedded-3.13.2-windows-x86_64");
    expect(placePhrase({ env: "admin", runtime: null })).toBe("in admin");
    expect(placePhrase({ env: "", runtime: "cpython-3.12.7" })).toBe("on runtime cpython-3.12.7");
  });
  it("shortens socket paths, keeps addresses", () => {
    expect(shortEndpoint("/tmp/x/home/state/run/8a2bd7a6.sock")).toBe("8a2bd7a6.sock");
    expect(shortEndpoint("127.0.0.1:4321")).toBe("127.0.0.1:4321");
    expect(shortEndpoint(null)).toBe("—");
  });
});

import { applyChange } from "./series";

describe("state changes", () => {
  const live = (id: string): BackendRow => ({
    id, env: "e", runtime: null, transport: "pipe", address: "/run/x.sock", state: "ready", pid: 4242, cpu_percent: 37.5,
    rss_bytes: 12_000_000, uptime_secs: 90, restarts: 0, last_exit: null, own: true,
  });
  const exit = { text: "signal 9 (SIGKILL)", at: 1_700_000_000, failure: true };
  it("a crash clears the pid, CPU, memory and uptime at once", () => {
    const { rows } = applyChange([live("a"), live("b")], new Map(), { id: "a", state: "crashed", pid: null, last_exit: exit });
    expect(rows[0]).toMatchObject({ state: "crashed", pid: null, cpu_percent: 0, rss_bytes: 0, uptime_secs: 0, last_exit: exit });
    // The other row keeps its figures.
    expect(rows[1]).toEqual(live("b"));
  });
  it("so does a stop, and a lost backend; an event naming the old pid does not bring it back", () => {
    for (const state of ["stopped", "lost"] as const) {
      const { rows } = applyChange([live("a")], new Map(), { id: "a", state, pid: 4242, last_exit: null });
      expect(rows[0]).toMatchObject({ state, pid: null, cpu_percent: 0, rss_bytes: 0 });
    }
  });
  it("a live change keeps the figures until the next tick, with the new pid", () => {
    const { rows } = applyChange([live("a")], new Map(), { id: "a", state: "restarting", pid: 5151, last_exit: exit });
    expect(rows[0]).toMatchObject({ state: "restarting", pid: 5151, rss_bytes: 12_000_000 });
  });
  it("rows kept after the supervisor forgot them follow the event too", () => {
    const ended = new Map([["a", { ...live("a"), state: "stopped" as const }]]);
    const next = applyChange([], ended, { id: "a", state: "crashed", pid: null, last_exit: exit });
    expect(next.ended.get("a")).toMatchObject({ state: "crashed", pid: null, rss_bytes: 0 });
    expect(ended.get("a")?.state).toBe("stopped");
  });
});

import { placeChoice, RUNTIME_CHOICE } from "./series";

describe("the start form's Run in choice", () => {
  it("is an environment by its name, or a runtime by its key", () => {
    expect(placeChoice("admin")).toEqual({ env: "admin", runtime: null });
    expect(placeChoice(RUNTIME_CHOICE + "embedded-3.13.2-windows-x86_64")).toEqual({
      env: "",
      runtime: "embedded-3.13.2-windows-x86_64",
    });
    // A key with colons of its own (a path given as a runtime) keeps them.
    expect(placeChoice(RUNTIME_CHOICE + "C:\\Python\\python.exe").runtime).toBe("C:\\Python\\python.exe");
  });
});
