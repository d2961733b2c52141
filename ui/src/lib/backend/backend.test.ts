import { describe, expect, it, vi } from "vitest";

// The generated bindings are mocked: this module is the only one that imports them.
vi.mock("../../bindings", () => ({
  commands: {
    runtimesList: async () => ({ status: "ok", data: [{ key: "k" }] }),
    runtimeRemove: async () => ({ status: "error", error: { code: "invalid", message: "Runtime `k` is adopted", hint: null } }),
    runtimeInstall: async () => ({ status: "error", error: { code: "failed", message: "No default runtime is set", hint: "install_runtime" } }),
    runtimeSetDefault: async () => {
      throw "Command runtime_set_default not found";
    },
  },
  events: {},
}));

import { api, ApiError, attempt, errorMessage, failure } from "./index";

describe("backend wrapper", () => {
  it("unwraps ok results", async () => {
    expect(await api.runtimes.list()).toEqual([{ key: "k" }]);
  });
  it("throws {code, message} errors as ApiError", async () => {
    const e = await api.runtimes.remove("k").catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe("invalid");
    expect(errorMessage(e)).toBe("Runtime `k` is adopted");
  });
  it("attempt gives null on success and the core's message on failure", async () => {
    expect(await attempt(() => api.runtimes.list())).toBeNull();
    expect(await attempt(() => api.runtimes.remove("k"))).toEqual({ message: "Runtime `k` is adopted", hint: null });
  });
  it("keeps the core's hint beside its message", async () => {
    const e = await api.runtimes.install("3.12").catch((x) => x);
    expect(e.hint).toBe("install_runtime");
    expect(failure(e)).toEqual({ message: "No default runtime is set", hint: "install_runtime" });
  });
  it("turns framework rejections into `failed`", async () => {
    const e = await api.runtimes.setDefault("k").catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe("failed");
  });
});
