import { describe, expect, it } from "vitest";
import {
  applyChunk, emptyHistory, forgetPlace, loadPlace, newLiveCall, remember, resumeFrom, savePlace, step,
  type PlaceStore,
} from "./console";

describe("console history", () => {
  it("walks back and forth and keeps the draft", () => {
    let h = remember(remember(remember(emptyHistory, "a = 1"), "a"), "a");
    expect(h.items).toEqual(["a = 1", "a"]);
    let r = step(h, "dra", -1);
    expect(r.text).toBe("a");
    r = step(r.history, r.text, -1);
    expect(r.text).toBe("a = 1");
    r = step(r.history, r.text, -1);
    expect(r.text).toBe("a = 1");
    r = step(r.history, r.text, 1);
    r = step(r.history, r.text, 1);
    expect(r.text).toBe("dra");
    r = step(r.history, r.text, 1);
    expect(r.text).toBe("dra");
    h = remember(r.history, "   ");
    expect(h.items.length).toBe(2);
  });
});

describe("live calls", () => {
  const memory = (): PlaceStore & { data: Map<string, string> } => {
    const data = new Map<string, string>();
    return {
      data,
      getItem: (k) => data.get(k) ?? null,
      setItem: (k, v) => void data.set(k, v),
      removeItem: (k) => void data.delete(k),
    };
  };

  it("shows each chunk once, in order, merging runs of one stream", () => {
    let c = newLiveCall("app-1", "train()");
    c = applyChunk(c, "app-1", 1, "stdout", "a\n");
    c = applyChunk(c, "app-1", 2, "stdout", "b\n");
    c = applyChunk(c, "app-1", 2, "stdout", "b\n"); // again (a re-attach): ignored
    c = applyChunk(c, "app-2", 3, "stdout", "other call\n");
    c = applyChunk(c, "app-1", 3, "stderr", "warn\n");
    expect(c.chunks).toEqual([{ stream: "stdout", data: "a\nb\n" }, { stream: "stderr", data: "warn\n" }]);
    expect(c.lastSeq).toBe(3);
  });

  it("a reopened console follows the running call from the last seq it showed", () => {
    const store = memory();
    let c = newLiveCall("app-1", "train()");
    c = applyChunk(c, "app-1", 1, "stdout", "epoch 1\n");
    c = applyChunk(c, "app-1", 2, "stdout", "epoch 2\n");
    savePlace(store, "b1", c);
    // The window closes; the call goes on; the window opens again.
    const calls = [{ call: "c1", state: "done" }, { call: "app-1", state: "running" }];
    const from = resumeFrom(calls, loadPlace(store, "b1"));
    expect(from).toEqual({ call: "app-1", input: "train()", after: 2 });
    let again = newLiveCall(from!.call, from!.input, from!.after);
    again = applyChunk(again, "app-1", 1, "stdout", "epoch 1\n");
    again = applyChunk(again, "app-1", 3, "stdout", "epoch 3\n");
    expect(again.chunks).toEqual([{ stream: "stdout", data: "epoch 3\n" }]);
    expect(again.resumedAfter).toBe(2);
    // A running call this console did not start: from its first event.
    expect(resumeFrom([{ call: "c9", state: "running" }], loadPlace(store, "b1"))).toEqual({ call: "c9", input: "", after: 0 });
    expect(resumeFrom([{ call: "app-1", state: "done" }], loadPlace(store, "b1"))).toBeNull();
    forgetPlace(store, "b1");
    expect(loadPlace(store, "b1")).toBeNull();
    store.setItem("beep.console.live.b2", "not json");
    expect(loadPlace(store, "b2")).toBeNull();
  });
});
