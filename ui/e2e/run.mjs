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
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync, readFileSync, readdirSync, lstatSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { createServer } from "node:http";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";
import { waitFor } from "./wait.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const app = resolve(process.env.APP ?? join(repo, "target/debug/beep-host-gui"));
const shots = resolve(process.env.SHOTS ?? join(repo, "target/e2e-screenshots"));
const driverBin = process.env.TAURI_DRIVER ?? join(process.env.HOME ?? "/root", ".cargo/bin/tauri-driver");
const BUILD = "20990101";
const PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download";

const children = [];
let homeDir = "";
const servers = [];
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

/** Type `text` into `input` and press Enter (a "\n" in setValue is a character, not the key). */
async function enter(input, text) {
  await input.setValue(text);
  await browser.keys(["Enter"]);
}

const $t = (id) => browser.$(`[data-testid="${id}"]`);

/**
 * The scheme the page is painted in: whether it follows a dark system preference, the
 * luminance of the page's background, and the contrast of real elements' text against the
 * background they are painted on (WCAG ratios; 4.5 is the floor for body text).
 */
function looks() {
  return browser.execute(() => {
    const rgb = (s) => {
      const m = (s.match(/[\d.]+/g) ?? []).map(Number);
      return { r: m[0] ?? 0, g: m[1] ?? 0, b: m[2] ?? 0, a: m.length > 3 ? m[3] : 1 };
    };
    const lum = ({ r, g, b }) => {
      const f = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.a > 0) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const ratio = (a, b) => {
      const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
      return Math.round(((x + 0.05) / (y + 0.05)) * 100) / 100;
    };
    const contrast = {};
    const probes = { heading: "main h1", text: "main td", header: "main th", muted: "main .muted", nav: "nav button:not(.active)",
      current: "nav button.active", primary: "button.primary:not(:disabled)", badge: "main .badge", link: "main .linklike" };
    for (const [name, sel] of Object.entries(probes)) {
      const el = document.querySelector(sel);
      if (el) contrast[name] = ratio(rgb(getComputedStyle(el).color), background(el));
    }
    return { dark: matchMedia("(prefers-color-scheme: dark)").matches, page: Math.round(lum(background(document.querySelector("main"))) * 1000) / 1000, contrast };
  });
}

/** The page is painted in the `dark` or light scheme, and every probed text reads (>= 4.5:1). */
async function checkScheme(dark) {
  const l = await looks();
  log(dark ? "dark" : "light", "scheme:", JSON.stringify(l));
  if (l.dark !== dark) throw new Error(`prefers-color-scheme dark is ${l.dark}`);
  if (dark ? !(l.page < 0.05) : !(l.page > 0.8)) throw new Error(`the page background has luminance ${l.page} in the ${dark ? "dark" : "light"} scheme`);
  const low = Object.entries(l.contrast).filter(([, r]) => r < 4.5);
  if (Object.keys(l.contrast).length < 7 || low.length) throw new Error(`text contrast: ${JSON.stringify(l.contrast)}`);
}

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

// The runtime mirror: static files of `root` on a loopback HTTP server; while
// `mirror.slow` is set, bodies trickle (a cancel can land mid-download).
const mirrorState = { slow: false };
function startMirror(root) {
  return new Promise((ok, fail) => {
    const server = createServer((req, res) => {
      const file = join(root, decodeURIComponent(new URL(req.url, "http://x").pathname));
      if (!existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      const body = readFileSync(file);
      res.writeHead(200, { "Content-Length": body.length, "Content-Type": "application/octet-stream" });
      if (!mirrorState.slow) {
        res.end(body);
        return;
      }
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= body.length) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body.subarray(at, at + 64 * 1024));
        at += 64 * 1024;
      }, 100);
      res.on("close", () => clearInterval(timer));
    });
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => ok(server));
  });
}

async function main() {
  if (!existsSync(app)) throw new Error(`no app binary at ${app}`);
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "beep-e2e-"));
  const home = join(work, "home");
  homeDir = home;
  const mirror = join(work, "mirror");

  // The runtime mirror: <build>/<file name> on a real HTTP server, and a catalog naming it.
  const made = JSON.parse(
    execFileSync("python3", [join(repo, "tests/support/make_pbs_archive.py"), "--out", join(mirror, BUILD), "--build", BUILD], {
      encoding: "utf8",
    }),
  );
  // The test archive leaves out `ensurepip` (size); a venv with pip needs it, and the
  // first-run path creates one from this runtime: put the machine's copy back in.
  const archive = made.archives["tar.gz"];
  archive.sha256 = execFileSync("python3", ["-c", `
import hashlib, shutil, sys, sysconfig, tarfile, tempfile, os
path = sys.argv[1]
tmp = tempfile.mkdtemp()
with tarfile.open(path) as t:
    t.extractall(tmp, filter="tar")
minor = "python%d.%d" % sys.version_info[:2]
shutil.copytree(os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip"), os.path.join(tmp, "python", "lib", minor, "ensurepip"),
                ignore=shutil.ignore_patterns("__pycache__"))
with tarfile.open(path, "w:gz", compresslevel=1) as t:
    t.add(os.path.join(tmp, "python"), arcname="python")
shutil.rmtree(tmp)
print(hashlib.sha256(open(path, "rb").read()).hexdigest())
`, join(mirror, BUILD, archive.name)], { encoding: "utf8" }).trim();
  const mirrorServer = await startMirror(mirror);
  const port = mirrorServer.address().port;
  servers.push(mirrorServer);
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
    // No package index (nothing listens on port 9): an install from it fails at once with
    // the installer's own message, which the app must keep on screen.
    PIP_INDEX_URL: "http://127.0.0.1:9/simple",
    PIP_RETRIES: "0",
    PIP_TIMEOUT: "2",
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
    UV_INDEX_URL: "http://127.0.0.1:9/simple",
    UV_OFFLINE: "1",
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

  // tauri-driver starts the app with its own environment: a session in another system
  // scheme needs a driver of its own.
  let driver;
  const openApp = async (extraEnv = {}) => {
    driver = spawn(driverBin, ["--port", "4444"], { env: { ...env, ...extraEnv }, stdio: ["ignore", "inherit", "inherit"] });
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
  };
  await openApp();

  await step("01-launch-cli-backend-live", async () => {
    await exists('[data-testid="nav-environments"]');
    const launched = Date.now();
    // The Overview first: what runs (the CLI's backend) and the first-run choice.
    await waitFor("overview counts the CLI backend", async () =>
      /^1 backend running/.test(await (await $t("overview-running")).getText()), 10_000);
    await exists('[data-testid="first-run"]', 10_000);
    const shooting = Date.now();
    await shot("01-overview");
    const shotTook = Date.now() - shooting; // not the app's time
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
    const took = Date.now() - launched - shotTook;
    log(`CLI backend with its CPU and memory in the app ${took} ms after first content:`, JSON.stringify(seen));
    run("stop", cliId);
    run("rm", cliId);
    run("venv", "delete", "cli", "--yes");
    await (await $t("nav-environments")).click();
    await exists('[data-testid="envs-empty"]');
  });

  await step("02a-runtime-install-cancelled", async () => {
    mirrorState.slow = true;
    await (await $t("nav-runtimes")).click();
    await exists(`[data-testid="available-${made.version}"] [data-testid="recommended"]`);
    await (await exists(`[data-testid="install-${made.version}"]`)).click();
    await waitFor("download under way", async () =>
      (await (await browser.$('[data-testid="install-progress"]')).getAttribute("data-phase")) === "download", 10_000);
    // Leave the page and come back: the install is still shown, with its Cancel.
    await (await $t("nav-environments")).click();
    await exists('[data-testid="env-new"]');
    await (await $t("nav-runtimes")).click();
    const phase = await (await exists('[data-testid="install-progress"]', 5_000)).getAttribute("data-phase");
    if (phase !== "download") throw new Error(`after coming back the install shows phase ${phase}`);
    if (await (await browser.$(`[data-testid="install-${made.version}"]`)).isExisting()) throw new Error("Install offered again while installing");
    await (await $t("install-cancel")).click();
    const status = await waitFor("install cancelled", async () => {
      const el = await browser.$('[data-testid="install-status"]');
      return (await el.getAttribute("data-status")) === "cancelled" ? el : null;
    }, 15_000);
    const text = await status.getText();
    if (!text.includes("Cancelled") || /fail/i.test(text)) throw new Error(`a cancelled install reads: ${text}`);
    if (await (await browser.$('[data-testid="install-progress"] progress')).isExisting()) throw new Error("a cancelled install still shows a progress bar");
    mirrorState.slow = false;
  });

  await step("02-runtime-install", async () => {
    // Start it, leave the page while it runs, come back: the runtime is listed and the
    // status line says what was installed.
    await (await exists(`[data-testid="install-${made.version}"]`)).click();
    await exists('[data-testid="install-status"][data-status="running"]', 5_000);
    await (await $t("nav-settings")).click();
    await exists('[data-testid="data-dir"]');
    await (await $t("nav-runtimes")).click();
    const status = await waitFor("install to finish", async () => {
      const el = await browser.$('[data-testid="install-status"]');
      const st = await el.getAttribute("data-status");
      if (st === "failed" || st === "cancelled") throw new Error(await el.getText());
      return st === "done" ? el : null;
    }, 120_000);
    const message = await (await $t("install-status-message")).getText();
    if (!message.includes(`Installed Python ${made.version}`)) throw new Error(`the install ended with: ${message}`);
    const value = await browser.$('[data-testid="install-progress"] progress').getProperty("value");
    if (Number(value) !== 1) throw new Error(`progress bar at ${value}, not at the end`);
    await exists(`[data-testid^="runtime-cpython-${made.version}"]`);
    // Removing a runtime asks first (Cancel keeps it).
    await (await exists('[data-testid^="runtime-remove-cpython-"]')).click();
    const ask = await (await exists('[data-testid="confirm-dialog"][open]', 5_000)).getText();
    if (!ask.includes(join(home, "data/runtimes"))) throw new Error(`the runtime removal asks: ${ask}`);
    await (await browser.$('[data-testid="confirm-dialog"][open] [data-testid="confirm-cancel"]')).click();
    await exists(`[data-testid^="runtime-cpython-${made.version}"]`);
    // Removed (OK): the first run below offers to install it again, and does.
    await (await exists('[data-testid^="runtime-remove-cpython-"]')).click();
    await (await browser.$('[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]')).click();
    await waitFor("runtime removed", async () => !(await (await browser.$(`[data-testid^="runtime-cpython-${made.version}"]`)).isExisting()), 30_000);
    if (existsSync(join(home, "data/runtimes", `cpython-${made.version}-linux-x86_64-gnu`))) throw new Error("the removed runtime is still on disk");
  });

  const machinePrefix = execFileSync("python3", ["-c", "import sys; print(sys.base_prefix)"], { encoding: "utf8" }).trim();
  let chosenKey = "";
  await step("02b-first-run", async () => {
    await (await $t("nav-environments")).click();
    await exists('[data-testid="first-run"]', 10_000);
    // A task that needs a default Python fails; its message tells no CLI command and offers
    // the button that leads to the choice.
    await (await $t("env-repair-admin")).click();
    const failed = await waitFor("admin repair failed", async () => {
      const el = await browser.$('[data-testid="env-task"]');
      return (await el.getAttribute("data-status")) === "failed" ? el : null;
    }, 60_000);
    const text = await failed.getText();
    if (/beep-host/.test(text)) throw new Error(`a message tells to run a CLI command: ${text}`);
    if (!text.includes("No default runtime is set")) throw new Error(`the failure says: ${text}`);
    await shot("02b-admin-failed");
    await (await $t("env-task-fix")).click();
    // The interpreters found, and the newest Python of the catalog: "Install and use"
    // downloads it from the mirror and makes it the default in one click.
    const options = await browser.$$('[data-testid="first-run-option"]');
    const paths = [];
    for (const o of options) paths.push(await o.getAttribute("data-path"));
    if (!paths.includes(machinePrefix)) throw new Error(`the machine's Python (${machinePrefix}) is not offered: ${paths}`);
    const install = await exists('[data-testid="first-run-managed"] [data-testid="first-run-install"]', 10_000);
    await shot("02b-first-run-choice");
    await install.click();
    await exists('[data-testid="first-run-task"][data-status="running"]', 5_000);
    await waitFor("installed and made the default (first run over)", async () => {
      const task = await browser.$('[data-testid="first-run-task"]');
      if ((await task.isExisting()) && (await task.getAttribute("data-status")) === "failed") throw new Error(await task.getText());
      return !(await (await browser.$('[data-testid="first-run"]')).isExisting());
    }, 120_000);
    const runtimes = await browser.execute(() => window.__TAURI_INTERNALS__.invoke("runtimes_list"));
    const chosen = runtimes.find((r) => r.default);
    if (!chosen || chosen.kind !== "managed" || chosen.version !== made.version || !chosen.path.startsWith(join(home, "data/runtimes")))
      throw new Error(`the default after "Install and use": ${JSON.stringify(chosen)}`);
    chosenKey = chosen.key;
    log("installed and made the default:", chosenKey);
  });

  await step("03-env-create", async () => {
    // Keyboard only: Enter on "New environment", type the name, Enter submits.
    await browser.execute(() => document.querySelector('[data-testid="env-new"]').focus());
    await browser.keys(["Enter"]);
    await exists('[data-testid="env-name"]');
    const focused = await browser.execute(() => document.activeElement?.getAttribute("data-testid"));
    if (focused !== "env-name") throw new Error(`the form opened with focus on ${focused}`);
    await browser.keys([..."bad name!"]);
    await waitFor("the allowed characters", async () =>
      (await (await $t("env-name-help")).getText()).includes("only ASCII letters, digits, `.`, `_` and `-` are allowed"), 5_000);
    if (await (await $t("env-create")).isEnabled()) throw new Error("Create is enabled with a bad name");
    for (let i = 0; i < "bad name!".length; i++) await browser.keys(["Backspace"]);
    await browser.keys([..."e2e"]);
    // The runtime chosen on first run is preselected.
    const selected = await (await $t("env-runtime")).getValue();
    if (selected !== chosenKey) throw new Error(`the form preselects ${JSON.stringify(selected)}, not the default ${chosenKey}`);
    await waitFor("name accepted", async () => (await $t("env-create")).isEnabled(), 5_000);
    await browser.keys(["Enter"]);
    await waitFor("environment e2e listed", async () => {
      const st = await (await browser.$('[data-testid="env-task"]')).getAttribute("data-status");
      if (st === "failed") throw new Error(await (await $t("env-task")).getText());
      return st === "done" && (await browser.$('[data-testid="env-e2e"]')).isExisting();
    }, 180_000);
    const done = await (await $t("env-task-message")).getText();
    if (!done.includes("Created “e2e”")) throw new Error(`the create ended with: ${done}`);
    await waitFor("focus on the new row", async () =>
      (await browser.execute(() => document.activeElement?.getAttribute("data-testid"))) === "env-open-e2e", 5_000);
    // The size arrives after the list: the bytes of the files under the environment, links
    // counted as links (lstat), as this walk counts them; shown with a unit.
    const size = await browser.$('[data-testid="env-e2e"] [data-testid="env-size"]');
    const onDisk = treeBytes(join(home, "data/envs/e2e"));
    if (!(onDisk > 0)) throw new Error(`environment e2e has ${onDisk} bytes on disk`);
    await waitFor(`environment e2e size ${onDisk}`, async () => Number(await size.getAttribute("data-bytes")) === onDisk, 30_000);
    const text = await size.getText();
    if (!/^\d+(\.\d)? (B|KB|MB|GB)$/.test(text) || text.startsWith("0 ")) throw new Error(`size shown as "${text}"`);
  });

  await step("03b-failures-kept", async () => {
    // Two packages on disk, one requiring the other (metadata only: pip cannot remove them).
    const site = execFileSync(join(home, "data/envs/e2e/bin/python"), ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], { encoding: "utf8" }).trim();
    for (const [dir, meta] of [
      ["beepdep_base-1.0.dist-info", "Name: beepdep-base\nVersion: 1.0\n"],
      ["beepdep_user-2.0.dist-info", "Name: beepdep-user\nVersion: 2.0\nRequires-Dist: beepdep-base>=1\n"],
    ]) {
      mkdirSync(join(site, dir), { recursive: true });
      writeFileSync(join(site, dir, "METADATA"), meta);
    }
    await (await $t("env-open-e2e")).click();
    await exists('[data-testid="env-details"]');
    // An install that cannot succeed: its failure and the installer's message stay.
    await (await exists('[data-testid="pkg-install-input"]')).setValue("beep-no-such-package-e2e");
    await (await $t("pkg-install")).click();
    const failed = await waitFor("install failed", async () => {
      const el = await browser.$('[data-testid="pkg-task"]');
      return (await el.getAttribute("data-status")) === "failed" ? el : null;
    }, 60_000);
    const message = await (await $t("pkg-task-message")).getText();
    if (!message.includes("beep-no-such-package-e2e")) throw new Error(`the failure says: ${message}`);
    log("install failure shown:", message.split("\n")[0]);
    // Removing a package names what needs it; pip's refusal then stays on screen.
    await (await exists('[data-testid="pkg-remove-beepdep-base"]')).click();
    const dependents = await exists('[data-testid="pkg-dependents"]', 5_000);
    if (!(await dependents.getText()).includes("beepdep-user 2.0")) throw new Error(`the confirmation says: ${await dependents.getText()}`);
    await shot("03b-remove-confirm");
    await (await browser.$(`[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]`)).click();
    await waitFor("remove failed", async () =>
      (await (await browser.$('[data-testid="pkg-task"]')).getAttribute("data-status")) === "failed", 60_000);
    const removeMessage = await (await $t("pkg-task-message")).getText();
    if (!removeMessage.includes("beepdep-base")) throw new Error(`the remove failure says: ${removeMessage}`);
    // The failure stays through the reloads that follow a task.
    await browser.pause(1500);
    if ((await (await $t("pkg-task")).getAttribute("data-status")) !== "failed") throw new Error("the package failure was cleared");
    for (const dir of ["beepdep_base-1.0.dist-info", "beepdep_user-2.0.dist-info"]) rmSync(join(site, dir), { recursive: true, force: true });
  });

  await step("03c-broken-recreate", async () => {
    // Its base interpreter gone: the row says what is broken and offers the fix.
    const cfg = join(home, "data/envs/e2e/pyvenv.cfg");
    const original = readFileSync(cfg, "utf8");
    writeFileSync(cfg, original.replace(/^home\s*=.*$/m, "home = /nonexistent-e2e/bin"));
    await (await $t("nav-runtimes")).click();
    await (await $t("nav-environments")).click();
    const problem = await (await exists('[data-testid="env-e2e"] [data-testid="env-problem"]', 10_000)).getText();
    if (!problem.trim()) throw new Error("a broken environment does not say what is broken");
    log("broken environment shows:", problem);
    await shot("03c-broken");
    await (await $t("env-recreate-e2e")).click();
    await (await browser.$(`[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]`)).click();
    await waitFor("recreated", async () => {
      const st = await (await browser.$('[data-testid="env-task"]')).getAttribute("data-status");
      if (st === "failed") throw new Error(await (await $t("env-task")).getText());
      return st === "done";
    }, 180_000);
    await waitFor("healthy again", async () => !(await (await browser.$('[data-testid="env-e2e"] [data-testid="env-broken"]')).isExisting()), 10_000);
    if (/nonexistent-e2e/.test(readFileSync(cfg, "utf8"))) throw new Error("pyvenv.cfg still names the missing interpreter");
  });

  let pid = 0;
  await step("04-backend-ready", async () => {
    await (await $t("nav-backends")).click();
    await (await exists('[data-testid="backend-env"]')).selectByAttribute("value", "e2e");
    // gRPC in an environment without grpcio: refused with what is missing, no CLI command,
    // and the button the core's hint stands for.
    await (await $t("backend-transport")).selectByAttribute("value", "rpc");
    await (await $t("backend-start")).click();
    const refused = await (await exists('[data-testid="backend-start-error"]', 30_000)).getText();
    if (/beep-host/.test(refused) || !/grpcio/.test(refused)) throw new Error(`the gRPC refusal says: ${refused}`);
    const fix = await (await exists('[data-testid="backend-start-error-fix"]', 5_000)).getText();
    if (!/Repair the admin environment/.test(fix)) throw new Error(`the gRPC refusal offers: ${fix}`);
    await shot("04-grpc-refused");
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
    // The system's scheme here is light (no GTK dark theme): the page is light and reads.
    await checkScheme(false);
  });

  await step("05-console", async () => {
    await exists('[data-testid="backend-detail"]');
    const input = await $t("console-input");
    await enter(input, "print('hi')");
    const last = async (what) => {
      const entries = await browser.$$('[data-testid="console-entry"]');
      if (!entries.length) return null;
      const el = await entries[entries.length - 1].$(`[data-testid="${what}"]`);
      return (await el.isExisting()) ? (await el.getText()).trim() : null;
    };
    await waitFor("hi printed", async () => (await last("console-stdout")) === "hi", 20_000);
    await enter(input, "x = 20");
    await waitFor("two entries", async () => (await browser.$$('[data-testid="console-entry"]')).length === 2, 10_000);
    await enter(input, "print('x is', x); x + 1");
    await waitFor("output and value together", async () => (await last("console-stdout")) === "x is 20" && (await last("console-value")) === "21", 10_000);
    // ↑ recalls the last input.
    await input.click();
    await browser.keys(["ArrowUp"]);
    const recalled = await input.getValue();
    if (recalled !== "print('x is', x); x + 1") throw new Error(`↑ recalled ${JSON.stringify(recalled)}`);
    await input.clearValue();
    // The sparklines: drawn across the whole box, with what the top means and the time shown.
    const spark = await waitFor("sparklines with a few seconds of samples", () => browser.execute(() => {
      const out = {};
      for (const id of ["cpu", "memory"]) {
        const fig = document.querySelector(`[data-testid="spark-${id}"]`);
        const box = fig.querySelector("svg").getBoundingClientRect();
        const line = fig.querySelector("polyline").getBoundingClientRect();
        out[id] = { box: Math.round(box.width), from: Math.round(line.left - box.left), to: Math.round(box.right - line.right),
          max: fig.querySelector('[data-testid="spark-max"]').textContent.trim(), span: fig.querySelector('[data-testid="spark-span"]').textContent.trim() };
      }
      return /^last \d+s$/.test(out.cpu.span) && Number(out.cpu.span.match(/\d+/)[0]) >= 2 ? out : null;
    }), 15_000);
    log("sparklines:", JSON.stringify(spark));
    for (const [id, g] of Object.entries(spark)) {
      if (g.from > 2 || g.to > 2) throw new Error(`the ${id} sparkline leaves ${g.from} px left and ${g.to} px right of its ${g.box} px box`);
      if (!(id === "cpu" ? /^\d+(\.\d)?%$/ : /^\d+(\.\d)? (KB|MB|GB)$/).test(g.max)) throw new Error(`the ${id} sparkline's max label reads ${g.max}`);
    }
  });

  await step("05b-console-interrupt", async () => {
    const input = await $t("console-input");
    for (const how of ["button", "ctrl-c"]) {
      await enter(input, "import time; time.sleep(30)");
      await exists('[data-testid="console-busy"]', 5_000);
      await browser.pause(300);
      const t0 = Date.now();
      if (how === "button") await (await $t("console-interrupt")).click();
      else {
        await input.click();
        await browser.keys(["Control", "c"]);
        await browser.keys(["Control"]);
      }
      await waitFor("call interrupted", async () => !(await (await browser.$('[data-testid="console-busy"]')).isExisting()), 5_000);
      const took = Date.now() - t0;
      const entries = await browser.$$('[data-testid="console-entry"]');
      const tb = await (await entries[entries.length - 1].$('[data-testid="console-traceback"]')).getText();
      if (!tb.includes("KeyboardInterrupt")) throw new Error(`the interrupted call shows: ${tb}`);
      if (took > 1000) throw new Error(`interrupt (${how}) took ${took} ms`);
      log(`interrupt (${how}) ended a 30 s call in ${took} ms`);
    }
  });

  await step("05c-crash-start-again", async () => {
    // SIGKILL from outside: the row says crashed, the detail says how it ended (no memory,
    // no token), and Start again brings it back with a new process.
    process.kill(pid, "SIGKILL");
    // The row as it is the moment it reads "crashed" (one read of the page, polled fast):
    // no pid, CPU or memory of the dead process, not even until the next tick.
    const crashedRow = await waitFor("crashed", () => browser.execute(() => {
      const tr = document.querySelector('[data-testid="backends-table"] tbody tr');
      const text = (id) => tr?.querySelector(`[data-testid="${id}"]`)?.textContent?.trim();
      return text("backend-state") === "crashed"
        ? { pid: text("backend-pid"), cpu: text("backend-cpu"), memory: text("backend-memory"), bytes: tr.querySelector('[data-testid="backend-memory"]').getAttribute("data-bytes") }
        : null;
    }), 15_000, 40);
    if (crashedRow.pid !== "—" || crashedRow.cpu !== "—" || crashedRow.memory !== "—" || crashedRow.bytes !== "0") throw new Error(`the crashed row still shows ${JSON.stringify(crashedRow)}`);
    const exit = await (await exists('[data-testid="backend-last-exit"]', 5_000)).getText();
    if (!/SIGKILL|signal 9/.test(exit)) throw new Error(`the detail says: ${exit}`);
    const detail = await (await $t("backend-detail")).getText();
    if (/Copy token/.test(detail)) throw new Error("a crashed backend offers Copy token");
    if (await (await browser.$('[data-testid="backend-detail"] [data-testid="backend-detail-memory"]')).isExisting()) throw new Error("a crashed backend shows memory");
    await shot("05c-crashed");
    await (await $t("backend-start-again")).click();
    const again = await waitFor("ready again", async () => {
      if ((await (await $t("backend-state")).getText()) !== "ready") return 0;
      const p = Number(await (await $t("backend-pid")).getText());
      return p > 0 && p !== pid ? p : 0;
    }, 60_000);
    if (!alive(again)) throw new Error(`pid ${again} is not running`);
    const row = await (await browser.$('[data-testid="backends-table"] tbody tr')).getText();
    if (/SIGKILL|signal/.test(row)) throw new Error(`the row still shows the last exit: ${row}`);
    log("started again:", pid, "->", again);
    pid = again;
  });

  await step("05d-layout-900x600", async () => {
    const before = await browser.getWindowSize();
    await browser.setWindowSize(900, 600);
    await waitFor("window at 900 px", async () => (await browser.execute(() => window.innerWidth)) <= 900, 5_000);
    await browser.pause(300);
    const m = await browser.execute(() => {
      const main = document.querySelector("main");
      const table = document.querySelector('[data-testid="backends-table"]');
      const panel = table.closest(".panel");
      const right = (el) => el.getBoundingClientRect().right;
      const cells = [...table.querySelectorAll("tbody tr:first-child td, tbody tr:first-child button")];
      return {
        inner: window.innerWidth,
        mainScroll: main.scrollWidth - main.clientWidth,
        table: right(table), panel: right(panel),
        widest: Math.max(...cells.map(right)),
      };
    });
    log("layout at 900x600:", JSON.stringify(m));
    await shot("05d-layout-900x600-view");
    await browser.setWindowSize(before.width, before.height);
    if (m.mainScroll > 0) throw new Error(`the page scrolls sideways by ${m.mainScroll} px`);
    if (m.table > m.panel || m.widest > m.panel) throw new Error(`the table (${m.table}, cells to ${m.widest}) spills out of its panel (${m.panel})`);
  });

  await step("06-backend-stopped", async () => {
    await (await $t("backend-stop")).click();
    await waitFor("stopped", async () => (await (await $t("backend-state")).getText()) === "stopped", 30_000);
    await waitFor(`pid ${pid} gone`, async () => !alive(pid), 10_000);
  });

  await step("06b-backend-on-a-runtime", async () => {
    // A backend on a runtime itself (no environment): chosen in the same form, shown as
    // `runtime <key>`, and the runtime cannot be removed while it runs.
    await (await $t("nav-backends")).click();
    const select = await exists('[data-testid="backend-env"]');
    const values = [];
    for (const o of await select.$$("option")) values.push(await o.getAttribute("value"));
    const choice = values.find((v) => v.startsWith("runtime:cpython-"));
    if (!choice) throw new Error(`no runtime to run on in the form: ${values.join(", ")}`);
    const key = choice.slice("runtime:".length);
    await select.selectByAttribute("value", choice);
    await (await $t("backend-transport")).selectByAttribute("value", "pipe");
    await (await $t("backend-start")).click();
    let header = "";
    await waitFor("the new backend's detail", async () => {
      const err = await browser.$('[data-testid="backend-start-error"]');
      if (await err.isExisting()) throw new Error(await err.getText());
      const h = await browser.$('[data-testid="backend-detail"] h2');
      header = (await h.isExisting()) ? await h.getText() : "";
      return header.includes("on runtime");
    }, 60_000);
    if (!header.includes(`on runtime ${key}`)) throw new Error(`the detail says: ${header}`);
    const id = header.match(/Backend (\S+)/)[1];
    let runtimePid = 0;
    await waitFor("backend on the runtime ready", async () => {
      const state = await browser.$(`[data-testid="backend-${id}"] [data-testid="backend-state"]`);
      if (!(await state.isExisting()) || (await state.getText()) !== "ready") return false;
      runtimePid = Number(await (await browser.$(`[data-testid="backend-${id}"] [data-testid="backend-pid"]`)).getText());
      return runtimePid > 0;
    }, 60_000);
    const places = [];
    for (const e of await browser.$$('[data-testid="backend-place"]')) places.push(await e.getText());
    if (!places.includes(`runtime ${key}`)) throw new Error(`the table shows: ${places.join(" | ")}`);
    const exe = readFileSync(`/proc/${runtimePid}/cmdline`, "utf8").split("\0")[0];
    if (!exe.includes(key)) throw new Error(`the backend runs ${exe}, not the runtime ${key}`);
    await shot("06b-backend-on-runtime");
    // Removing its runtime is refused, naming the backend; the runtime stays.
    await (await $t("nav-runtimes")).click();
    await (await exists(`[data-testid="runtime-remove-${key}"]`)).click();
    await (await browser.$(`[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]`)).click();
    const refused = await (await exists('[data-testid="runtime-task"][data-status="failed"]', 15_000)).getText();
    if (!refused.includes(id) || /beep-host|--force/.test(refused)) throw new Error(`removing a runtime in use says: ${refused}`);
    await exists(`[data-testid="runtime-${key}"]`);
    if (!alive(runtimePid)) throw new Error("the backend died when its runtime removal was refused");
    await shot("06b-runtime-remove-refused");
    await (await $t("nav-backends")).click();
    await (await exists(`[data-testid="backend-${id}"] [data-testid="backend-open"]`)).click();
    await (await exists('[data-testid="backend-stop"]')).click();
    await waitFor(`pid ${runtimePid} gone`, async () => !alive(runtimePid), 30_000);
  });

  await step("07-env-deleted", async () => {
    await (await $t("nav-environments")).click();
    await (await exists('[data-testid="env-delete-e2e"]')).click();
    const dialog = await exists('[data-testid="confirm-dialog"]');
    const text = await dialog.getText();
    if (!text.includes("e2e")) throw new Error(`the confirmation does not name the environment: ${text}`);
    await (await browser.$(`[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]`)).click();
    await waitFor("environment gone", async () => !(await (await browser.$('[data-testid="env-e2e"]')).isExisting()), 30_000);
    await exists('[data-testid="envs-empty"]');
    const done = await (await exists('[data-testid="env-task"][data-status="done"]', 10_000)).getText();
    if (!done.includes("Deleted “e2e”")) throw new Error(`the delete ended with: ${done}`);
  });

  await step("08-settings", async () => {
    await (await $t("nav-settings")).click();
    await exists('[data-testid="data-dir"]');
    const rows = await waitFor("configuration check rows", async () => {
      const r = await browser.$$('[data-testid="config-check"] tr');
      return r.length > 0 ? r : null;
    });
    log("config check:", rows.length, "items");
    // The environment's values are shown as in force, read-only, with the variable.
    const forced = await (await exists('[data-testid="in-force-catalog"]')).getText();
    if (!forced.includes("BEEP_PYTHON_CATALOG")) throw new Error(`the catalog in force says: ${forced}`);
    const value = await (await browser.$('[data-testid="in-force-catalog"] input')).getValue();
    if (value !== catalog) throw new Error(`catalog in force ${value}, not ${catalog}`);
    if (!(await (await browser.$('[data-testid="in-force-catalog"] input')).getAttribute("readonly") !== null)) throw new Error("the value in force is editable");
    // An invalid catalog is refused with why, not "Saved.".
    await (await $t("settings-catalog")).setValue("not a catalog");
    await (await $t("settings-save")).click();
    const refused = await (await exists('[data-testid="settings-error"]', 5_000)).getText();
    if (!/catalog/i.test(refused) || (await (await browser.$('[data-testid="settings-saved"]')).isExisting())) throw new Error(`an invalid catalog: ${refused}`);
    await (await $t("settings-catalog")).click();
    await browser.keys(["Control", "a"]);
    await browser.keys(["Control"]);
    await browser.keys(["Backspace"]);
    await (await $t("settings-save")).click();
    await exists('[data-testid="settings-saved"]', 5_000);
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
  await (await browser.$(`[data-testid="confirm-dialog"][open] [data-testid="confirm-ok"]`)).click().catch(() => {});
  await waitFor(`backend ${lastPid} stopped by quitting`, async () => !alive(lastPid), 20_000);
  log("quit stopped backend", lastPid);
  await browser.deleteSession().catch(() => {});
  browser = undefined;
  const appGone = () => waitFor("the app exited", async () =>
    !execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").some((l) => l.startsWith(app)), 20_000);
  await appGone();
  driver.kill("SIGTERM");
  await waitFor("driver port free", () => new Promise((ok) => {
    const socket = connect(4444, "127.0.0.1", () => { socket.end(); ok(false); });
    socket.on("error", () => ok(true));
  }), 10_000);

  await (await import("./projects.mjs")).projectsSteps({ work, home, repo, app, made, openApp, step, shot, exists, $t, waitFor, alive, browser: () => browser, driver: () => driver });

  // The app again, with the system in the dark scheme (WebKitGTK follows GTK_THEME's
  // `:dark` variant): the page is dark and its text still reads. Then "Keep running": the
  // app exits and the backend it started goes on.
  await openApp({ GTK_THEME: "Adwaita:dark" });
  let keptPid = 0;
  let keptId = "";
  await step("10-dark-scheme", async () => {
    await exists('[data-testid="nav-overview"]');
    await shot("10-dark-overview");
    await (await $t("nav-backends")).click();
    await (await exists('[data-testid="backend-env"]')).selectByAttribute("value", "e2e-close");
    await (await $t("backend-start")).click();
    // The daemon still lists the backends stopped earlier: the new one is the ready row.
    const ready = await waitFor("a ready backend", () => browser.execute(() => {
      for (const tr of document.querySelectorAll('[data-testid="backends-table"] tbody tr')) {
        if (tr.querySelector('[data-testid="backend-state"]')?.textContent.trim() !== "ready") continue;
        const pid = Number(tr.querySelector('[data-testid="backend-pid"]')?.textContent);
        if (pid > 0) return { pid, id: tr.getAttribute("data-testid").replace(/^backend-/, "") };
      }
      return null;
    }), 60_000);
    keptPid = ready.pid;
    keptId = ready.id;
    // A few seconds of samples for the sparklines in the picture.
    await waitFor("samples", async () => /^last [3-9]s$/.test(await (await exists('[data-testid="spark-cpu"] [data-testid="spark-span"]')).getText()), 15_000);
    await checkScheme(true);
  });

  await step("11-close-keep-running", async () => {
    await browser.execute(() => window.__TAURI_INTERNALS__.invoke("plugin:window|close", { label: "main" }));
    const dialog = await exists('[data-testid="confirm-dialog"][open]', 10_000);
    if (!/1 backend is running/.test(await dialog.getText())) throw new Error(`the close dialog says: ${await dialog.getText()}`);
  });
  // The app exits on the click: no picture after it.
  await (await $t("close-keep")).click().catch(() => {});
  await browser.deleteSession().catch(() => {});
  browser = undefined;
  await appGone();
  // The backend outlives the app: its process runs, and the daemon still lists it ready.
  if (!existsSync(`/proc/${keptPid}`) || !/^State:\s+[RS]/m.test(readFileSync(`/proc/${keptPid}/status`, "utf8"))) throw new Error(`backend pid ${keptPid} did not outlive the app`);
  const listed = JSON.parse(run("ps", "--json")).find((b) => b.id === keptId);
  if (!listed || listed.state !== "ready" || listed.pid !== keptPid) throw new Error(`after the app quit the daemon lists ${JSON.stringify(listed)}`);
  log("kept running after the app exited:", keptId, "pid", keptPid);
  await (await import("./live.mjs")).live({ app, env, driverBin, shots, venv: "e2e-close", log }); // a long call outlives the app (live.mjs)
  run("stop", keptId);
  await waitFor(`kept backend ${keptPid} stopped`, async () => !alive(keptPid), 20_000);
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
  // The daemon of a failed run exits when its home is gone; the mirror and catalog go too.
  if (failed && homeDir) rmSync(dirname(homeDir), { recursive: true, force: true });
  for (const s of servers) s.close();
  for (const s of servers) s.closeAllConnections?.();
}
process.exit(failed ? 1 : 0);
