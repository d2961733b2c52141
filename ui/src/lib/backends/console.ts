// The console's input history (↑/↓), as in a shell: pure, unit-tested.

export interface History {
  /** Earlier inputs, oldest first. */
  items: string[];
  /** Index into `items` being shown, or `items.length` for the draft. */
  pos: number;
  /** What was typed before ↑ was first pressed. */
  draft: string;
}

export const emptyHistory: History = { items: [], pos: 0, draft: "" };

/** Remember a run input (not twice in a row) and go back to an empty draft. */
export function remember(h: History, input: string): History {
  const items = input.trim() && h.items[h.items.length - 1] !== input ? [...h.items, input] : h.items;
  return { items, pos: items.length, draft: "" };
}

/** Move by `dir` (-1 older, +1 newer) from `current` text; the text to show then. */
export function step(h: History, current: string, dir: -1 | 1): { history: History; text: string } {
  const pos = Math.max(0, Math.min(h.items.length, h.pos + dir));
  if (pos === h.pos) return { history: h, text: current };
  const draft = h.pos === h.items.length ? current : h.draft;
  return { history: { ...h, pos, draft }, text: pos === h.items.length ? draft : h.items[pos] };
}
