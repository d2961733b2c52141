import { describe, expect, it } from "vitest";
import { withoutCliAdvice } from "./advice";

describe("CLI advice in core messages", () => {
  it("turns `run beep-host init` into the default-runtime button", () => {
    const r = withoutCliAdvice("Failed to find a runtime for environment `admin`: No default runtime is set; run `beep-host init` or `beep-host runtime default <key>`");
    expect(r).toEqual({ text: "Failed to find a runtime for environment `admin`: No default runtime is set", fix: "default-runtime" });
  });
  it("turns `beep-host venv admin` into the repair button", () => {
    const r = withoutCliAdvice("The gRPC transport needs grpcio. Run `beep-host venv admin` and use the admin environment");
    expect(r.fix).toBe("repair-admin");
    expect(r.text).not.toContain("beep-host");
  });
  it("leaves other messages alone", () => {
    expect(withoutCliAdvice("Failed to install `x`: boom")).toEqual({ text: "Failed to install `x`: boom", fix: null });
  });
  it("never leaves a command in the text", () => {
    for (const m of [
      "Runtime `k` is broken: gone; remove it with `beep-host runtime remove k`",
      "No runtime matches `3.99`; see `beep-host runtime list` (and `--available`)",
      "No runtimes. Install one with `beep-host init` or `beep-host runtime install 3.12`.",
    ]) expect(withoutCliAdvice(m).text).not.toContain("beep-host");
  });
});
