// End-to-end steps of the Projects page (called from run.mjs between its two app sessions).
//
// A session of its own: `up` locks and syncs with uv (pip cannot lock), so the app runs with
// BEEP_HOST_INSTALLER=uv and the uv the Rust tests share (target/tmp/beep-uv, installed
// there the way tests/support/venv.rs does when missing), offline. Two folders made here:
// a bad one (an unknown key: the error with its line, on the page and as Up's failed task)
// and a good one: the test runtime, an environment with no requirements, one pipe backend.
// Open, Up, the backend ready on the Projects page and on Backends, Down; the folders are
// remembered in <config>/app.json, the bad one forgotten. Then its offline bundle: Export
// bundle… of the good one (the uv wheel a bundle carries comes from a local `file://`
// index, BEEP_HOST_UV_INDEX, as tests/bundle.rs does), its environment deleted, the bundle
// opened into a fresh folder (`up --bundle`: the backend comes up), and a copy with one
// byte changed refused with the member named.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";

/** The shared uv of the Rust tests (the same place, the same way). */
function sharedUv(repo) {
  const root = join(repo, "target/tmp/beep-uv");
  const uv = join(root, "bin/uv");
  if (existsSync(uv)) return uv;
  mkdirSync(join(repo, "target/tmp"), { recursive: true });
  const staging = `${root}.staging`;
  rmSync(staging, { recursive: true, force: true });
  execFileSync("python3", ["-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", staging, "uv"], {
    env: { ...process.env, PIP_ROOT_USER_ACTION: "ignore" }, stdio: ["ignore", "inherit", "inherit"],
  });
  rmSync(root, { recursive: true, force: true });
  renameSync(staging, root);
  return uv;
}

/**
 * A `uv` wheel for this platform on a `file://` simple index (`<dir>/uv/index.html` with
 * its sha256), shaped as PyPI's are; its `uv` is a small script running `uv` (the 40 MB
 * binary is not copied into every bundle). The index URL and the wheel's member name.
 */
function uvIndex(dir, uv) {
  const py = String.raw`
import hashlib, os, subprocess, sys, zipfile
dir, uv = sys.argv[1], sys.argv[2]
version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
page = os.path.join(dir, "uv")
os.makedirs(page, exist_ok=True)
name = f"uv-{version}-py3-none-manylinux_2_17_x86_64.whl"
wheel = os.path.join(page, name)
info = f"uv-{version}.dist-info"
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
    for path, text in [
        (f"uv-{version}.data/scripts/uv", f"#!/bin/sh\n# beep-e2e-uv-shim\nexec '{uv}' \"$@\"\n"),
        (f"{info}/METADATA", f"Metadata-Version: 2.1\nName: uv\nVersion: {version}\n"),
        (f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: beep-e2e\nRoot-Is-Purelib: false\nTag: py3-none-manylinux_2_17_x86_64\n"),
        (f"{info}/RECORD", ""),
    ]:
        entry = zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0))
        entry.external_attr = 0o755 << 16
        z.writestr(entry, text)
sha = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
open(os.path.join(page, "index.html"), "w").write(f'<html><body><a href="{name}#sha256={sha}">{name}</a></body></html>\n')
print(name)
`;
  const name = execFileSync("python3", ["-c", py, dir, uv], { encoding: "utf8" }).trim();
  return { url: `file://${dir}`, member: `tools/${name}` };
}

/** A copy of the zip `from` with one byte of `marker` (inside a stored member) flipped. */
function flipByte(from, to, marker) {
  const bytes = readFileSync(from);
  const at = bytes.indexOf(Buffer.from(marker));
  if (at < 0) throw new Error(`${marker} is not in ${from}`);
  bytes[at] ^= 1;
  writeFileSync(to, bytes);
}

/**
 * `t`: what run.mjs shares — paths (`work`, `home`, `repo`, `app`), the test runtime
 * (`made`), `openApp(extraEnv)`, `driver()` and `browser()` getters, and its helpers.
 */
export async function projectsSteps(t) {
  const { work, home, repo, app, made, openApp, step, shot, exists, $t, waitFor, alive } = t;
  const uv = sharedUv(repo);
  const root = join(work, "projects");
  const good = join(root, "e2eproj");
  const bad = join(root, "badproj");
  mkdirSync(good, { recursive: true });
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(good, "beep.toml"), `[python]
version = "${made.version}"

[environment]
name = "e2e-project"
requirements = []

[[backend]]
name = "model"
transport = "pipe"
restart = "on-failure"
health = { every = "1s", timeout = "5s", failures = 3 }
limits = { memory = "1 GiB" }
env = { E2E_PROJECT = "yes" }
`);
  writeFileSync(join(bad, "beep.toml"), `[python]
version = "${made.version}"

[[backend]]
name = "model"
helth = { every = "5s" }
`);
  const uvIdx = uvIndex(join(work, "uv-index"), uv);
  await openApp({
    BEEP_HOST_INSTALLER: "uv", BEEP_HOST_UV: uv, UV_CACHE_DIR: join(repo, "target/tmp/uv-cache"),
    BEEP_HOST_UV_INDEX: uvIdx.url,
  });
  const browser = t.browser();
  const text = async (id) => (await exists(`[data-testid="${id}"]`)).getText();

  await step("12-project-bad", async () => {
    await (await exists('[data-testid="nav-projects"]')).click();
    await exists('[data-testid="projects-empty"]');
    // Not a project folder: refused where it was typed, nothing remembered.
    await (await $t("project-path")).setValue(root);
    await (await $t("project-open")).click();
    const refused = await text("project-open-error");
    if (!refused.includes("holds no `beep.toml`")) throw new Error(`opening a plain folder says: ${refused}`);
    await (await $t("project-path")).setValue(bad);
    await (await $t("project-open")).click();
    const error = await text("project-error");
    if (!/^beep\.toml:6: unknown key `helth`/.test(error)) throw new Error(`the bad project shows: ${error}`);
    // Up of a bad file: a failed task with the core's message, nothing started.
    await (await $t("project-up")).click();
    const failed = await (await exists('[data-testid="project-task"][data-status="failed"]', 20_000)).getText();
    if (!failed.includes("beep.toml:6: unknown key `helth`")) throw new Error(`Up of the bad project ended with: ${failed}`);
  });

  await step("13-project-open", async () => {
    await (await $t("project-forget")).click();
    await exists('[data-testid="projects-empty"]');
    await (await $t("project-path")).setValue(good);
    await (await $t("project-open")).click();
    await exists(`[data-testid="project-item"][data-dir="${good}"]`);
    await exists('[data-testid="project-declared-model"]');
    const declared = await text("project-declared");
    for (const want of [made.version, "e2e-project", "pipe", "on-failure", "every 1 s, timeout 5 s, 3 failures", "1.0 GB"])
      if (!declared.includes(want)) throw new Error(`the declaration lacks ${want}: ${declared}`);
    const state = await text("project-backend-model");
    if (!/not running/.test(state) || !/Up starts it/.test(state)) throw new Error(`before Up the backend shows: ${state}`);
    if (!/missing/.test(await text("project-fact-environment"))) throw new Error("the environment is not shown missing before Up");
    const prefs = JSON.parse(readFileSync(join(home, "config/app.json"), "utf8"));
    if (JSON.stringify(prefs.projects) !== JSON.stringify([good])) throw new Error(`app.json remembers ${JSON.stringify(prefs.projects)}`);
  });

  let pid = 0;
  await step("14-project-up", async () => {
    await (await $t("project-up")).click();
    const end = await waitFor("Up ended", async () => {
      const el = await browser.$('[data-testid="project-task"]');
      const s = (await el.isExisting()) ? await el.getAttribute("data-status") : null;
      return s === "done" || s === "failed" ? { s, text: await el.getText() } : null;
    }, 180_000);
    if (end.s !== "done" || !/started model/.test(end.text)) throw new Error(`Up ended ${end.s}: ${end.text}`);
    const row = await waitFor("model ready with a pid and its memory", async () => {
      const r = await $t("project-backend-model");
      const state = await (await r.$('[data-testid="project-backend-state"]')).getText();
      const p = Number(await (await r.$('[data-testid="project-backend-pid"]')).getText());
      const mem = await (await r.$('[data-testid="project-backend-memory"]')).getText();
      return state === "ready" && p > 0 && /B \/ 1\.0 GB$/.test(mem) ? { p } : null;
    }, 60_000);
    pid = row.p;
    if (!alive(pid)) throw new Error(`pid ${pid} is not running`);
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    if (!environ.includes("E2E_PROJECT=yes")) throw new Error("the backend did not get the declared env");
    if (!/up to date/.test(await text("project-fact-project"))) throw new Error(`after Up: ${await text("project-live")}`);
    if (!existsSync(join(good, "beep.lock"))) throw new Error("Up wrote no beep.lock");
  });

  await step("15-project-on-backends", async () => {
    await (await $t("nav-backends")).click();
    await waitFor(`backend pid ${pid} ready on Backends`, () => browser.execute((want) => {
      for (const tr of document.querySelectorAll('[data-testid="backends-table"] tbody tr'))
        if (Number(tr.querySelector('[data-testid="backend-pid"]')?.textContent) === want)
          return tr.querySelector('[data-testid="backend-state"]')?.textContent.trim() === "ready";
      return false;
    }, pid), 20_000);
    await shot("15-project-backends-list");
    await (await $t("nav-projects")).click();
    await exists('[data-testid="project-backend-model"]');
  });

  await step("16-project-down", async () => {
    await (await $t("project-down")).click();
    const done = await (await exists('[data-testid="project-task"][data-status="done"]', 60_000)).getText();
    if (!/Stopped model/.test(done)) throw new Error(`Down ended with: ${done}`);
    await waitFor(`pid ${pid} gone`, async () => !alive(pid), 20_000);
    await waitFor("model shown stopped", async () =>
      /stopped|not running/.test(await (await $t("project-backend-state")).getText()), 10_000);
  });

  const zip = join(root, "e2eproj.zip");
  await step("17-bundle-export", async () => {
    await (await $t("project-export")).click();
    const output = await $t("bundle-output");
    if (!(await output.getValue()).endsWith("/e2eproj/e2eproj-bundle.zip")) throw new Error(`the output starts as ${await output.getValue()}`);
    const here = await browser.$('[data-testid^="bundle-platform-"]:checked');
    if ((await here.getAttribute("data-testid")) !== "bundle-platform-linux-x86_64-gnu") throw new Error("this platform is not preselected");
    // A relative path is refused in the form: Export stays off.
    await output.setValue("e2eproj.zip");
    if (!/absolute path/.test(await text("bundle-export-problem"))) throw new Error("a relative output is not refused");
    if (await (await $t("bundle-export")).isEnabled()) throw new Error("Export is on with a relative output");
    await output.setValue(zip);
    await (await $t("bundle-export")).click();
    const end = await waitFor("Export ended", async () => {
      const el = await browser.$('[data-testid="project-task"]');
      const s = (await el.isExisting()) ? await el.getAttribute("data-status") : null;
      return s === "done" || s === "failed" ? { s, text: await el.getText() } : null;
    }, 180_000);
    if (end.s !== "done" || !end.text.includes(`Wrote ${zip} (`) || !/B\) for linux-x86_64-gnu/.test(end.text))
      throw new Error(`Export ended ${end.s}: ${end.text}`);
    if (!existsSync(zip)) throw new Error(`no ${zip}`);
    const listed = execFileSync(join(dirname(app), "beep-host"), ["bundle", "inspect", zip], { encoding: "utf8" });
    if (!listed.includes(uvIdx.member)) throw new Error(`the bundle lacks ${uvIdx.member}:\n${listed}`);
  });

  const fresh = join(root, "from-bundle");
  await step("18-bundle-open", async () => {
    // Its environment gone, so that up --bundle makes it from the bundle alone.
    execFileSync(join(dirname(app), "beep-host"), ["venv", "delete", "e2e-project", "--yes"], {
      env: { ...process.env, BEEP_HOST_HOME: home }, stdio: ["ignore", "pipe", "inherit"],
    });
    await (await $t("bundle-path")).setValue(zip);
    await (await $t("bundle-dir")).setValue("from-bundle");
    await (await $t("bundle-open")).click();
    if (!/absolute path/.test(await text("bundle-open-problem"))) throw new Error("a relative folder is not refused");
    await (await $t("bundle-dir")).setValue(fresh);
    await (await $t("bundle-open")).click();
    const end = await waitFor("Open bundle ended", async () => {
      const el = await browser.$('[data-testid="bundle-task"]');
      const s = (await el.isExisting()) ? await el.getAttribute("data-status") : null;
      return s === "done" || s === "failed" ? { s, text: await el.getText() } : null;
    }, 180_000);
    if (end.s !== "done" || !/created environment/i.test(end.text) || !/started model/.test(end.text))
      throw new Error(`Open bundle ended ${end.s}: ${end.text}`);
    await exists(`[data-testid="project-detail"][data-dir="${fresh}"]`);
    const row = await waitFor("model ready from the bundle", async () => {
      const r = await $t("project-backend-model");
      const state = await (await r.$('[data-testid="project-backend-state"]')).getText();
      const p = Number(await (await r.$('[data-testid="project-backend-pid"]')).getText());
      return state === "ready" && p > 0 ? { p } : null;
    }, 60_000);
    if (!alive(row.p)) throw new Error(`pid ${row.p} is not running`);
    if (readFileSync(join(fresh, "beep.lock"), "utf8") !== readFileSync(join(good, "beep.lock"), "utf8")) throw new Error("the opened lock differs");
    const prefs = JSON.parse(readFileSync(join(home, "config/app.json"), "utf8"));
    if (!prefs.projects.includes(fresh)) throw new Error(`app.json remembers ${JSON.stringify(prefs.projects)}`);
    await (await $t("project-down")).click();
    await exists('[data-testid="project-task"][data-status="done"]', 60_000);
    await waitFor(`pid ${row.p} gone`, async () => !alive(row.p), 20_000);
  });

  await step("19-bundle-tampered", async () => {
    const bad = join(root, "tampered.zip");
    flipByte(zip, bad, "beep-e2e-uv-shim");
    const target = join(root, "from-tampered");
    await (await $t("bundle-path")).setValue(bad);
    await (await $t("bundle-dir")).setValue(target);
    await (await $t("bundle-open")).click();
    const failed = await (await exists('[data-testid="bundle-task"][data-status="failed"]', 60_000)).getText();
    if (!failed.includes(`member \`${uvIdx.member}\``)) throw new Error(`the tampered bundle ended with: ${failed}`);
    if (existsSync(target)) throw new Error("the tampered bundle wrote the project folder");
  });

  // Close this session: the app exits when its WebDriver session ends.
  await browser.deleteSession().catch(() => {});
  await waitFor("the app exited", async () =>
    !execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").some((l) => l.startsWith(app)), 20_000);
  t.driver().kill("SIGTERM");
  await waitFor("driver port free", () => new Promise((ok) => {
    const socket = connect(4444, "127.0.0.1", () => { socket.end(); ok(false); });
    socket.on("error", () => ok(true));
  }), 10_000);
}
