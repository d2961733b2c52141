import { describe, expect, it } from "vitest";
import { pushSamples, sparkline, stateTone } from "./series";
import type { BackendRow } from "../backend";

const row = (id: string, state: string, cpu: number, rss: number): BackendRow => ({
  id, env: "e", transport: "pipe", address: null, state, pid: 1, cpu_percent: cpu, rss_bytes: rss,
  uptime_secs: 0, restarts: 0, last_exit: null, own: true,
});

describe("backend series", () => {
  it("colours states", () => {
    expect(stateTone("ready")).toBe("ok");
    expect(stateTone("starting")).toBe("busy");
    expect(stateTone("restarting")).toBe("busy");
    expect(stateTone("crashed")).toBe("bad");
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
