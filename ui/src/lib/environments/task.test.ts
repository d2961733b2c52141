import { describe, expect, it, vi } from "vitest";

// The bindings are mocked at the one wrapper module.
const listeners: ((p: { task: string; line: string }) => void)[] = [];
vi.mock("../backend", () => ({
  on: {
    taskOutput: async (cb: (p: { task: string; line: string }) => void) => {
      listeners.push(cb);
      return () => listeners.splice(listeners.indexOf(cb), 1);
    },
  },
}));

import { splitRequirements, withOutput } from "./task";

describe("environment tasks", () => {
  it("splits requirements", () => {
    expect(splitRequirements(" numpy  pandas>=2\nrequests, ")).toEqual(["numpy", "pandas>=2", "requests"]);
    expect(splitRequirements("")).toEqual([]);
  });
  it("collects only its own task's lines and unsubscribes", async () => {
    const lines: string[] = [];
    const result = await withOutput("create", (l) => lines.push(l), async (task) => {
      for (const cb of listeners) {
        cb({ task, line: "mine" });
        cb({ task: "other", line: "not mine" });
      }
      return 7;
    });
    expect(result).toBe(7);
    expect(lines).toEqual(["mine"]);
    expect(listeners.length).toBe(0);
  });
});
