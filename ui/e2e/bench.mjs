// GUI benchmark (not a test): launch to first listed environment, idle memory with 10
// environments and 5 backends, CPU while the Backends page shows 20 live backends.
// Goals: first content < 1 s, idle memory < 150 MB, live page < 5% of one core.
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

/** The app and every descendant (WebKit's web and network processes). */
function tree(root) {
  const all = execFileSync("ps", ["-eo", "pid,ppid,comm"], { encoding: "utf8" }).trim().split("\n").slice(1)
    .map((l) => l.trim().split(/\s+/)).map(([p, pp, c]) => ({ pid: +p, ppid: +pp, comm: c }));
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i] && !/python/.test(p.comm)) out.push(p.pid);
  return out;
}
const rss = (pids) => pids.reduce((s, p) => { try { return s + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))[1]) * 1024; } catch { return s; } }, 0);
const cpu = (pids) => pids.reduce((s, p) => { try { const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" "); return s + Number(f[11]) + Number(f[12]); } catch { return s; } }, 0);
function appPid() {
  const out = execFileSync("pgrep", ["-f", app], { encoding: "utf8" }).trim().split("\n").map(Number);
  return Math.min(...out);
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
  await browser.$('[data-testid="env-env0"]').waitForExist({ timeout: 30000, interval: 20 });
  results.launch_to_first_env_ms = Date.now() - t0;
  const pid = appPid();
  for (let i = 0; i < 5; i++) execFileSync(cli, ["start", "pipe", "--venv", `env${i}`, "--detach"], { env });
  await sleep(5000);
  results.idle_memory_mb_10_envs_5_backends = Math.round(rss(tree(pid)) / 1048576);
  for (let i = 5; i < 20; i++) execFileSync(cli, ["start", "pipe", "--venv", `env${i % 10}`, "--detach"], { env });
  await browser.$('[data-testid="nav-backends"]').click();
  await sleep(3000);
  const pids = tree(pid);
  const c0 = cpu(pids); const w0 = Date.now();
  await sleep(20000);
  results.backends_page_20_live_cpu_percent = Number((((cpu(pids) - c0) / TICK) / ((Date.now() - w0) / 1000) * 100).toFixed(1));
} finally {
  try { execFileSync(cli, ["stop", "--all"], { env }); } catch {}
  if (browser) await browser.deleteSession().catch(() => {});
  driver.kill();
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(results, null, 2));
console.log(`goals: first content < 1000 ms, idle memory < 150 MB, live page < 5%`);
