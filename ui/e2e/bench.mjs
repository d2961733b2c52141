// GUI benchmark (not a test): launch to first content (the Overview with its counts), idle memory with 10
// environments and 5 backends, CPU while the Backends page shows 20 live backends.
// Goals: first content < 1 s, idle memory < 150 MB, live page < 5% of one core.
// Memory is PSS (shared pages split between the processes that map them), RSS beside it.
// FLOOR (optional): the webview_floor example, a bare WebKitGTK window measured the same way.
//   APP=/abs/path/beep-host-gui xvfb-run -a node ui/e2e/bench.mjs
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const app = resolve(process.env.APP ?? join(repo, "target/debug/beep-host-gui"));
const cli = resolve(process.env.CLI ?? join(repo, "target/debug/beep-host"));
const driverBin = join(process.env.HOME ?? "/root", ".cargo/bin/tauri-driver");
const TICK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The app and every descendant (WebKit's web and network processes), without the backends. */
function tree(root) {
  const all = execFileSync("ps", ["-eo", "pid,ppid,comm"], { encoding: "utf8" }).trim().split("\n").slice(1)
    .map((l) => l.trim().split(/\s+/)).map(([p, pp, c]) => ({ pid: +p, ppid: +pp, comm: c }));
  const out = [{ pid: root, comm: all.find((p) => p.pid === root)?.comm ?? "app" }];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i].pid && !/python/.test(p.comm)) out.push(p);
  return out;
}
/** A `Name:  N kB` field of a /proc file in bytes (0 once the process is gone). */
function field(file, name) {
  try {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(readFileSync(file, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
// PSS splits each shared page (libwebkit2gtk, libjavascriptcoregtk, GTK, ... mapped by all
// three processes) between the processes that map it, so the sum over the tree counts it
// once. Summed RSS counts it in every process.
const pss = (p) => field(`/proc/${p.pid}/smaps_rollup`, "Pss");
const rss = (p) => field(`/proc/${p.pid}/status`, "VmRSS");
const cpu = (p) => { try { const f = readFileSync(`/proc/${p.pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); } catch { return 0; } };
const mb = (b) => Math.round(b / 1048576);
const sum = (procs, f) => procs.reduce((s, p) => s + f(p), 0);
function appPid() {
  const out = execFileSync("pgrep", ["-f", app], { encoding: "utf8" }).trim().split("\n").map(Number);
  return Math.min(...out);
}

// The anchor: a bare WebKitGTK window with the same settings (examples/webview_floor.rs),
// measured the same way, alone: while the app runs, the libraries both map would be split
// between them and the floor would look smaller than it is.
const floorResults = {};
if (process.env.FLOOR) {
  const floor = spawn(resolve(process.env.FLOOR), [], { env: process.env, stdio: "ignore" });
  await sleep(6000);
  const procs = tree(floor.pid);
  floorResults.webview_floor_memory_mb = { pss: mb(sum(procs, pss)), rss: mb(sum(procs, rss)) };
  floorResults.webview_floor_by_process = procs.map((p) => ({ pid: p.pid, comm: p.comm, pss_mb: mb(pss(p)), rss_mb: mb(rss(p)) }));
  floor.kill();
  await sleep(1500); // its WebKit processes end with it
}

const work = mkdtempSync(join(tmpdir(), "beep-bench-"));
const home = join(work, "home");
const envs = join(home, "data/envs");
mkdirSync(envs, { recursive: true });
for (let i = 0; i < 10; i++) {
  // A bare venv plus the host's metadata file is what `venv list` reads.
  execFileSync("python3", ["-m", "venv", "--without-pip", join(envs, `env${i}`)]);
  writeFileSync(join(envs, `env${i}`, "beep-env.json"), JSON.stringify({ installer: "bench" }));
}
const env = { ...process.env, BEEP_HOST_HOME: home };
const driver = spawn(driverBin, ["--port", "4444"], { env, stdio: "ignore" });
await sleep(1500);
const results = {};
let browser;
try {
  const t0 = Date.now();
  browser = await remote({ hostname: "127.0.0.1", port: 4444, logLevel: "error", capabilities: { "tauri:options": { application: app } } });
  // First content: the Overview (the first page) counting the ten environments; then the
  // whole Overview (runtimes probed, the daemon's backends: its "Next" list).
  await browser.waitUntil(async () => /^10 environments/.test(await browser.$('[data-testid="overview-envs"]').getText().catch(() => "")),
    { timeout: 30000, interval: 20 });
  results.launch_to_first_content_ms = Date.now() - t0;
  await browser.$('[data-testid="overview-next"]').waitForExist({ timeout: 30000, interval: 20 });
  results.launch_to_whole_overview_ms = Date.now() - t0;
  const pid = appPid();
  for (let i = 0; i < 5; i++) execFileSync(cli, ["start", "pipe", "--venv", `env${i}`, "--detach"], { env });
  await sleep(5000);
  const idle = tree(pid);
  results.idle_memory_mb_10_envs_5_backends = { pss: mb(sum(idle, pss)), rss: mb(sum(idle, rss)) };
  results.idle_memory_by_process = idle.map((p) => ({ pid: p.pid, comm: p.comm, pss_mb: mb(pss(p)), rss_mb: mb(rss(p)) }));
  for (let i = 5; i < 20; i++) execFileSync(cli, ["start", "pipe", "--venv", `env${i % 10}`, "--detach"], { env });
  await browser.$('[data-testid="nav-backends"]').click();
  await browser.$('[data-testid="backends-table"] tbody tr:nth-child(20)').waitForExist({ timeout: 30000 });
  await sleep(3000);
  const live = tree(pid);
  const c0 = live.map(cpu); const w0 = Date.now();
  console.error(`live window: ${live.map((p) => `${p.comm} ${p.pid}`).join(", ")}`);
  await sleep(Number(process.env.BENCH_LIVE_SECS ?? 20) * 1000);
  const secs = (Date.now() - w0) / 1000;
  const percent = (ticks) => Number(((ticks / TICK / secs) * 100).toFixed(1));
  const used = live.map((p, i) => cpu(p) - c0[i]);
  results.backends_page_20_live_cpu_percent = percent(used.reduce((s, t) => s + t, 0));
  results.live_cpu_by_process = live.map((p, i) => ({ pid: p.pid, comm: p.comm, cpu_percent: percent(used[i]) }));
} finally {
  try { execFileSync(cli, ["stop", "--all"], { env }); } catch {}
  if (browser) await browser.deleteSession().catch(() => {});
  driver.kill();
  rmSync(work, { recursive: true, force: true });
}
if (floorResults.webview_floor_memory_mb) {
  Object.assign(results, floorResults);
  results.app_over_floor_pss_mb = results.idle_memory_mb_10_envs_5_backends.pss - floorResults.webview_floor_memory_mb.pss;
}
console.log(JSON.stringify(results, null, 2));
console.log("memory: PSS summed over the app and its WebKit processes (shared libraries counted once); RSS beside it counts them in each process");
console.log(`goals: first content < 1000 ms, idle memory < 150 MB, live page < 5% (${execFileSync("uptime", { encoding: "utf8" }).trim()})`);
