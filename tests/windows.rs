//! Windows end to end, cross-compiled and run under Wine by `scripts/test-windows.sh`
//! (`CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine`): the real `beep-host.exe` installs a
//! python-build-standalone-shaped Windows runtime from a local mirror, makes an environment,
//! installs wheels from a local folder, runs backends on every transport inside a job object,
//! and serves the host API.
//!
//! The lane prepares the test data (`scripts/windows-fixtures.py`) and names its folder in
//! `BEEP_WINDOWS_FIXTURES`; grpcio's Windows wheels are in `BEEP_WINDOWS_GRPC_WHEELS` when
//! they could be fetched.
#![cfg(windows)]

#[path = "support/http.rs"]
mod http;
#[path = "support/ids.rs"]
mod ids;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use beep_host::Paths;
use beep_host::backend::{PyValue, Transport, client};
use http::{Behaviour, FileServer};
use serde_json::{Value, json};

/// What `scripts/windows-fixtures.py` wrote.
struct Fixtures {
    dir: PathBuf,
    manifest: Value,
}

impl Fixtures {
    fn load() -> Self {
        let dir = PathBuf::from(
            std::env::var_os("BEEP_WINDOWS_FIXTURES")
                .expect("BEEP_WINDOWS_FIXTURES names the lane's test data"),
        );
        let manifest = serde_json::from_slice(&std::fs::read(dir.join("fixtures.json")).unwrap())
            .expect("fixtures.json");
        Self { dir, manifest }
    }

    fn file(&self, kind: &str) -> PathBuf {
        self.dir.join(self.manifest[kind]["path"].as_str().unwrap())
    }

    fn str(&self, kind: &str, field: &str) -> String {
        self.manifest[kind][field].as_str().unwrap().to_string()
    }

    fn wheels(&self) -> PathBuf {
        self.dir.join(self.manifest["wheels"].as_str().unwrap())
    }
}

/// A temp home whose catalog names the fixture archive under `sha256`, served by a real
/// HTTP mirror on 127.0.0.1.
struct Home {
    dir: tempfile::TempDir,
    paths: Paths,
    catalog: PathBuf,
    server: FileServer,
    find_links: String,
    /// Variables set on every command after the defaults (`with_env`).
    extra: Vec<(String, String)>,
}

impl Home {
    fn new(fx: &Fixtures, sha256: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("bh").tempdir().unwrap();
        let catalog = dir.path().join("catalog.json");
        let build = fx.manifest["build"].as_str().unwrap();
        let name = fx.str("pbs", "name");
        let entry = json!({
            "version": fx.str("pbs", "version"), "os": "windows", "arch": "x86_64",
            "libc": "none", "build": build, "sha256": sha256,
            "url": format!(
                "https://github.com/astral-sh/python-build-standalone/releases/download/{build}/{}",
                name.replace('+', "%2B")
            ),
        });
        std::fs::write(&catalog, json!({ "entries": [entry] }).to_string()).unwrap();
        let mirror = fx
            .file("pbs")
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let server = FileServer::start(mirror, Behaviour::default());
        let mut links = vec![fx.wheels()];
        if let Some(grpc) = std::env::var_os("BEEP_WINDOWS_GRPC_WHEELS") {
            links.push(PathBuf::from(grpc));
        }
        let find_links = links
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let paths = Paths::under(dir.path().to_path_buf());
        Self {
            dir,
            paths,
            catalog,
            server,
            find_links,
            extra: Vec::new(),
        }
    }

    /// Also set `key=value` on every command (and so on the daemon they start).
    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_beep-host"));
        command
            .args(args)
            .env("BEEP_HOST_HOME", self.dir.path())
            .env("BEEP_PYTHON_CATALOG", &self.catalog)
            .env("BEEP_PYTHON_MIRROR", self.server.url())
            .env("BEEP_HOST_INSTALLER", "pip")
            .env("BEEP_HOST_DAEMON_IDLE", "60")
            // Packages come from local folders only (the daemon, started by the CLI,
            // passes these on to pip).
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", &self.find_links)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("RUST_LOG")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("beep-host.exe runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "beep-host {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// The row of backend `id` in `ps --json`.
    fn ps_row(&self, id: &str) -> Value {
        let ps = self.json(&["ps", "--json"]);
        ps.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in ps: {ps}"))
            .clone()
    }

    fn runtime_dir_names(&self) -> Vec<String> {
        names_in(&self.paths.runtimes())
    }

    fn record(&self, id: &str) -> Value {
        let path = self.paths.backend_records().join(format!("{id}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.command(&["daemon", "stop"]).output();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\r', "")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Is `pid` a running process? (OpenProcess + GetExitCodeProcess.)
fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    // SAFETY: plain handle calls; the handle is closed before returning.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return false;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        ok != 0 && code == STILL_ACTIVE as u32
    }
}

/// End `pid` at once, as Task Manager's "End task" does.
fn terminate(pid: u32) {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};
    // SAFETY: plain handle calls; the handle is closed before returning.
    unsafe {
        let handle = OpenProcess(PROCESS_TERMINATE, 0, pid);
        assert!(!handle.is_null(), "OpenProcess({pid}) failed");
        assert_ne!(TerminateProcess(handle, 1), 0, "TerminateProcess({pid})");
        CloseHandle(handle);
    }
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let began = Instant::now();
    while !check() {
        assert!(began.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    began.elapsed()
}

/// `start <transport> --venv <env> --detach`: the backend id.
fn start(home: &Home, transport: &str, env: &str) -> String {
    start_with(home, &[transport, "--venv", env, "--detach"])
}

/// `start <args>`: the backend id from its output.
fn start_with(home: &Home, args: &[&str]) -> String {
    ids::id_of(&home.ok(&[&["start"], args].concat()))
}

/// A Rust client for the backend `id`, from its record.
async fn connect(home: &Home, id: &str) -> Box<dyn client::BackendClient> {
    let record = home.record(id);
    let transport: Transport = serde_json::from_value(record["transport"].clone()).unwrap();
    client::connect(
        transport,
        record["address"].as_str().unwrap(),
        record["token"].as_str().unwrap(),
    )
    .await
    .unwrap_or_else(|e| panic!("connect {id}: {e}"))
}

#[test]
fn a_wrong_sha256_is_refused_and_leaves_nothing() {
    let fx = Fixtures::load();
    let home = Home::new(&fx, &"0".repeat(64));
    let out = home.cli(&["runtime", "install", &fx.str("pbs", "version")]);
    assert!(!out.status.success(), "installed despite a wrong sha256");
    let err = text(&out.stderr);
    assert!(err.contains(&fx.str("pbs", "sha256")), "{err}");
    assert!(
        home.runtime_dir_names().is_empty(),
        "{:?}",
        home.runtime_dir_names()
    );
    let partials: Vec<String> = names_in(&home.paths.downloads())
        .into_iter()
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "partial downloads left: {partials:?}");
}

/// An interpreter no discovery finds made the default by its path, an environment made from it
/// by uv.exe with a package from a local folder, and the supervisor's other duties on Windows:
/// interrupt through the op (no signals), memory over the job's processes, the log, and the
/// restart policy after the backend's process is ended from outside.
#[test]
fn uv_environment_on_an_adopted_default_and_a_supervised_backend() {
    let fx = Fixtures::load();
    let uv = std::env::var("BEEP_WINDOWS_UV").expect("the lane names uv.exe in BEEP_WINDOWS_UV");
    let python = std::env::var("BEEP_WINDOWS_PYTHON")
        .expect("the lane names a CPython in BEEP_WINDOWS_PYTHON");
    let home = Home::new(&fx, &fx.str("pbs", "sha256"))
        .with_env("BEEP_HOST_INSTALLER", "uv")
        .with_env("BEEP_HOST_UV", &uv)
        .with_env("UV_NO_INDEX", "1")
        .with_env("UV_FIND_LINKS", &fx.wheels().display().to_string());

    // The first command starts the daemon; whoever reads that command's output gets its end
    // when the command ends (the daemon does not inherit the pipe).
    let mut ps = home
        .command(&["ps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = ps.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut all);
        let _ = tx.send(all);
    });
    let listed = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the output of the command that started the daemon never ended");
    assert!(ps.wait().unwrap().success(), "{}", text(&listed));

    // The default by path (the seed's defect: accepted, then "missing" at `venv create`).
    home.ok(&["runtime", "default", &python]);
    let created = home.ok(&["venv", "create", "u1"]);
    assert!(created.contains("Python 3.13"), "{created}");
    assert!(created.contains(", uv)"), "not made by uv: {created}");
    let env_dir = home.paths.envs().join("u1");
    let cfg = std::fs::read_to_string(env_dir.join("pyvenv.cfg")).expect("pyvenv.cfg");
    // uv writes `version_info`, `python -m venv` writes `version`.
    assert!(cfg.contains("version_info = 3.13"), "not made by uv: {cfg}");
    assert!(env_dir.join("Scripts").join("python.exe").is_file());
    home.ok(&["pkg", "install", "u1", "beepdemo"]);
    let listed = home.json(&["pkg", "list", "u1", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str().unwrap().eq_ignore_ascii_case("beepdemo")),
        "{listed}"
    );

    let id = start_with(
        &home,
        &[
            "pipe",
            "--venv",
            "u1",
            "--restart",
            "on-failure",
            "--detach",
        ],
    );
    let row = |home: &Home| home.ps_row(&id);

    // Interrupt through the op: `beep-host interrupt` while `beep-host exec` runs a busy loop.
    let started = home.dir.path().join("busy.started");
    let code = format!(
        "open({:?}, 'w').close()\nwhile True:\n    pass",
        started.display().to_string()
    );
    let exec = home
        .command(&["exec", &id, &code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the busy loop to start", Duration::from_secs(20), || {
        started.exists()
    });
    let sent = Instant::now();
    home.ok(&["interrupt", &id]);
    let out = exec.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("KeyboardInterrupt"), "{stderr}");
    assert!(took < Duration::from_secs(10), "interrupted after {took:?}");
    eprintln!("busy loop interrupted {took:?} after `interrupt`");
    let value = home.ok(&["eval", &id, "__import__('beepdemo').ANSWER"]);
    assert_eq!(value.trim(), "42", "{value}");

    // Memory over the job's processes: a child holding 64 MiB counts.
    let before = row(&home)["rss_bytes"].as_u64().unwrap();
    let child_code = r#"import subprocess, sys
child = subprocess.Popen([sys.executable, '-c', 'import time\nb = bytearray(b"x") * (64 << 20)\nprint(1, flush=True)\ntime.sleep(120)'], stdout=subprocess.PIPE)
child.stdout.readline()"#;
    home.ok(&["exec", &id, child_code]);
    let child_pid: u32 = home
        .ok(&["eval", &id, "child.pid"])
        .trim()
        .parse()
        .expect("the child's pid");
    assert!(alive(child_pid));
    let mut rss = 0;
    wait_for(
        "the child's memory in the backend's row",
        Duration::from_secs(10),
        || {
            rss = row(&home)["rss_bytes"].as_u64().unwrap();
            rss >= before + (60 << 20)
        },
    );
    eprintln!("memory {before} -> {rss} bytes with a 64 MiB child");

    // The log has the host's own events.
    let log = home.ok(&["logs", &id]);
    assert!(log.contains("ready"), "{log}");

    // Ended from outside (as Task Manager would): restarted by the policy, the child gone
    // with the job, and the exit in the row.
    let pid = row(&home)["pid"].as_u64().unwrap() as u32;
    terminate(pid);
    wait_for(
        "the child to end with the job",
        Duration::from_secs(5),
        || !alive(child_pid),
    );
    let mut restarted = Value::Null;
    wait_for("the restart", Duration::from_secs(30), || {
        restarted = row(&home);
        restarted["restarts"].as_u64() == Some(1)
            && restarted["state"] == "ready"
            && restarted["pid"].as_u64().is_some_and(|p| p as u32 != pid)
    });
    assert_eq!(restarted["last_exit"]["code"], 1, "{restarted}");
    let value = home.ok(&["eval", &id, "1+1"]);
    assert_eq!(value.trim(), "2", "{value}");
    let log = home.ok(&["logs", &id]);
    assert!(log.contains("restarting"), "{log}");
    home.ok(&["stop", &id]);
}

/// One home from runtime to backends: each step needs the one before, and each costs
/// seconds under Wine.
#[test]
fn runtime_environment_packages_backends_and_host_api() {
    let fx = Fixtures::load();
    let home = Home::new(&fx, &fx.str("pbs", "sha256"));
    let version = fx.str("pbs", "version");

    // Runtime: downloaded from the mirror, verified, unpacked, checked, renamed into place.
    home.ok(&["runtime", "install", &version]);
    let runtimes = home.json(&["runtime", "list", "--json"]);
    let managed: Vec<&Value> = runtimes
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "managed")
        .collect();
    assert_eq!(managed.len(), 1, "{runtimes}");
    assert_eq!(managed[0]["version"], version.as_str());
    let python = PathBuf::from(managed[0]["python"].as_str().unwrap());
    assert!(python.ends_with("python.exe"), "{python:?}");
    let prefix = Command::new(&python)
        .args(["-c", "import sys, ssl, sqlite3; print(sys.prefix)"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(prefix.status.success(), "{prefix:?}");
    let prefix = text(&prefix.stdout).trim().to_lowercase();
    let runtimes_dir = home.paths.runtimes().display().to_string().to_lowercase();
    assert!(
        prefix.starts_with(&runtimes_dir),
        "sys.prefix {prefix} not in {runtimes_dir}"
    );
    assert_eq!(home.server.requests().len(), 1);
    assert_eq!(
        home.runtime_dir_names().len(),
        1,
        "{:?}",
        home.runtime_dir_names()
    );

    // Environment and packages from a local folder (no index).
    home.ok(&["venv", "create", "w1", "--runtime", &version]);
    let env_dir = home.paths.envs().join("w1");
    assert!(env_dir.join("Scripts").join("python.exe").is_file());
    let grpc = std::env::var_os("BEEP_WINDOWS_GRPC_WHEELS").is_some();
    let mut wanted = vec!["pkg", "install", "w1", "beepdemo"];
    if grpc {
        wanted.extend(["grpcio", "protobuf"]);
    }
    home.ok(&wanted);
    let listed = home.json(&["pkg", "list", "w1", "--json"]);
    let names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(names.contains(&"beepdemo".to_string()), "{listed}");

    // The daemon with the host API (`serve`): every backend below belongs to it.
    let mut serve = home
        .command(&["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = read_json_line(&mut serve);
    assert_eq!(ready["event"], "ready", "{ready}");
    let daemon_pid = ready["pid"].as_u64().unwrap() as u32;
    let host: Value = serde_json::from_slice(
        &std::fs::read(ready["record"].as_str().unwrap()).expect("host.json"),
    )
    .unwrap();
    let host_url = format!("http://{}", ready["http"].as_str().unwrap());
    let host_token = host["token"].as_str().unwrap().to_string();
    let listed: Value = block(async {
        reqwest::Client::new()
            .get(format!("{host_url}/venv/list"))
            .bearer_auth(&host_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(listed[0]["name"], "w1", "{listed}");

    let mut transports = vec!["pipe", "http"];
    if grpc {
        transports.push("rpc");
    }
    let mut pids = Vec::new();
    for transport in &transports {
        let id = start(&home, transport, "w1");
        let record = home.record(&id);
        if *transport == "pipe" {
            assert!(
                record["address"]
                    .as_str()
                    .unwrap()
                    .starts_with(r"\\.\pipe\beep-backend-"),
                "{record}"
            );
        }
        block(async {
            let client = connect(&home, &id).await;
            assert_eq!(client.eval("1+1").await.unwrap(), PyValue::Json(json!(2)));
            let value = client.eval("__import__('beepdemo').ANSWER").await.unwrap();
            assert_eq!(value, PyValue::Json(json!(42)), "{transport}");
            let value = client.eval("__import__('sys').platform").await.unwrap();
            assert_eq!(value, PyValue::Json(json!("win32")));
            // Python in the backend reaches the host that started it.
            let out = client
                .exec(
                    "from beep_backend import host\n[e['name'] for e in host.venv.list()]",
                    None,
                )
                .await
                .unwrap();
            assert_eq!(out.value, PyValue::Json(json!(["w1"])), "{transport}");
        });
        let row = home.ps_row(&id);
        let pid = row["pid"].as_u64().unwrap_or(0) as u32;
        assert!(pid > 0 && alive(pid), "{row}");
        assert!(row["rss_bytes"].as_u64().unwrap_or(0) > 0, "{row}");
        pids.push((id, pid));
    }
    // Stop one; the others stay for the kill below.
    let (stopped, stopped_pid) = pids.remove(0);
    home.ok(&["stop", &stopped]);
    wait_for(
        "the stopped backend to exit",
        Duration::from_secs(5),
        || !alive(stopped_pid),
    );
    let ps = home.json(&["ps", "--json"]);
    assert!(
        !ps.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == stopped.as_str() && r["state"] == "ready"),
        "{ps}"
    );

    // The daemon killed outright: the job objects close with it, their backends end.
    terminate(daemon_pid);
    let _ = serve.wait();
    let took = wait_for(
        "backends to end with the daemon",
        Duration::from_secs(3),
        || pids.iter().all(|(_, pid)| !alive(*pid)),
    );
    eprintln!("backends gone {took:?} after the daemon was killed");

    // Remove a package: gone from the list and from the environment.
    home.ok(&["pkg", "remove", "w1", "beepdemo"]);
    let listed = home.json(&["pkg", "list", "w1", "--json"]);
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "beepdemo"),
        "{listed}"
    );

    // Delete while a process holds a file of the environment open: refused with a clear
    // error and nothing deleted, or retried until it can be; never half deleted.
    let held = env_dir.join("held.txt");
    let mut holder = Command::new(env_dir.join("Scripts").join("python.exe"))
        .arg("-c")
        .arg(format!(
            "import sys\nf = open(r'{}', 'w')\nprint('open', flush=True)\nsys.stdin.read()",
            held.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "open");
    let out = home.cli(&["venv", "delete", "w1", "--yes"]);
    let files_left = count_files(&env_dir);
    if out.status.success() {
        assert!(
            !env_dir.exists(),
            "delete said done but {env_dir:?} is left"
        );
    } else {
        let err = text(&out.stderr);
        eprintln!("delete while held: {}", err.trim());
        assert!(err.contains("in use"), "not a clear error: {err}");
        assert!(err.contains("held.txt"), "the error names no file: {err}");
        let env_python = env_dir.join("Scripts").join("python.exe");
        let still = Command::new(&env_python)
            .args(["-c", "import json; print(6 * 7)"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(text(&still.stdout).trim(), "42", "half deleted: {still:?}");
        assert!(files_left > 100, "only {files_left} files left");
        let listed = home.json(&["venv", "list", "--json"]);
        assert_eq!(listed[0]["name"], "w1", "{listed}");
    }
    drop(holder.stdin.take());
    holder.wait().unwrap();
    if env_dir.exists() {
        home.ok(&["venv", "delete", "w1", "--yes"]);
        assert!(!env_dir.exists());
    }
    assert!(
        names_in(&home.paths.envs())
            .iter()
            .all(|n| !n.starts_with(".trash"))
    );
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

fn read_json_line(child: &mut Child) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// python.org's embeddable package as a runtime: installed from its zip, its `._pth` edited
/// so `site` and `Lib\site-packages` work, able to run backends itself (the shipped
/// `beep_backend` through `beep-host.pth`), and refused as the base of an environment with
/// an error that says why and what to do instead.
#[test]
fn embedded_runtime_hosts_backends_and_refuses_environments() {
    let fx = Fixtures::load();
    let home = Home::new(&fx, &fx.str("pbs", "sha256"));
    let zip = fx.file("embed");
    home.ok(&["runtime", "install", zip.to_str().unwrap()]);
    let runtimes = home.json(&["runtime", "list", "--json"]);
    let embedded = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "embedded")
        .unwrap_or_else(|| panic!("no embedded runtime listed: {runtimes}"))
        .clone();
    let key = embedded["key"].as_str().unwrap().to_string();
    let version = fx.str("embed", "version");
    assert_eq!(key, format!("embedded-{version}-windows-x86_64"));
    let python = PathBuf::from(embedded["python"].as_str().unwrap());
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, sys, site, beep_backend\n\
             print([p for p in sys.path if p.lower().endswith(os.path.join('lib', 'site-packages'))])\n\
             print(os.path.dirname(beep_backend.__file__))",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().next().unwrap().contains("site-packages"),
        "{stdout}"
    );

    // Backends on the runtime itself through `beep-host start --runtime`, on http and on the
    // named pipe, supervised by the daemon like any other. Before the pipe one, the
    // `beep-host.pth` is gone (as after a move of beep-host): the start writes it again.
    for transport in ["http", "pipe"] {
        if transport == "pipe" {
            let pth = python
                .parent()
                .unwrap()
                .join(r"Lib\site-packages\beep-host.pth");
            std::fs::remove_file(&pth).unwrap();
        }
        let out = home.ok(&["start", transport, "--runtime", &key, "--detach"]);
        assert!(out.contains(&format!("on runtime `{key}`")), "{out}");
        let id = ids::id_of(&out);
        eprintln!("started {id} ({transport}) on {key}");
        let dump = || {
            let logs = home.paths.logs();
            for name in [format!("{id}.log"), "daemon.log".to_string()] {
                let text = std::fs::read_to_string(logs.join(&name)).unwrap_or_default();
                eprintln!("---- {name}\n{text}");
            }
        };
        block(async {
            let client = tokio::time::timeout(Duration::from_secs(20), connect(&home, &id))
                .await
                .unwrap_or_else(|_| {
                    dump();
                    panic!("connect {id}: no answer in 20 s")
                });
            assert_eq!(client.eval("1+1").await.unwrap(), PyValue::Json(json!(2)));
            let value = client.eval("__import__('sys').executable").await.unwrap();
            let PyValue::Json(Value::String(exe)) = value else {
                panic!("{value:?}");
            };
            assert_eq!(
                exe.to_lowercase(),
                python.display().to_string().to_lowercase()
            );
        });
        let row = home.ps_row(&id);
        assert_eq!(row["runtime"]["key"], key.as_str(), "{row}");
        assert_eq!(row["transport"], transport, "{row}");
        let pid = row["pid"].as_u64().unwrap_or(0) as u32;
        assert!(pid > 0 && alive(pid), "{row}");
        assert!(row["rss_bytes"].as_u64().unwrap_or(0) > 0, "{row}");
        // The runtime stays while a backend runs on it.
        let out = home.cli(&["runtime", "remove", &key]);
        assert!(!out.status.success(), "removed under a running backend");
        assert!(text(&out.stderr).contains(&id), "{}", text(&out.stderr));
        assert!(python.is_file());
        home.ok(&["stop", &id]);
        wait_for(
            "the stopped backend to exit",
            Duration::from_secs(5),
            || !alive(pid),
        );
    }

    // No environment from it: a clear refusal naming the alternative; nothing created.
    let out = home.cli(&["venv", "create", "e1", "--runtime", &key]);
    assert!(!out.status.success(), "an environment was made from {key}");
    let err = text(&out.stderr);
    assert!(err.contains("embeddable package"), "{err}");
    assert!(
        err.contains(&format!("beep-host runtime install {version}")),
        "{err}"
    );
    assert!(!home.paths.envs().join("e1").exists());
}
