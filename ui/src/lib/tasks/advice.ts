// The core's messages are written for the CLI and sometimes say which command to run
// ("run `beep-host init`"). The app offers a button instead: this finds what the advice
// is for and takes it out of the text (pure, unit-tested).

/** What the app can do about it: open the first-run choice of a default Python, or repair
 * the admin environment. */
export type Fix = "default-runtime" | "repair-admin" | "runtimes";

/** The clauses that name `beep-host` commands: "; run `beep-host init` or `…`" and such. */
const ADVICE = /[;,.]?\s*(?:\(\s*)?(?:run|try|see|install one with|remove it with|set another with|stop it first|stop it with|use)?\s*\(?`beep-host [^`]*`(?:\s*(?:or|and|,)\s*`beep-host [^`]*`)*(?:\s*\(and `[^`]*`\))?\)?\s*(?:chooses another)?\)?/gi;

export function withoutCliAdvice(message: string): { text: string; fix: Fix | null } {
  const commands = [...message.matchAll(/`beep-host ([^`]*)`/g)].map((m) => m[1]);
  if (!commands.length) return { text: message, fix: null };
  let fix: Fix | null = null;
  if (commands.some((c) => c.startsWith("init") || c.startsWith("runtime default"))) fix = "default-runtime";
  else if (commands.some((c) => c.startsWith("venv admin"))) fix = "repair-admin";
  else if (commands.some((c) => c.startsWith("runtime"))) fix = "runtimes";
  const text = message.replace(ADVICE, "").replace(/\s+\./g, ".").replace(/[;,]\s*$/g, "").trim();
  return { text, fix };
}
