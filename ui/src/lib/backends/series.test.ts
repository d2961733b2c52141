import { describe, expect, it } from "vitest";
import { pushSamples, sparkline, stateTone } from "./series";
import type { BackendRow, BackendState } from "../backend";

const row = (id: string, state: BackendState, cpu: number, rss: number): BackendRow => ({
  id, env: "e", transport: "pipe", address: null, state, pid: 1, cpu_percent: cpu, rss_bytes: rss,
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
  it("scales a sparkline into the box, max at the top", () => {
    expect(sparkline([0, 50, 100], 100, 20)).toBe("0,20 50,10 100,0");
    expect(sparkline([], 100, 20)).toBe("");
    expect(sparkline([5], 100, 20, 10)).toBe("100,10");
    expect(sparkline([0, 0], 10, 10)).toBe("0,10 10,10");
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

import { shortEndpoint } from "./series";

describe("table order and endpoints", () => {
  const row = (id: string) => ({ id, env: "e", transport: "pipe" as const, address: null, state: "ready" as const, pid: 1, cpu_percent: 0, rss_bytes: 0, uptime_secs: 0, restarts: 0, last_exit: null, own: false });
  it("keeps rows in place when the daemon lists them in another order", () => {
    let m = mergeRows([], [row("a"), row("b")], new Map());
    m = mergeRows(m.rows, [row("c"), row("b"), row("a")], m.ended);
    expect(m.rows.map((r) => r.id)).toEqual(["a", "b", "c"]);
    m = mergeRows(m.rows, [row("c"), row("a")], m.ended);
    expect(m.rows.map((r) => [r.id, r.state])).toEqual([["a", "ready"], ["b", "stopped"], ["c", "ready"]]);
  });
  it("shortens socket paths, keeps addresses", () => {
    expect(shortEndpoint("/tmp/x/home/state/run/8a2bd7a6.sock")).toBe("8a2bd7a6.sock");
    expect(shortEndpoint("127.0.0.1:4321")).toBe("127.0.0.1:4321");
    expect(shortEndpoint(null)).toBe("—");
  });
});
