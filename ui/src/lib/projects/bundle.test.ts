import { describe, expect, it } from "vitest";
import { bundleMessage, exportForm, exportProblem, folderProblem, parentOf, togglePlatform, zipPathProblem } from "./bundle";

describe("bundle paths", () => {
  it("wants an absolute path ending in .zip in a folder that exists", () => {
    expect(zipPathProblem("")).toMatch(/Give the path/);
    expect(zipPathProblem("  ")).toMatch(/Give the path/);
    expect(zipPathProblem("out/b.zip")).toMatch(/absolute path, not “out\/b.zip”/);
    expect(zipPathProblem("/tmp/b.tar.gz")).toMatch(/ending in .zip/);
    expect(zipPathProblem("/tmp/.zip")).toMatch(/ending in .zip/);
    expect(zipPathProblem("/tmp/b.zip")).toBeNull();
    expect(zipPathProblem(" /tmp/B.ZIP ")).toBeNull();
    expect(zipPathProblem("C:\\out\\b.zip")).toBeNull();
    expect(zipPathProblem("/no/such/b.zip", false)).toBe("Folder “/no/such” does not exist");
    expect(zipPathProblem("/tmp/b.zip", true)).toBeNull();
  });

  it("takes the folder part of a path", () => {
    expect(parentOf("/a/b.zip")).toBe("/a");
    expect(parentOf("/b.zip")).toBe("/");
    expect(parentOf("C:\\x\\b.zip")).toBe("C:\\x");
    expect(parentOf("b.zip")).toBe("");
  });

  it("wants an absolute folder to open a bundle into", () => {
    expect(folderProblem("")).toMatch(/Give the folder/);
    expect(folderProblem("proj")).toMatch(/absolute path/);
    expect(folderProblem("/srv/proj")).toBeNull();
  });
});

describe("the export form", () => {
  it("starts beside the project with this platform ticked", () => {
    expect(exportForm("/p/vision/", "linux-x86_64-gnu")).toEqual({
      output: "/p/vision/vision-bundle.zip", platforms: ["linux-x86_64-gnu"],
    });
    expect(exportForm("C:\\p\\vision", "windows-x86_64").output).toBe("C:\\p\\vision\\vision-bundle.zip");
    expect(exportForm("/p/x", null).platforms).toEqual([]);
  });

  it("keeps the platforms in a fixed order and needs one", () => {
    let chosen = togglePlatform(["macos-aarch64"], "linux-x86_64-gnu", true);
    expect(chosen).toEqual(["linux-x86_64-gnu", "macos-aarch64"]);
    chosen = togglePlatform(chosen, "linux-x86_64-gnu", true);
    expect(chosen).toEqual(["linux-x86_64-gnu", "macos-aarch64"]);
    chosen = togglePlatform(chosen, "macos-aarch64", false);
    expect(chosen).toEqual(["linux-x86_64-gnu"]);
    expect(exportProblem({ output: "/p/b.zip", platforms: chosen })).toBeNull();
    expect(exportProblem({ output: "/p/b.zip", platforms: [] })).toBe("Choose at least one platform");
    expect(exportProblem({ output: "b.zip", platforms: chosen })).toMatch(/absolute/);
  });

  it("says what was written, with its size", () => {
    expect(bundleMessage({ path: "/p/b.zip", size: 3 * 2 ** 20, platforms: ["linux-x86_64-gnu", "windows-x86_64"] }))
      .toBe(`Wrote /p/b.zip (3.0 MB) for linux-x86_64-gnu, windows-x86_64`);
  });
});
