import { describe, expect, it } from "vitest";
import { splitRequirements } from "./task";

describe("environment forms", () => {
  it("splits requirements", () => {
    expect(splitRequirements(" numpy  pandas>=2\nrequests, ")).toEqual(["numpy", "pandas>=2", "requests"]);
    expect(splitRequirements("")).toEqual([]);
  });
});
