import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatEta, formatPercent, formatSpeed } from "./index";

describe("format", () => {
  it("bytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(10 * 1024 * 1024)).toBe("10 MB");
    expect(formatBytes(3.25 * 1024 ** 3)).toBe("3.3 GB");
    expect(formatBytes(-1)).toBe("—");
    expect(formatBytes(null)).toBe("—");
  });
  it("speed", () => {
    expect(formatSpeed(2.5 * 1024 * 1024)).toBe("2.5 MB/s");
    expect(formatSpeed(0)).toBe("—");
  });
  it("durations and time left", () => {
    expect(formatDuration(5)).toBe("5s");
    expect(formatDuration(185)).toBe("3m 05s");
    expect(formatDuration(7260)).toBe("2h 01m");
    expect(formatDuration(90000)).toBe("1d 1h");
    expect(formatEta(1000, 100)).toBe("10s");
    expect(formatEta(1000, 0)).toBe("—");
    expect(formatEta(null, 10)).toBe("—");
  });
  it("percent", () => {
    expect(formatPercent(12.345)).toBe("12.3%");
    expect(formatPercent(undefined)).toBe("—");
  });
});
