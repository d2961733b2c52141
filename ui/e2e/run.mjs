// End-to-end test of the real app binary (embedded UI), driven through tauri-driver +
// WebKitWebDriver. Run under a display (scripts/test-gui.sh uses `xvfb-run -a`).
//
//   APP=/abs/path/beep-host-gui node e2e/run.mjs
//
// A temp BEEP_HOST_HOME, a real loopback HTTP mirror serving a python-build-standalone-
// shaped archive of this machine's CPython, and a catalog naming it. Each step saves a
// screenshot under SHOTS (default <repo>/target/e2e-screenshots) and fails when the
// element it waits for does not appear.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync, readFileSync, readdirSync, lstatSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const app = resolve(process.env.APP ?? join(repo, "target/debug/beep-host-gui"));
const shots = resolve(process.env.SHOTS ?? join(repo, "target/e2e-screenshots"));
const driverBin = process.env.TAURI_DRIVER ?? join(process.env.HOME ?? "/root", ".cargo/bin/tauri-driver");
const BUILD = "20990101";
const PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download";

const children = [];
let browser;
let failed = false;

function log(...a) {
  console.error("[e2e]", ...a);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what, f, timeout = 30_000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

async function shot(name) {
  const file = join(shots, `${name}.png`);
  // WebKit under Xvfb paints a frame late: let it catch up so the picture shows this step.
  await browser.execute(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await browser.pause(400);
  // The X server's picture, not WebDriver's: WebKit's automation snapshot never answers
  // when the page is painted without compositing (as the app runs, see webview.rs).
  execFileSync("import", ["-window", "root", file]);
  log("screenshot", file);
}

const $t = (id) => browser.$(`[data-testid="${id}"]`);

async function exists(selector, timeout = 30_000) {
  const el = typeof selector === "string" ? await browser.$(selector) : selector;
  await el.waitForExist({ timeout, timeoutMsg: `element ${el.selector} is missing` });
  return el;
}

async function step(name, f) {
  log("step", name);
  try {
    await f();
    await shot(name);
  } catch (e) {
    try {
      await shot(`${name}-FAILED`);
    } catch {}
    throw new Error(`step ${name}: ${e.message}`);
  }
}

/** Bytes of the files under `dir`, not following links (a link counts as itself). */
function treeBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(path);
    else total += lstatSync(path).size;
  }
  return total;
}

function startMirror(root) {
  return new Promise((ok, fail) => {
    const server = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(server);
    server.stdout.on("data", (d) => {
      const m = /port (\d+)/.exec(String(d));
      if (m) ok(Number(m[1]));
    });
    server.on("exit", (c) => fail(new Error(`mirror exited ${c}`)));
  });
}

async function main() {
  if (!existsSync(app)) throw new Error(`no app binary at ${app}`);
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "beep-e2e-"));
  const home = join(work, "home");
  const mirror = join(work, "mirror");

  // The runtime mirror: <build>/<file name> on a real HTTP server, and a catalog naming it.
  const made = JSON.parse(
    execFileSync("python3", [join(repo, "tests/support/make_pbs_archive.py"), "--out", join(mirror, BUILD), "--build", BUILD], {
      encoding: "utf8",
    }),
  );
  const archive = made.archives["tar.gz"];
  const port = await startMirror(mirror);
  const catalog = join(work, "catalog.json");
  writeFileSync(
    catalog,
    JSON.stringify({
      entries: [
        {
          version: made.version, os: "linux", arch: "x86_64", libc: "gnu", build: BUILD,
          url: `${PREFIX}/${BUILD}/${archive.name.replace("+", "%2B")}`, sha256: archive.sha256,
        },
      ],
    }),
  );
  log("mirror on port", port, "archive", archive.name);

  const env = {
    ...process.env,
    BEEP_HOST_HOME: home,
    BEEP_PYTHON_CATALOG: catalog,
    BEEP_PYTHON_MIRROR: `http://127.0.0.1:${port}`,
    BEEP_HOST_INSTALLER: "pip",
  };
  // A backend started from the CLI before the app opens, burning CPU in a thread: the app,
  // a client of the same daemon, must show its CPU and memory from its first seconds.
  const cli = join(dirname(app), "beep-host");
  const run = (...args) => execFileSync(cli, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  run("venv", "create", "cli", "--runtime", execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim());
  const started = run("start", "http", "--venv", "cli", "--detach");
  const cliId = /backend (\w+) ready/.exec(started)[1];
  const cliPid = Number(/pid (\d+)/.exec(started)[1]);
  run("exec", cliId, "import threading\ndef burn():\n    while True: pass\nthreading.Thread(target=burn, daemon=True).start()");
  log("CLI backend", cliId, "pid", cliPid);

  const driver = spawn(driverBin, ["--port", "4444"], { env, stdio: ["ignore", "inherit", "inherit"] });
  children.push(driver);
  await waitFor("tauri-driver", () => new Promise((ok) => {
    const socket = connect(4444, "127.0.0.1", () => { socket.end(); ok(true); });
    socket.on("error", () => ok(false));
  }), 20_000);

  browser = await remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "warn",
    capabilities: { "tauri:options": { application: app } },
  });

  await step("01-launch-cli-backend-live", async () => {
    await exists('[data-testid="nav-environments"]');
    const launched = Date.now();
    await (await $t("nav-backends")).click();
    const row = `[data-testid="backend-${cliId}"]`;
    await exists(row, 10_000);
    // The system's own figure: VmRSS of the process (and its children, none here).
    const procRss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${cliPid}/status`, "utf8"))[1]) * 1024;
    const seen = await waitFor("CPU > 10 % and memory within 20 % of /proc", async () => {
      const cpu = parseFloat(await (await browser.$(`${row} [data-testid="backend-cpu"]`)).getText());
      const mem = Number(await (await browser.$(`${row} [data-testid="backend-memory"]`)).getAttribute("data-bytes"));
      const real = procRss();
      return cpu > 10 && Math.abs(mem - real) <= 0.2 * real ? { cpu, mem, real } : null;
    }, 15_000);
    const took = Date.now() - launched;
    log(`CLI backend with its CPU and memory in the app ${took} ms after first content:`, JSON.stringify(seen));
    if (took > 2_000) throw new Error(`the app showed the CLI backend's figures only after ${took} ms`);
    run("stop", cliId);
    run("rm", cliId);
    run("venv", "delete", "cli", "--yes");
    await (await $t("nav-environments")).click();
    await exists('[data-testid="envs-empty"]');
  });

  await step("02-runtime-install", async () => {
    await (await $t("nav-runtimes")).click();
    const install = await exists(`[data-testid="install-${made.version}"]`);
    await install.click();
    await exists('[data-testid="install-progress"]', 5_000);
    await waitFor("install to finish", async () => {
      const bar = await browser.$('[data-testid="install-progress"]');
      const phase = await bar.getAttribute("data-phase");
      if (phase === "failed") throw new Error(await (await $t("install-error")).getText());
      return phase === "done";
    }, 120_000);
    const value = await browser.$('[data-testid="install-progress"] progress').getProperty("value");
    if (Number(value) !== 1) throw new Error(`progress bar at ${value}, not at the end`);
    await exists(`[data-testid^="runtime-cpython-${made.version}"]`);
  });

  await step("03-env-create", async () => {
    await (await $t("nav-environments")).click();
    await (await exists('[data-testid="env-new"]')).click();
    await (await exists('[data-testid="env-name"]')).setValue("e2e");
    // The machine's interpreter (adopted) has ensurepip, which a pip-made venv needs.
    const options = await browser.$$('[data-testid="env-runtime"] option');
    let chosen = "";
    for (const o of options) {
      const text = await o.getText();
      if (text.includes("adopted")) { chosen = await o.getValue(); break; }
    }
    if (!chosen) throw new Error("no adopted runtime to create the environment with");
    await (await $t("env-runtime")).selectByAttribute("value", chosen);
    await (await $t("env-create")).click();
    await waitFor("environment e2e listed", async () => {
      const err = await browser.$('[data-testid="env-create-error"]');
      if (await err.isExisting()) throw new Error(await err.getText());
      return (await browser.$('[data-testid="env-e2e"]')).isExisting();
    }, 180_000);
    // The size arrives after the list: the bytes of the files under the environment, links
    // counted as links (lstat), as this walk counts them; shown with a unit.
    const size = await browser.$('[data-testid="env-e2e"] [data-testid="env-size"]');
    const onDisk = treeBytes(join(home, "data/envs/e2e"));
    if (!(onDisk > 0)) throw new Error(`environment e2e has ${onDisk} bytes on disk`);
    await waitFor(`environment e2e size ${onDisk}`, async () => Number(await size.getAttribute("data-bytes")) === onDisk, 30_000);
    const text = await size.getText();
    if (!/^\d+(\.\d)? (B|KB|MB|GB)$/.test(text) || text.startsWith("0 ")) throw new Error(`size shown as "${text}"`);
  });

  let pid = 0;
  await step("04-backend-ready", async () => {
    await (await $t("nav-backends")).click();
    await (await exists('[data-testid="backend-env"]')).selectByAttribute("value", "e2e");
    await (await $t("backend-transport")).selectByAttribute("value", "pipe");
    await (await $t("backend-start")).click();
    await waitFor("backend ready with pid and memory", async () => {
      const err = await browser.$('[data-testid="backend-start-error"]');
      if (await err.isExisting()) throw new Error(await err.getText());
      const state = await browser.$('[data-testid="backend-state"]');
      if (!(await state.isExisting()) || (await state.getText()) !== "ready") return false;
      const p = Number(await (await $t("backend-pid")).getText());
      const mem = await (await $t("backend-memory")).getText();
      if (p > 0 && /B$/.test(mem)) { pid = p; return true; }
      return false;
    }, 60_000);
    if (!alive(pid)) throw new Error(`pid ${pid} is not running`);
  });

  await step("05-console", async () => {
    await exists('[data-testid="backend-detail"]');
    const input = await $t("console-input");
    await input.setValue("1+1");
    await (await $t("console-run")).click();
    await waitFor("result 2", async () => (await (await browser.$('[data-testid="console-value"]')).getText()) === "2", 20_000);
  });

  await step("06-backend-stopped", async () => {
    await (await $t("backend-stop")).click();
    await waitFor("stopped", async () => (await (await $t("backend-state")).getText()) === "stopped", 30_000);
    await waitFor(`pid ${pid} gone`, async () => !alive(pid), 10_000);
  });

  await step("07-env-deleted", async () => {
    await (await $t("nav-environments")).click();
    await (await exists('[data-testid="env-delete-e2e"]')).click();
    const dialog = await exists('[data-testid="confirm-dialog"]');
    const text = await dialog.getText();
    if (!text.includes("e2e")) throw new Error(`the confirmation does not name the environment: ${text}`);
    await (await $t("confirm-ok")).click();
    await waitFor("environment gone", async () => !(await (await browser.$('[data-testid="env-e2e"]')).isExisting()), 30_000);
    await exists('[data-testid="envs-empty"]');
  });

  await step("08-settings", async () => {
    await (await $t("nav-settings")).click();
    await exists('[data-testid="data-dir"]');
    const rows = await waitFor("configuration check rows", async () => {
      const r = await browser.$$('[data-testid="config-check"] tr');
      return r.length > 0 ? r : null;
    });
    log("config check:", rows.length, "items");
  });

  // The host API, served by the daemon, answers with the token from host.json.
  await step("08b-host-api", async () => {
    const addr = await waitFor("host API address", async () => {
      const el = await browser.$('[data-testid="host-api-http"]');
      return (await el.isExisting()) ? (await el.getText()).trim() : null;
    }, 20_000);
    const record = join(home, "state", "host.json");
    const token = JSON.parse(readFileSync(record, "utf8")).token;
    const ok = await fetch(`http://${addr}/venv/list`, { headers: { Authorization: `Bearer ${token}` } });
    if (ok.status !== 200 || !Array.isArray(await ok.json())) throw new Error(`host API answered ${ok.status}`);
    const refused = await fetch(`http://${addr}/venv/list`);
    if (refused.status !== 401) throw new Error(`host API without token answered ${refused.status}`);
    log("host API served at", addr);
  });

  // Closing the window while a backend runs: the app asks, then stops it and exits.
  let lastPid = 0;
  await step("09-close-asks", async () => {
    await (await $t("nav-environments")).click();
    await (await exists('[data-testid="env-new"]')).click();
    await (await exists('[data-testid="env-name"]')).setValue("e2e-close");
    const options = await browser.$$('[data-testid="env-runtime"] option');
    for (const o of options) if ((await o.getText()).includes("adopted")) { await (await $t("env-runtime")).selectByAttribute("value", await o.getValue()); break; }
    await (await $t("env-create")).click();
    await exists('[data-testid="env-e2e-close"]', 180_000);
    await (await $t("nav-backends")).click();
    await (await exists('[data-testid="backend-env"]')).selectByAttribute("value", "e2e-close");
    await (await $t("backend-start")).click();
    lastPid = await waitFor("second backend ready", async () => {
      let best = 0;
      for (const el of await browser.$$('[data-testid="backend-pid"]')) best = Math.max(best, Number(await el.getText()) || 0);
      return best;
    }, 60_000);
    // What the window manager's close button does.
    await browser.execute(() => window.__TAURI_INTERNALS__.invoke("plugin:window|close", { label: "main" }));
    const dialog = await exists('[data-testid="confirm-dialog"][open]', 10_000);
    const text = await dialog.getText();
    if (!/1 backend is running/.test(text)) throw new Error(`the close dialog says: ${text}`);
  });
  await (await $t("confirm-ok")).click().catch(() => {});
  await waitFor(`backend ${lastPid} stopped by quitting`, async () => !alive(lastPid), 20_000);
  log("quit stopped backend", lastPid);
  await browser.deleteSession().catch(() => {});
  browser = undefined;
  // The daemon outlives the window by design; it exits when its home is removed.
  rmSync(home, { recursive: true, force: true });
  // Nothing of ours may outlive the app: neither the app nor any process naming the temp home.
  const leftovers = () =>
    execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => (l.includes(home) || l.includes(app)) && !l.includes("ps -eo") && !l.includes("e2e/run.mjs"));
  try {
    await waitFor("no process left behind", async () => leftovers().length === 0, 15_000);
  } catch (e) {
    throw new Error(`${e.message}: ${leftovers().join(" | ")}`);
  }
  rmSync(work, { recursive: true, force: true });
}

try {
  await main();
  log("PASS; screenshots in", shots);
} catch (e) {
  failed = true;
  console.error("[e2e] FAIL:", e.message);
} finally {
  if (browser) await browser.deleteSession().catch(() => {});
  for (const c of children.reverse()) c.kill("SIGTERM");
}
process.exit(failed ? 1 : 0);
