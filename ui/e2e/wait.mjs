// Shared by the e2e scripts: poll until a condition holds.

/** Poll `f` every `every` ms until it returns something truthy (that value), or throw after
 * `timeout` ms naming `what` and the last error `f` threw. */
export async function waitFor(what, f, timeout = 30_000, every = 250) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}
