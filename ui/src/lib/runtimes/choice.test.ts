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
