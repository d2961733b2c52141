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

  it("a reopened console replays the running call from its journal: each seq once, marked where the closed window left off", () => {
    const store = memory();
    let c = newLiveCall("app-1", "train()");
    c = applyChunk(c, "app-1", 1, "stdout", "epoch 1\n");
    c = applyChunk(c, "app-1", 2, "stdout", "epoch 2\n");
    savePlace(store, "b1", c);
    // The window closes; the call goes on; the window opens again.
    const calls = [{ call: "c1", state: "done" }, { call: "app-1", state: "running" }];
    const from = resumeFrom(calls, loadPlace(store, "b1"));
    expect(from).toEqual({ call: "app-1", input: "train()", leftOff: 2 });
    let again = newLiveCall(from!.call, from!.input, from!.leftOff);
    // `attach` after 0 replays the journal; a stream still open (this same app, the page
    // shown again) delivers some seqs a second time: each is shown once.
    for (const [seq, data] of [[1, "epoch 1\n"], [2, "epoch 2\n"], [1, "epoch 1\n"], [3, "epoch 3\n"], [2, "epoch 2\n"], [4, "epoch 4\n"]] as const) {
      again = applyChunk(again, "app-1", seq, "stdout", data);
    }
    expect(again.chunks).toEqual([{ stream: "stdout", data: "epoch 1\nepoch 2\n" }, { stream: "stdout", data: "epoch 3\nepoch 4\n" }]);
    expect(again.resumedAt).toBe(1);
    expect(again.resumedAfter).toBe(2);
    expect(again.lastSeq).toBe(4);
    // The place was lost (or never written): the same replay, no mark.
    let lost = newLiveCall("app-1", "(call app-1)", resumeFrom(calls, null)!.leftOff);
    for (const seq of [1, 2, 3]) lost = applyChunk(lost, "app-1", seq, "stdout", `epoch ${seq}\n`);
    expect(lost.chunks).toEqual([{ stream: "stdout", data: "epoch 1\nepoch 2\nepoch 3\n" }]);
    expect(lost.resumedAt).toBe(-1);
    // A stale place (its last writes lost before the app quit) still shows every seq once.
    let stale = newLiveCall("app-1", "train()", 1);
    for (const seq of [1, 2, 3]) stale = applyChunk(stale, "app-1", seq, "stdout", `epoch ${seq}\n`);
    expect(stale.chunks.map((x) => x.data).join("")).toBe("epoch 1\nepoch 2\nepoch 3\n");
    // A running call this console did not start: from its first event, no mark.
    expect(resumeFrom([{ call: "c9", state: "running" }], loadPlace(store, "b1"))).toEqual({ call: "c9", input: "", leftOff: 0 });
    expect(resumeFrom([{ call: "app-1", state: "done" }], loadPlace(store, "b1"))).toBeNull();
    forgetPlace(store, "b1");
    expect(loadPlace(store, "b1")).toBeNull();
    store.setItem("beep.console.live.b2", "not json");
    expect(loadPlace(store, "b2")).toBeNull();
  });
});

import { missedBefore, shownAllBefore } from "./console";

describe("what the window missed", () => {
  it("sees a gap before an event and an end that came early", () => {
    let c = newLiveCall("c1", "x");
    expect(missedBefore(c, 1)).toBe(false);
    c = applyChunk(c, "c1", 1, "stdout", "a\n");
    c = applyChunk(c, "c1", 2, "stdout", "b\n");
    expect(missedBefore(c, 3)).toBe(false);
    expect(missedBefore(c, 2)).toBe(false); // shown already: dropped by applyChunk
    expect(missedBefore(c, 4)).toBe(true); // seq 3 never came
    // A notice of dropped events 3..9 follows seq 2 directly.
    expect(missedBefore(c, 3)).toBe(false);
    expect(shownAllBefore(c, 3)).toBe(true); // the end comes after seq 2
    expect(shownAllBefore(c, 4)).toBe(false); // seq 3 was not shown
    expect(shownAllBefore(c, null)).toBe(true);
  });
});
