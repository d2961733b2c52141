// The design system is used everywhere: spacing, type sizes and radii come from app.css's
// custom properties, never a component's own px; dark mode defines every colour light does.
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const src = fileURLToPath(new URL("../..", import.meta.url));
// The console belongs to another piece of work (live output); it follows the scale there.
const NOT_OURS = new Set(["lib/backends/Console.svelte"]);
const SCALED = /(?:^|[\s;{"])((?:padding|margin)(?:-(?:top|right|bottom|left|inline|block))?|gap|row-gap|column-gap|font-size|border-radius)\s*:\s*([^;}"]+)/g;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".svelte") ? [join(dir, e.name)] : [],
  );
}

describe("design system", () => {
  it("components take spacing, type and radii from the scale", () => {
    const ad = [];
    for (const file of files(src)) {
      const name = relative(src, file);
      if (NOT_OURS.has(name)) continue;
      for (const m of readFileSync(file, "utf8").matchAll(SCALED)) {
        if (/\d(px|rem|em|pt)\b/.test(m[2])) ad.push(`${name}: ${m[1]}: ${m[2].trim()}`);
      }
    }
    expect(ad).toEqual([]);
  });

  it("dark mode defines every colour of the light scheme", () => {
    const css = readFileSync(join(src, "app.css"), "utf8");
    const dark = /@media \(prefers-color-scheme: dark\)\s*\{([\s\S]*?)\n\}/.exec(css)?.[1] ?? "";
    const light = css.slice(0, css.indexOf("@media"));
    const colours = (block: string) => [...block.matchAll(/(--[\w-]+):\s*#[0-9a-f]{6}/gi)].map((m) => m[1]).sort();
    expect(colours(light).length).toBeGreaterThan(10);
    expect(colours(dark)).toEqual(colours(light));
    // One status palette: badges, task lines and sparklines use it.
    for (const s of ["ok", "busy", "bad", "idle"]) expect(colours(light)).toContain(`--status-${s}`);
  });
});
