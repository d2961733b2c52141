import { describe, expect, it } from "vitest";
import { elapsed, endStatus, packageChanges } from "./status";

describe("task status", () => {
  it("a cancel is neutral, other errors fail", () => {
    expect(endStatus("cancelled")).toBe("cancelled");
    expect(endStatus("failed")).toBe("failed");
    expect(endStatus("busy")).toBe("failed");
  });

  it("names what a package task changed", () => {
    const before = [{ name: "six", version: "1.16.0" }, { name: "Python_Dateutil", version: "2.8" }];
    const after = [{ name: "python-dateutil", version: "2.9" }, { name: "idna", version: "3.7" }];
    expect(packageChanges(before, after)).toBe("added idna 3.7; changed python-dateutil 2.8 → 2.9; removed six 1.16.0");
    expect(packageChanges(before, before)).toBe("nothing changed");
  });

  it("formats elapsed time", () => {
    expect(elapsed(0, 999)).toBe("0 s");
    expect(elapsed(0, 125_000)).toBe("2 min 5 s");
  });
});
