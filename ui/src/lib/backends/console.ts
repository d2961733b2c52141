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

// Live calls: the console runs code as a named call whose output arrives as events while it
// runs. A reopened window finds the running call (`calls`) and replays it from the journal
// (`attach` after 0), showing each seq once whatever else delivers it. The last seq shown is
// kept per backend (in localStorage) only to mark where the closed window left off: that
// place is written while output arrives and may miss the last writes before the app exits,
// so it never decides what is shown.

export type OutStream = "stdout" | "stderr";

export interface LiveCall {
  call: string;
  input: string;
  chunks: { stream: OutStream; data: string }[];
  /** The seq of the last chunk shown (0: none yet). */
  lastSeq: number;
  /** Followed again after the window was reopened: the closed window had shown output up to `resumedAfter`. */
  resumedAfter: number;
  /** The index in `chunks` of the first chunk after `resumedAfter` (-1: none yet). */
  resumedAt: number;
}

export function newLiveCall(call: string, input: string, resumedAfter = 0): LiveCall {
  return { call, input, chunks: [], lastSeq: 0, resumedAfter, resumedAt: -1 };
}

/** Add a chunk of `call`'s output, unless it is another call's or was shown already. */
export function applyChunk(c: LiveCall, call: string, seq: number, stream: OutStream, data: string): LiveCall {
  if (call !== c.call || seq <= c.lastSeq) return c;
  // The first chunk after where the closed window left off starts a chunk of its own.
  const marks = c.resumedAfter > 0 && c.resumedAt < 0 && seq > c.resumedAfter;
  const last = c.chunks[c.chunks.length - 1];
  const chunks = last && last.stream === stream && !marks
    ? [...c.chunks.slice(0, -1), { stream, data: last.data + data }]
    : [...c.chunks, { stream, data }];
  return { ...c, chunks, lastSeq: seq, resumedAt: marks ? chunks.length - 1 : c.resumedAt };
}

/** Did events go missing before one that stands for seqs from `first` on? (Each call's events
 * are numbered 1, 2, 3...; a notice of dropped events stands for several.) Then the console
 * follows the call again from its last seq shown instead of showing this one. */
export function missedBefore(c: LiveCall, first: number): boolean {
  return first > c.lastSeq + 1;
}

/** Did the window show every event before a call's end, whose `seq` is the one after its
 * last event? (`null`: the end does not say; nothing to check.) */
export function shownAllBefore(c: LiveCall, endSeq: number | null): boolean {
  return endSeq === null || c.lastSeq >= endSeq - 1;
}

/** The storage the console keeps its place in (window.localStorage in the app). */
export interface PlaceStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The running call of a backend's console and the last seq shown. */
export interface Place { call: string; input: string; lastSeq: number }

const placeKey = (backend: string) => `beep.console.live.${backend}`;

export function savePlace(store: PlaceStore, backend: string, c: LiveCall): void {
  store.setItem(placeKey(backend), JSON.stringify({ call: c.call, input: c.input, lastSeq: c.lastSeq }));
}

export function loadPlace(store: PlaceStore, backend: string): Place | null {
  try {
    const p = JSON.parse(store.getItem(placeKey(backend)) ?? "null");
    return p && typeof p.call === "string" && typeof p.lastSeq === "number"
      ? { call: p.call, input: typeof p.input === "string" ? p.input : "", lastSeq: p.lastSeq }
      : null;
  } catch {
    return null;
  }
}

export function forgetPlace(store: PlaceStore, backend: string): void {
  store.removeItem(placeKey(backend));
}

/**
 * What to follow when the console opens: the newest running call, replayed from its first
 * event; with its input and the last seq the closed window showed when this console started
 * it (else "" and 0).
 */
export function resumeFrom(
  calls: { call: string; state: string }[],
  place: Place | null,
): { call: string; input: string; leftOff: number } | null {
  const running = [...calls].reverse().find((c) => c.state === "running");
  if (!running) return null;
  return place && place.call === running.call
    ? { call: running.call, input: place.input, leftOff: place.lastSeq }
    : { call: running.call, input: "", leftOff: 0 };
}
