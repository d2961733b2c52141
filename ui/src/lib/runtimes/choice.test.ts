import { describe, expect, it } from "vitest";
import { compareVersions, newestAvailable } from "./choice";

const entry = (version: string, build: string) => ({ key: `${version}-${build}`, version, build, file_name: "", installed: false });

describe("recommended runtime", () => {
  it("compares versions numerically", () => {
    expect(compareVersions("3.10.2", "3.9.18")).toBeGreaterThan(0);
    expect(compareVersions("3.12", "3.12.0")).toBe(0);
  });
  it("picks the newest version, then the newest build", () => {
    expect(newestAvailable([entry("3.9.18", "2024"), entry("3.12.1", "2023"), entry("3.12.1", "2024"), entry("3.10.13", "2025")])?.key).toBe("3.12.1-2024");
    expect(newestAvailable([])).toBeNull();
  });
});

import { endOfLife, runtimeLabel } from "./choice";

describe("runtime marks", () => {
  it("marks 3.6 to 3.8 as past their end of life", () => {
    expect(["3.6.15", "3.7.16", "3.8.18"].every(endOfLife)).toBe(true);
    expect(["3.9.18", "3.12.1", "2.7.18", "3.10.0"].some(endOfLife)).toBe(false);
  });
  it("names runtimes without their internal key", () => {
    expect(runtimeLabel({ version: "3.11.7", kind: "adopted" })).toBe("Python 3.11.7 (found on this machine)");
  });
});

import { kindLabel, removable } from "./choice";

describe("runtime kinds", () => {
  it("says what each kind is, and the app removes only what it installed", () => {
    expect(runtimeLabel({ version: "3.12.1", kind: "managed" })).toBe("Python 3.12.1 (managed)");
    expect(runtimeLabel({ version: "3.11.2", kind: "adopted" })).toBe("Python 3.11.2 (found on this machine)");
    expect(kindLabel("embedded")).toBe("embedded package");
    expect(removable("managed")).toBe(true);
    expect(removable("embedded")).toBe(true);
    expect(removable("adopted")).toBe(false);
  });
});
