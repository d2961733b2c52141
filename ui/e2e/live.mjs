// End-to-end: a long call in the console outlives the app. Start a call that prints a
// numbered line every 200 ms, see the lines arrive live, quit the app with "Keep running and
// quit", open it again (new driver session, same home): the console finds the running call
// and its output continues; every number shows exactly once, in order, then the value. The
// reopened console replays the call from the journal and marks where the closed window left
// off (the place it kept in localStorage, which survives the restart: WebKit's data dir is
// under the same XDG data home).
//
// Called by run.mjs with a detached backend that outlived the app; runs alone too (its own
// home, a backend started from the CLI):
//
//   APP=/abs/path/beep-host-gui xvfb-run -a node e2e/live.mjs
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";
import { waitFor as waitUntil } from "./wait.mjs";

const LINES = 100;
const EVERY_MS = 200;
// Ports of their own: run.mjs's driver (4444, WebKitWebDriver on 4445) may still listen.
const PORT = 4446;
const NATIVE_PORT = 4447;

function portOpen(port) {
  return new Promise((ok) => {
    const socket = connect(port, "127.0.0.1", () => { socket.end(); ok(true); });
    socket.on("error", () => ok(false));
  });
}

/** Polls every 100 ms unless told otherwise (lines come every 200 ms here). */
const waitFor = (what, f, timeout = 30_000, every = 100) => waitUntil(what, f, timeout, every);

/** The numbers of the `#NNN` lines in `text`, in the order shown. */
const numbers = (text) => [...text.matchAll(/#(\d{3})\b/g)].map((m) => Number(m[1]));

/**
 * `ctx`: { app, env (the app's environment: BEEP_HOST_HOME ...), driverBin, shots, venv (an
 * environment of that home to start the backend in), log }. The backend is started from the
 * app (so that closing asks what to do with it) and stopped at the end.
 */
export async function live({ app, env, driverBin, shots, venv, log }) {
  const cli = join(dirname(app), "beep-host");
  let backend = "";
  let driver;
  let browser;
  const open = async () => {
    driver = spawn(driverBin, ["--port", String(PORT), "--native-port", String(NATIVE_PORT)], { env, stdio: ["ignore", "inherit", "inherit"] });
    await waitFor("tauri-driver", () => portOpen(PORT), 20_000);
    browser = await remote({ hostname: "127.0.0.1", port: PORT, logLevel: "warn", capabilities: { "tauri:options": { application: app } } });
  };
  const appGone = () => waitFor("the app exited", async () =>
    !execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").some((l) => l.startsWith(app)), 20_000);
  const close = async () => {
    if (browser) await browser.deleteSession().catch(() => {});
    browser = undefined;
    await appGone();
    driver.kill("SIGTERM");
    await waitFor("driver port free", async () => !(await portOpen(PORT)), 10_000);
  };
  const $t = (id) => browser.$(`[data-testid="${id}"]`);
  const shot = async (name) => {
    const file = join(shots, `${name}.png`);
    await browser.execute(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await browser.pause(300);
    execFileSync("import", ["-window", "root", file]);
    log("screenshot", file);
  };
  const readyRows = () => browser.execute(() =>
    [...document.querySelectorAll('[data-testid="backends-table"] tbody tr')]
      .filter((tr) => tr.querySelector('[data-testid="backend-state"]')?.textContent.trim() === "ready")
      .map((tr) => tr.getAttribute("data-testid").replace(/^backend-/, "")));
  /** Start a backend in `venv` from the app: its id. */
  const startBackend = async () => {
    await (await $t("nav-backends")).waitForExist({ timeout: 30_000 });
    await (await $t("nav-backends")).click();
    await (await $t("backend-env")).waitForExist({ timeout: 15_000 });
    await browser.pause(500); // the list of backends already running
    const earlier = await readyRows();
    await (await $t("backend-env")).selectByAttribute("value", venv);
    await (await $t("backend-start")).click();
    return waitFor("the new backend ready", async () => (await readyRows()).find((id) => !earlier.includes(id)), 60_000);
  };
  /** The console of `backend` on the Backends page. */
  const openConsole = async () => {
    await (await $t("nav-backends")).waitForExist({ timeout: 30_000 });
    await (await $t("nav-backends")).click();
    const open = await browser.$(`[data-testid="backend-${backend}"] [data-testid="backend-open"]`);
    await open.waitForExist({ timeout: 15_000 });
    await waitFor("backend ready", async () =>
      (await (await browser.$(`[data-testid="backend-${backend}"] [data-testid="backend-state"]`)).getText()) === "ready", 30_000);
    await open.click();
    const input = await $t("console-input");
    await input.waitForExist({ timeout: 10_000 });
    return input;
  };
  /** What the live entry shows (its output only, not the input). */
  const liveText = () => browser.execute(() =>
    [...document.querySelectorAll('[data-testid="console-live"] [data-testid="console-live-output"]')].map((e) => e.textContent).join(""));

  try {
    await open();
    backend = await startBackend();
    log("live: backend", backend, "started in", venv);
    const input = await openConsole();
    // One line: setValue drops newlines.
    const code = `import time; _ = [(print(f"#{i:03d}", flush=True), time.sleep(${EVERY_MS / 1000})) for i in range(1, ${LINES + 1})]; "end of ${LINES}"`;
    await input.setValue(code);
    const sent = Date.now();
    await browser.keys(["Enter"]);
    // Polled in the page: the moment the first line is in the DOM.
    await waitFor("the first line", async () => numbers(await liveText()).includes(1), 5_000, 20);
    const first = Date.now() - sent;
    log(`live: the first line shown ${first} ms after Enter`);
    if (first > 1000) throw new Error(`the first line took ${first} ms`);
    // A few seconds of lines arriving while the call runs (not at its end).
    const before = await waitFor("line #015 live", async () => {
      const n = numbers(await liveText());
      return n.includes(15) ? n : null;
    }, 10_000, 50);
    if (before.join() !== before.map((_, i) => i + 1).join()) throw new Error(`before the restart the console shows ${before.join(",")}`);
    const place = await browser.execute(() => Object.keys(localStorage).filter((k) => k.startsWith("beep.console.live.")).map((k) => [k, localStorage.getItem(k)]));
    log("live: the console's place before the restart:", JSON.stringify(place));
    await shot("12-live-before-restart");

    // Quit, keeping the backend (and its call) running; what the window shows read in the
    // moment before the click.
    await browser.execute(() => window.__TAURI_INTERNALS__.invoke("plugin:window|close", { label: "main" }));
    await (await $t("close-keep")).waitForExist({ timeout: 10_000 });
    const shownBefore = numbers(await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="console-live"] [data-testid="console-live-output"]')].map((e) => e.textContent).join("")));
    // The click quits the app: the page may be gone before WebDriver answers this call (a
    // line printed in between is allowed for below: the mark may follow lastBefore + 1).
    await browser.execute(() => { setTimeout(() => document.querySelector('[data-testid="close-keep"]').click(), 0); }).catch(() => {});
    const lastBefore = shownBefore[shownBefore.length - 1];
    if (shownBefore.join() !== shownBefore.map((_, i) => i + 1).join()) throw new Error(`at the quit the console shows ${shownBefore.join(",")}`);
    await close();
    const quitAt = Date.now();
    log(`live: the app quit after line #${String(lastBefore).padStart(3, "0")}`);

    await open();
    const kept = await browser.execute(() => Object.keys(localStorage).filter((k) => k.startsWith("beep.console.live.")).map((k) => [k, localStorage.getItem(k)]));
    log("live: the console's place after the restart:", JSON.stringify(kept));
    await openConsole();
    // The running call is found and followed: its lines arrive in the reopened console.
    const resumed = await waitFor("the call followed again", async () => {
      const n = numbers(await liveText());
      return n.length && n[n.length - 1] > lastBefore ? n : null;
    }, 15_000, 50);
    log(`live: following again ${Date.now() - quitAt} ms after the quit, showing #${resumed[0]}..#${resumed[resumed.length - 1]}`);
    if (Date.now() - sent > (LINES * EVERY_MS) - 2000) throw new Error("the call was (nearly) over before the console followed it again: the test shows nothing");
    await shot("13-live-after-restart");

    // The end: the entry moves to the transcript with the value.
    const entry = await waitFor("the call's end", async () => {
      const entries = await browser.$$('[data-testid="console-entry"]');
      for (const e of entries) if (await (await e.$('[data-testid="console-value"]')).isExisting()) return e;
      return null;
    }, LINES * EVERY_MS + 15_000, 200);
    // The output in page order, the mark where the closed window left off as "|".
    const shown = await browser.execute((e) => ({
      out: [...e.querySelectorAll('[data-testid="console-stdout"], [data-testid="console-stderr"], [data-testid="console-resumed"]')]
        .map((x) => (x.getAttribute("data-testid") === "console-resumed" ? "|" : x.textContent)).join(""),
      value: e.querySelector('[data-testid="console-value"]').textContent,
      all: e.textContent,
    }), entry);
    await shot("14-live-ended");
    const after = numbers(shown.out);
    // Each number exactly once and in order, from #001 (the journal replayed) to the last.
    if (after.join() !== Array.from({ length: LINES }, (_, i) => i + 1).join()) throw new Error(`after the restart the console shows ${after.join(",")}`);
    if (!/^(['"])end of \d+\1$/.test(shown.value) || !shown.value.includes(`end of ${LINES}`)) throw new Error(`the call's value shows ${shown.value}`);
    if (/\[\d+ bytes of output were dropped/.test(shown.all)) throw new Error("output was dropped");
    // The mark: once, after a line the closed window had shown (its place kept in
    // localStorage across the restart; the last writes before the quit may be lost).
    const parts = shown.out.split("|");
    if (parts.length !== 2) throw new Error(`the reopened console marks where the window left off ${parts.length - 1} times: ${shown.out}`);
    const markedAfter = numbers(parts[0]).pop();
    if (!(markedAfter >= 1 && markedAfter <= lastBefore + 1)) throw new Error(`the mark follows #${markedAfter}; the closed window showed up to #${lastBefore}`);
    log(`live: after the restart #001..#${LINES} each once, then ${shown.value}; marked after #${markedAfter} (the closed window showed up to #${lastBefore})`);

    // This window did not start the backend: closing it does not ask.
    // (The window may be gone before the driver answers: that is what is asked; `close`
    // checks the app exited.)
    await browser
      .execute(() => void setTimeout(() => window.__TAURI_INTERNALS__.invoke("plugin:window|close", { label: "main" }), 0))
      .catch((e) => { if (!/invalid session id/.test(e.message)) throw e; });
    await close();
  } catch (e) {
    if (browser) await shot("12-live-FAILED").catch(() => {});
    throw new Error(`live: ${e.message}`);
  } finally {
    if (browser) await browser.deleteSession().catch(() => {});
    if (driver && driver.exitCode === null) driver.kill("SIGTERM");
    if (backend) try { execFileSync(cli, ["stop", backend], { env, stdio: "ignore" }); } catch {}
  }
}

// Alone: a home of its own and a detached backend started from the CLI.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const repo = resolve(here, "../..");
  const app = resolve(process.env.APP ?? join(repo, "target/debug/beep-host-gui"));
  const shots = resolve(process.env.SHOTS ?? join(repo, "target/e2e-screenshots"));
  mkdirSync(shots, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "beep-e2e-live-"));
  const env = { ...process.env, BEEP_HOST_HOME: join(work, "home") };
  const log = (...a) => console.error("[e2e]", ...a);
  let failed = false;
  try {
    const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
    execFileSync(join(dirname(app), "beep-host"), ["venv", "create", "live", "--runtime", python], { env, stdio: ["ignore", "ignore", "inherit"] });
    await live({ app, env, driverBin: process.env.TAURI_DRIVER ?? join(process.env.HOME ?? "/root", ".cargo/bin/tauri-driver"), shots, venv: "live", log });
    log("PASS");
  } catch (e) {
    failed = true;
    console.error("[e2e] FAIL:", e.message);
  } finally {
    // The daemon exits when its home is gone.
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
