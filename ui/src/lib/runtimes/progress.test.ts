import { describe, expect, it } from "vitest";
import { initialInstall, installFraction, reduceInstall, remainingBytes } from "./progress";

describe("install progress", () => {
  it("folds a whole install and reaches 100%", () => {
    let s = reduceInstall(initialInstall, { phase: "resolve", what: "3.11" }, 0);
    expect(s.phase).toBe("resolve");
    s = reduceInstall(s, { phase: "download", bytes: 0, total: 1000 }, 1000);
    s = reduceInstall(s, { phase: "download", bytes: 500, total: 1000 }, 2000);
    expect(s.speed).toBe(500);
    expect(remainingBytes(s)).toBe(500);
    const half = installFraction(s);
    expect(half).toBeGreaterThan(0.3);
    expect(half).toBeLessThan(0.5);
    s = reduceInstall(s, { phase: "download", bytes: 1000, total: 1000 }, 3000);
    expect(s.speed).toBeCloseTo(500);
    s = reduceInstall(s, { phase: "verify" }, 3000);
    s = reduceInstall(s, { phase: "extract", entries: 5, total: 10 }, 3000);
    expect(installFraction(s)).toBeGreaterThan(0.82);
    s = reduceInstall(s, { phase: "finalize" }, 3000);
    s = reduceInstall(s, { phase: "done", message: "Installed" }, 3000);
    expect(s.phase).toBe("done");
    expect(installFraction(s)).toBe(1);
  });
  it("unknown total keeps the bar at the phase start and no ETA", () => {
    const s = reduceInstall(initialInstall, { phase: "download", bytes: 10, total: null }, 0);
    expect(installFraction(s)).toBeCloseTo(0.02);
    expect(remainingBytes(s)).toBeNull();
  });
});
