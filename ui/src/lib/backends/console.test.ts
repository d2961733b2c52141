import { describe, expect, it } from "vitest";
import { emptyHistory, remember, step } from "./console";

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
