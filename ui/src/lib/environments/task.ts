// Output lines of long environment tasks, collected by task id.
import { on } from "../backend";

let counter = 0;

/** A fresh task id the backend tags `TaskOutput` lines with. */
export function newTask(kind: string): string {
  counter += 1;
  return `${kind}-${Date.now().toString(36)}-${counter}`;
}

/** Split a requirements input ("numpy  pandas>=2\nrequests") into items. */
export function splitRequirements(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/** Run `f(task)` while collecting its output lines into `sink`. */
export async function withOutput<T>(kind: string, sink: (line: string) => void, f: (task: string) => Promise<T>): Promise<T> {
  const task = newTask(kind);
  const off = await on.taskOutput((p) => {
    if (p.task === task) sink(p.line);
  });
  try {
    return await f(task);
  } finally {
    off();
  }
}
