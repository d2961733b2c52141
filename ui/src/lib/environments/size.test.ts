import { describe, expect, it } from "vitest";
import { render } from "svelte/server";
import SizeCell from "./SizeCell.svelte";

/** The cell's markup and its text (tags and Svelte's hydration comments removed). */
function cell(bytes: number | undefined) {
  const html = render(SizeCell, { props: { bytes } }).body;
  return { html, text: html.replace(/<[^>]*>/g, "").trim() };
}

describe("environment size cell", () => {
  it("shows the bytes human-readable and keeps the exact count", () => {
    const known = cell(23_456_789);
    expect(known.text).toBe("22 MB");
    expect(known.html).toContain('data-testid="env-size"');
    expect(known.html).toContain('data-bytes="23456789"');
    expect(cell(1536).text).toBe("1.5 KB");
    expect(cell(0).text).toBe("0 B");
  });
  it("shows a placeholder until the size is measured", () => {
    const pending = cell(undefined);
    expect(pending.text).toBe("…");
    expect(pending.html).toContain('data-bytes=""');
  });
});
