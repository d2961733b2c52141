//! Backends as declared: environment variables and working directory, a preload before
//! ready, health probes, a memory limit, and all of it kept across a daemon restart. Real
//! `beep-host` processes, real Python backends, real signals.

#![cfg(target_os = "linux")] // SIGSTOP, /proc and RSS as Linux reports it.

#[path = "support/backend.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Home, alive, id_of, kill9, wait_for};

fn row(home: &Home, id: &str) -> Value {
    let ps: Vec<Value> = serde_json::from_str(&home.ok(&["ps", "--json", "--all"])).unwrap();
    ps.into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in ps"))
}

fn pid_of(home: &Home, id: &str) -> Option<u32> {
    row(home, id)["pid"].as_u64().map(|p| p as u32)
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A project folder with `app/model.py`: `load()` returns a dict, `bad()` raises.
fn project(home: &Home) -> PathBuf {
    let dir = home.root().join("proj");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app").join("__init__.py"), "").unwrap();
    std::fs::write(
        dir.join("app").join("model.py"),
        "import os\n\
         LOADS = []\n\
         def load():\n\
         \x20   LOADS.append(os.getpid())\n\
         \x20   return {'weights': 42, 'dir': os.getcwd(), 'loads': LOADS}\n\
         def bad():\n\
         \x20   raise ValueError('no weights in ' + os.getcwd())\n",
    )
    .unwrap();
    dir.canonicalize().unwrap()
}

fn eval(home: &Home, id: &str, expr: &str) -> Value {
    serde_json::from_str(&home.ok(&["eval", id, expr])).unwrap()
}

#[test]
fn env_vars_and_cwd_reach_python_and_the_token_stays_out() {
    let home = Home::new();
    home.plain_env("admin");
    let dir = project(&home);
    let dir_arg = dir.to_str().unwrap();
    let id = id_of(&home.ok(&[
        "start",
        "pipe",
        "--detach",
        "--env",
        "MODEL_DIR=./models",
        "--env",
        "EMPTY=",
        "--env",
        "PYTHONPATH=/nowhere",
        "--cwd",
        dir_arg,
    ]));
    let env = |name: &str| {
        eval(
            &home,
            &id,
            &format!("__import__('os').environ.get('{name}')"),
        )
    };
    assert_eq!(env("MODEL_DIR"), "./models");
    assert_eq!(env("EMPTY"), "");
    assert_eq!(eval(&home, &id, "__import__('os').getcwd()"), dir_arg);
    // The project's modules import from the working directory, and a declared
    // PYTHONPATH joins the package's own (the backend still started).
    assert_eq!(
        eval(&home, &id, "__import__('app.model').model.bad.__name__"),
        "bad"
    );
    assert!(env("PYTHONPATH").as_str().unwrap().ends_with(":/nowhere"));
    // The token is neither in os.environ nor in the process's environment block.
    let record: Value = serde_json::from_slice(
        &std::fs::read(home.paths.backend_records().join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let token = record["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    let environ = eval(
        &home,
        &id,
        "open('/proc/self/environ', 'rb').read().decode('utf-8', 'replace')",
    );
    assert!(!environ.as_str().unwrap().contains(token));
    assert_eq!(env("BEEP_BACKEND_TOKEN"), Value::Null);
    let options = &row(&home, &id)["options"];
    assert_eq!(options["env_vars"]["MODEL_DIR"], "./models");
    assert_eq!(options["cwd"], dir_arg);

    // A working directory that is not there fails the start by name.
    let out = home.cli(&["start", "pipe", "--detach", "--cwd", "/nonexistent/proj"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`/nonexistent/proj` is not a directory"),
        "{err}"
    );
}

#[test]
fn a_preload_runs_once_before_ready_and_one_that_raises_fails_the_start_with_its_traceback() {
    let home = Home::new();
    home.plain_env("admin");
    let dir = project(&home);
    let dir_arg = dir.to_str().unwrap();
    let id = id_of(&home.ok(&[
        "start",
        "http",
        "--detach",
        "--cwd",
        dir_arg,
        "--preload",
        "app.model:load",
    ]));
    let loaded = eval(&home, &id, "load");
    assert_eq!(loaded["weights"], 42);
    assert_eq!(loaded["dir"], dir_arg);
    let pid = pid_of(&home, &id).unwrap();
    assert_eq!(
        loaded["loads"],
        serde_json::json!([pid]),
        "ran once, in the backend"
    );
    // The default session only: another session starts empty.
    let out = home.cli(&["eval", &id, "load", "--session", "other"]);
    assert!(!out.status.success(), "{out:?}");

    let out = home.cli(&[
        "start",
        "pipe",
        "--detach",
        "--cwd",
        dir_arg,
        "--preload",
        "app.model:bad",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("preload_failed"), "{err}");
    assert!(err.contains("Traceback (most recent call last)"), "{err}");
    assert!(err.contains("model.py\", line 7, in bad"), "{err}");
    assert!(
        err.contains(&format!("ValueError: no weights in {dir_arg}")),
        "{err}"
    );
    // Nothing of it runs or is listed: only the first backend.
    let ps: Vec<Value> = serde_json::from_str(&home.ok(&["ps", "--json", "--all"])).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");

    // A preload that cannot be imported fails the same way.
    let out = home.cli(&["start", "pipe", "--detach", "--preload", "nosuch.mod:load"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ModuleNotFoundError"), "{err}");
}

/// `beep-host start` in the foreground; its stderr reports each state change.
struct Foreground {
    child: std::process::Child,
    id: String,
    pid: u32,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Foreground {
    fn start(home: &Home, args: &[&str]) -> Self {
        let mut child = home
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let id = id_of(&first);
        let pid: u32 = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            id,
            pid,
            lines,
        }
    }

    /// The state lines until one contains `needle`.
    fn until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let began = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = timeout.checked_sub(began.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no `{needle}` within {timeout:?}: {seen:?}");
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // SIGTERM: the command stops its backend and exits.
        signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}

const PROBES: &[&str] = &[
    "--restart",
    "on-failure",
    "--health-every",
    "200ms",
    "--health-timeout",
    "300ms",
    "--health-failures",
    "3",
];

#[test]
fn a_stopped_backend_becomes_unhealthy_and_is_restarted() {
    let home = Home::new();
    home.plain_env("admin");
    let fg = Foreground::start(&home, &[&["start", "pipe"], PROBES].concat());
    assert_eq!(row(&home, &fg.id)["options"]["health"]["failures"], 3);
    signal(fg.pid, libc::SIGSTOP);
    let stopped_at = Instant::now();
    let seen = fg.until(
        &format!("backend {}: unhealthy pid {}", fg.id, fg.pid),
        Duration::from_secs(5),
    );
    let took = stopped_at.elapsed();
    // Three probes 200 ms apart, the last one waited 300 ms: about 0.9 s.
    assert!(took >= Duration::from_millis(700), "{took:?} {seen:?}");
    eprintln!("unhealthy {took:?} after SIGSTOP");
    let seen = fg.until("ready pid", Duration::from_secs(10));
    let again = pid_of(&home, &fg.id).unwrap();
    assert_ne!(again, fg.pid, "{seen:?}");
    assert!(!alive(fg.pid), "the stopped process was ended");
    let status = row(&home, &fg.id);
    assert_eq!(status["state"], "ready");
    assert_eq!(status["restarts"], 1);
    assert_eq!(
        status["last_exit"]["reason"],
        "unhealthy: no answer to 3 health probes"
    );
    assert_eq!(eval(&home, &fg.id, "6*7"), 42);
}

#[test]
fn a_backend_holding_the_gil_in_c_becomes_unhealthy_and_is_restarted() {
    let home = Home::new();
    home.plain_env("admin");
    let fg = Foreground::start(&home, &[&["start", "http"], PROBES].concat());
    // `sleep` from libc through PyDLL: the GIL stays held, no thread of the server runs.
    let mut call = home
        .command(&[
            "exec",
            &fg.id,
            "import ctypes; ctypes.PyDLL(None).sleep(60)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    fg.until(
        &format!("backend {}: unhealthy", fg.id),
        Duration::from_secs(5),
    );
    fg.until("ready pid", Duration::from_secs(10));
    assert_ne!(pid_of(&home, &fg.id).unwrap(), fg.pid);
    // The call's connection ended with its process.
    let ended = call.wait().unwrap();
    assert!(!ended.success());
    assert_eq!(eval(&home, &fg.id, "1+1"), 2);
}

#[test]
fn a_backend_busy_in_python_stays_healthy_on_every_transport() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in ["pipe", "http", "rpc"] {
        let id = id_of(&home.ok(&[&["start", transport, "--detach"], PROBES].concat()));
        let pid = pid_of(&home, &id).unwrap();
        let mut call = home
            .command(&["exec", &id, "while True: pass"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(
            &format!("{transport}: busy"),
            Duration::from_secs(3),
            || row(&home, &id)["busy"] == true,
        );
        // At least 3 probe periods (here 8), with 3 missed in a row enough to restart it.
        std::thread::sleep(Duration::from_millis(1600));
        let status = row(&home, &id);
        assert_eq!(status["state"], "ready", "{transport}: {status}");
        assert_eq!(status["pid"], pid, "{transport}: {status}");
        assert_eq!(status["restarts"], 0, "{transport}: {status}");
        assert_eq!(status["busy"], true, "{transport}: still in the loop");
        let log = home.ok(&["logs", &id]);
        assert!(!log.contains("unhealthy"), "{transport}: {log}");
        let _ = call.kill();
        let _ = call.wait();
        home.ok(&["stop", &id]);
    }
}

#[test]
fn a_backend_over_its_memory_limit_is_stopped_with_the_reason_and_restarted_by_policy() {
    let home = Home::new();
    home.plain_env("admin");
    let limited = |policy: &str| {
        id_of(&home.ok(&[
            "start",
            "http",
            "--detach",
            "--memory-limit",
            "64MiB",
            "--restart",
            policy,
        ]))
    };
    let (again, once) = (limited("on-failure"), limited("never"));
    let daemon = home.daemon_pid().unwrap();
    let first = pid_of(&home, &again).unwrap();
    let allocate = "keep = b'x' * (200 << 20)";
    let began = Instant::now();
    home.ok(&["exec", &again, allocate]);
    home.ok(&["exec", &once, allocate]);
    wait_for("the limit enforced", Duration::from_secs(5), || {
        let status = row(&home, &again);
        status["restarts"] == 1 && status["state"] == "ready"
    });
    eprintln!(
        "stopped and restarted {:?} after the allocation",
        began.elapsed()
    );
    let status = row(&home, &again);
    assert_ne!(status["pid"], first);
    let reason = status["last_exit"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("memory limit 64.0 MiB exceeded ("),
        "{reason}"
    );
    let used: f64 = reason
        .trim_start_matches("memory limit 64.0 MiB exceeded (")
        .trim_end_matches(" MiB)")
        .parse()
        .unwrap_or_else(|_| panic!("{reason}"));
    assert!(used >= 190.0, "{reason}");
    // The restarted one starts small and stays.
    assert_eq!(eval(&home, &again, "'keep' in globals()"), false);

    wait_for("the `never` one crashed", Duration::from_secs(5), || {
        row(&home, &once)["state"] == "crashed"
    });
    let table = home.ok(&["ps"]);
    let line = table.lines().find(|l| l.starts_with(&once)).unwrap();
    assert!(
        line.contains("crashed: memory limit 64.0 MiB exceeded ("),
        "{table}"
    );
    assert!(table.contains("/ 64.0 MiB"), "{table}");
    assert_eq!(home.daemon_pid(), Some(daemon), "the daemon stays up");
}

#[test]
fn a_lost_backend_restarted_by_the_next_daemon_keeps_its_options() {
    let home = Home::new();
    home.plain_env("admin");
    let dir = project(&home);
    let dir_arg = dir.to_str().unwrap();
    let id = id_of(&home.ok(&[
        "start",
        "pipe",
        "--detach",
        "--restart",
        "on-failure",
        "--env",
        "MODEL_DIR=./models",
        "--cwd",
        dir_arg,
        "--preload",
        "app.model:load",
        "--health-every",
        "1s",
        "--memory-limit",
        "1GiB",
    ]));
    let before = row(&home, &id);
    let pid = before["pid"].as_u64().unwrap() as u32;
    kill9(home.daemon_pid().unwrap());
    wait_for(
        "the backend gone with its daemon",
        Duration::from_secs(3),
        || !alive(pid),
    );

    let after = row(&home, &id);
    assert_eq!(after["state"], "ready", "{after}");
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["options"], before["options"]);
    assert_eq!(after["options"]["memory_limit"], 1u64 << 30);
    assert_eq!(eval(&home, &id, "load['weights']"), 42);
    assert_eq!(eval(&home, &id, "__import__('os').getcwd()"), dir_arg);
    assert_eq!(
        eval(&home, &id, "__import__('os').environ['MODEL_DIR']"),
        "./models"
    );
    assert!(Path::new(dir_arg).is_dir());
}
