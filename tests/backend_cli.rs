//! `beep-host start/ps/stop/restart/logs/call/exec/eval`, driving the real binary against
//! real Python, each test in a fresh `BEEP_HOST_HOME`.

#[path = "support/backend.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Home, alive, id_of, kill9, wait_for};

fn pid_of(ps: &[Value], id: &str) -> u32 {
    let row = ps
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {ps:?}"));
    row["pid"].as_u64().unwrap() as u32
}

#[test]
fn each_transport_starts_detached_answers_and_stops_from_another_process() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in ["http", "pipe", "rpc"] {
        let out = home.ok(&["start", transport, "--detach"]);
        let id = id_of(&out);
        assert!(out.contains("token:"), "{out}");

        let ps = home.ps();
        let row = ps.iter().find(|r| r["id"] == id.as_str()).unwrap();
        assert_eq!(row["state"], "ready", "{row}");
        assert_eq!(row["transport"], transport);
        assert_eq!(row["env"], "admin");
        assert!(row["rss_bytes"].as_u64().unwrap() > 0, "{row}");
        let pid = pid_of(&ps, &id);
        assert!(alive(pid));

        assert_eq!(home.ok(&["eval", &id, "1+1"]).trim(), "2");
        let exec: Value =
            serde_json::from_str(&home.ok(&["exec", &id, "--json", "print('out')\n6*7"])).unwrap();
        assert_eq!(exec, json!({"stdout": "out\n", "stderr": "", "value": 42}));
        let call: Value =
            serde_json::from_str(&home.ok(&["call", &id, "eval", r#"{"expr": "[1, 'a']"}"#]))
                .unwrap();
        assert_eq!(call, json!([1, "a"]));

        let failed = home.cli(&["eval", &id, "1/0"]);
        assert!(!failed.status.success());
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains("Traceback"), "{stderr}");
        assert!(stderr.contains("ZeroDivisionError"), "{stderr}");

        let record = home.paths.backend_records().join(format!("{id}.json"));
        assert!(record.exists());
        home.ok(&["stop", &id]);
        assert!(!alive(pid), "{transport}: backend still running");
        assert!(home.files(&home.paths.sockets()).is_empty(), "socket left");
        // Stopped by hand: kept (with its state) until removed, hidden from plain `ps`.
        let kept: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
        assert_eq!(kept["state"], "stopped", "{transport}: {kept}");
        assert!(home.ps().is_empty());
        home.ok(&["rm", &id]);
        assert!(!record.exists(), "{transport}: record left after rm");
    }
}

#[test]
fn a_foreground_backend_is_listed_and_stopped_by_another_process() {
    let home = Home::new();
    home.plain_env("admin");
    let mut host = home
        .command(&["start", "pipe"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(host.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let id = id_of(&first);
    let ps = home.ps();
    let pid = pid_of(&ps, &id);
    // The daemon owns it; the foreground command only follows it.
    assert_eq!(ps[0]["supervisor_pid"], json!(home.daemon_pid().unwrap()));
    assert_ne!(ps[0]["supervisor_pid"], json!(host.id()));

    assert_eq!(home.ok(&["eval", &id, "'x' * 3"]).trim(), "\"xxx\"");
    // Written between calls (a call's own output goes to the call, not the log).
    home.ok(&[
        "exec",
        &id,
        "import os, threading; threading.Timer(0.1, os.write, (2, b'hello from python\\n')).start()",
    ]);
    wait_for("the log line", Duration::from_secs(3), || {
        home.ok(&["logs", &id, "--lines", "5"])
            .contains("hello from python")
    });

    // `logs --follow` prints new lines and ends when the backend does.
    let mut follow = home
        .command(&["logs", &id, "--follow", "--lines", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    home.ok(&[
        "exec",
        &id,
        "import os, threading; threading.Timer(0.1, os.write, (2, b'followed line\\n')).start()",
    ]);
    let mut follow_out = BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    follow_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "followed line");

    home.ok(&["stop", &id]);
    assert!(!alive(pid));
    assert!(wait_with_timeout(&mut follow, Duration::from_secs(5)).success());
    let status = wait_with_timeout(&mut host, Duration::from_secs(5));
    assert!(
        status.success(),
        "the foreground host exits cleanly: {status}"
    );
    assert!(home.ps().is_empty());
    let all: Vec<Value> = serde_json::from_str(&home.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["state"], "stopped");
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(began.elapsed() < timeout, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_foreground_command_leaves_its_backend_to_the_daemon() {
    let home = Home::new();
    home.plain_env("admin");
    for transport in ["pipe", "http"] {
        let (mut host, first) = home.start_foreground(transport);
        let id = id_of(&first);
        let pid: u32 = first.rsplit("pid ").next().unwrap().trim().parse().unwrap();
        assert!(alive(pid));
        kill9(host.id());
        host.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(pid), "{transport}: the backend died with the command");
        let ps = home.ps();
        assert_eq!(pid_of(&ps, &id), pid);
        assert_eq!(
            ps.iter().find(|r| r["id"] == id.as_str()).unwrap()["state"],
            "ready"
        );
        assert_eq!(home.ok(&["eval", &id, "1+1"]).trim(), "2");
        home.ok(&["stop", &id]);
        assert!(!alive(pid));
    }
}

#[test]
fn a_record_left_by_a_gone_owner_is_shown_lost() {
    let home = Home::new();
    let dir = home.paths.backend_records();
    std::fs::create_dir_all(&dir).unwrap();
    let socket = home.root().join("gone.sock");
    std::fs::write(&socket, b"").unwrap();
    let record = json!({
        "id": "deadbeef", "pid": 999_999_999u32, "start_time": 1, "transport": "pipe",
        "address": socket, "token": "t", "env": "admin", "started_at": 1,
        "supervisor_pid": 999_999_998u32, "supervisor_start_time": 1, "state": "ready",
        "restarts": 0, "last_exit": null, "log_file": "/nowhere.log", "socket": socket,
    });
    std::fs::write(dir.join("deadbeef.json"), record.to_string()).unwrap();
    let ps = home.ps();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["state"], "lost", "{ps:?}");
    assert!(ps[0]["pid"].is_null());
    assert!(!socket.exists(), "the lost backend's socket is removed");
    home.ok(&["rm", "deadbeef"]);
    assert!(!dir.join("deadbeef.json").exists());
    let stop = home.cli(&["stop", "deadbeef"]);
    assert!(!stop.status.success());
    assert!(String::from_utf8_lossy(&stop.stderr).contains("Failed to find backend `deadbeef`"));
}

#[test]
fn rpc_in_an_environment_without_grpcio_fails_fast() {
    let home = Home::new();
    home.plain_env("plain");
    let began = Instant::now();
    let out = home.cli(&["start", "rpc", "--venv", "plain"]);
    assert!(began.elapsed() < Duration::from_secs(2));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grpcio is not installed"), "{stderr}");
    assert!(stderr.contains("beep-host venv admin"), "{stderr}");
    assert!(home.files(&home.paths.backend_records()).is_empty());
}

#[test]
fn restart_and_on_failure_from_the_cli() {
    let home = Home::new();
    home.plain_env("admin");
    let id = id_of(&home.ok(&["start", "http", "--detach", "--restart", "on-failure"]));
    let pid = pid_of(&home.ps(), &id);
    home.ok(&["restart", &id]);
    let ps = home.ps();
    let new_pid = pid_of(&ps, &id);
    assert_ne!(pid, new_pid);
    assert!(!alive(pid));
    assert_eq!(home.ok(&["eval", &id, "3*3"]).trim(), "9");

    // A crash is restarted by the daemon.
    kill9(new_pid);
    wait_for("a restart", Duration::from_secs(5), || {
        home.ps()
            .iter()
            .any(|r| r["id"] == id.as_str() && r["state"] == "ready" && r["restarts"] == 1)
    });
    home.ok(&["stop", "--all"]);
    assert!(home.ps().is_empty());
}

#[test]
fn twenty_backends_at_once() {
    let home = Home::new();
    home.plain_env("admin");
    let ids: Vec<String> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..20)
            .map(|i| {
                let home = &home;
                scope.spawn(move || {
                    let transport = if i % 2 == 0 { "pipe" } else { "http" };
                    id_of(&home.ok(&["start", transport, "--detach"]))
                })
            })
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let ps = home.ps();
    assert_eq!(ps.len(), 20);
    let mut pids = Vec::new();
    for id in &ids {
        let row = ps.iter().find(|r| r["id"] == id.as_str()).unwrap();
        assert_eq!(row["state"], "ready");
        assert!(row["rss_bytes"].as_u64().unwrap() > 0);
        pids.push(row["pid"].as_u64().unwrap() as u32);
    }
    assert_eq!(home.files(&home.paths.sockets()).len(), 10);
    let table = home.ok(&["ps"]);
    assert_eq!(table.lines().count(), 21, "{table}");

    home.ok(&["stop", "--all"]);
    for pid in pids {
        assert!(!alive(pid), "{pid} still runs");
    }
    assert!(home.ps().is_empty());
    assert!(home.files(&home.paths.sockets()).is_empty());
    let all: Vec<Value> = serde_json::from_str(&home.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|r| r["state"] == "stopped"), "{all:?}");
}

/// A backend started with `start --detach`, stopped when dropped (also when a test fails).
struct Detached<'a> {
    home: &'a Home,
    id: String,
}

impl<'a> Detached<'a> {
    fn start(home: &'a Home, transport: &str) -> Self {
        let id = id_of(&home.ok(&["start", transport, "--detach"]));
        Self { home, id }
    }
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let out = self.home.cli(&["stop", &self.id]);
        if !std::thread::panicking() {
            assert!(out.status.success(), "stop {}: {out:?}", self.id);
        }
    }
}

#[cfg(unix)]
fn sigint(pid: u32) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

/// A Python string literal of `path`.
#[cfg(unix)]
fn py_path(path: &std::path::Path) -> String {
    serde_json::to_string(path.to_str().unwrap()).unwrap()
}

/// `beep-host eval <id> 1+1` answers `2`, and fast: nothing is left running in the backend.
fn answers_at_once(home: &Home, id: &str) {
    let began = Instant::now();
    assert_eq!(home.ok(&["eval", id, "1+1"]).trim(), "2");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "eval waited {:?}: the backend was still busy",
        began.elapsed()
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_on_exec_interrupts_the_call_on_every_transport() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in ["pipe", "http", "rpc"] {
        let backend = Detached::start(&home, transport);
        let id = backend.id.clone();
        let started = home.root().join(format!("{transport}.started"));
        let code = format!(
            "import time\nopen({}, 'w').close()\ntime.sleep(20)",
            py_path(&started)
        );
        let mut exec = home
            .command(&["exec", &id, &code])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the call to start", Duration::from_secs(10), || {
            started.exists()
        });
        let sent = Instant::now();
        sigint(exec.id());
        let status = wait_with_timeout(&mut exec, Duration::from_secs(5));
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{transport}: the CLI took {:?} to end",
            sent.elapsed()
        );
        let out = exec.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(130), "{transport}: {stderr}");
        assert!(
            stderr.contains("KeyboardInterrupt"),
            "{transport}: {stderr}"
        );
        answers_at_once(&home, &id);
        drop(backend);
    }
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_leaves_the_call_running_and_interrupt_ends_it() {
    let home = Home::new();
    home.plain_env("admin");
    let backend = Detached::start(&home, "pipe");
    let id = backend.id.clone();
    let started = home.root().join("started");
    let swallowed = home.root().join("swallowed");
    let code = format!(
        "import time\nopen({}, 'w').close()\ntry:\n    time.sleep(20)\nexcept KeyboardInterrupt:\n    open({}, 'w').close()\ntime.sleep(20)",
        py_path(&started),
        py_path(&swallowed)
    );
    let mut exec = home
        .command(&["exec", &id, &code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the call to start", Duration::from_secs(10), || {
        started.exists()
    });
    sigint(exec.id());
    // The user code swallows the first interrupt and goes on.
    wait_for("the interrupt", Duration::from_secs(5), || {
        swallowed.exists()
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(exec.try_wait().unwrap().is_none(), "the CLI ended early");
    let sent = Instant::now();
    sigint(exec.id());
    let status = wait_with_timeout(&mut exec, Duration::from_secs(5));
    assert!(sent.elapsed() < Duration::from_secs(2));
    let out = exec.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Left the call running"), "{stderr}");
    assert!(
        stderr.contains(&format!("beep-host interrupt {id}")),
        "{stderr}"
    );

    // Still running; `interrupt` ends it.
    let out = home.ok(&["interrupt", &id]);
    assert!(out.contains("Interrupted the running call"), "{out}");
    answers_at_once(&home, &id);
    let out = home.ok(&["interrupt", &id]);
    assert!(out.contains("No call was running"), "{out}");
    drop(backend);
}

#[test]
fn exec_timeout_ends_the_call() {
    let home = Home::new();
    home.plain_env("admin");
    let backend = Detached::start(&home, "pipe");
    let id = backend.id.clone();
    let began = Instant::now();
    let out = home.cli(&[
        "exec",
        &id,
        "--timeout",
        "0.5",
        "import time; time.sleep(20)",
    ]);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TimeoutError"), "{stderr}");
    answers_at_once(&home, &id);
    for bad in ["0", "-1", "soon"] {
        let out = home.cli(&["exec", &id, &format!("--timeout={bad}"), "1"]);
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("positive number of seconds"), "{stderr}");
    }
    drop(backend);
}

#[test]
fn call_takes_the_documented_forms_on_every_transport() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in ["pipe", "http", "rpc"] {
        let backend = Detached::start(&home, transport);
        let id = backend.id.clone();
        let call = |op: &str, fields: Value| -> Value {
            let out = home.ok(&["call", &id, op, &fields.to_string()]);
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{transport} {op}: {out}: {e}"))
        };
        let created = call("create", json!({"target": "collections.OrderedDict"}));
        let handle = created["$handle"].as_str().unwrap().to_string();
        let by_ref = json!({"$handle": handle});
        let updated = call(
            "call",
            json!({"handle": by_ref, "method": "update", "kwargs": {"a": 1}}),
        );
        assert_eq!(updated, Value::Null, "{transport}");
        // The whole handle value as received works too, and the plain id.
        let len = call("call", json!({"handle": created, "method": "__len__"}));
        assert_eq!(len, json!(1), "{transport}");
        let len = call("call", json!({"handle": handle, "method": "__len__"}));
        assert_eq!(len, json!(1), "{transport}");
        let namespace = call("create", json!({"target": "types.SimpleNamespace"}));
        let namespace = json!({"$handle": namespace["$handle"]});
        let set = call(
            "setattr",
            json!({"handle": namespace, "name": "x", "value": 7}),
        );
        assert_eq!(set, Value::Null, "{transport}");
        let got = call("getattr", json!({"handle": namespace, "name": "x"}));
        assert_eq!(got, json!(7), "{transport}");
        assert_eq!(call("release", json!({"handle": by_ref})), json!(true));

        let refused = |op: &str, fields: &str, kind: &str, message: &str| {
            let out = home.cli(&["call", &id, op, fields]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{transport} {op} {fields}: {stderr}"
            );
            assert!(
                stderr.contains(&format!("Python raised {kind}: {message}")),
                "{transport} {op} {fields}: {stderr}"
            );
            assert!(!stderr.contains("no such rpc"), "{transport}: {stderr}");
        };
        refused("eval", "{}", "BadRequest", "missing field `expr`");
        refused(
            "eval",
            r#"{"expr": 5}"#,
            "BadRequest",
            "`expr` must be a string",
        );
        refused(
            "call",
            r#"{"handle": 7, "method": "m"}"#,
            "BadRequest",
            "`handle` must be a handle id",
        );
        refused(
            "create",
            r#"{"target": "dict", "args": 1}"#,
            "BadRequest",
            "`args` must be a list",
        );
        refused(
            "frobnicate",
            "{}",
            "UnknownOperation",
            "unknown op `frobnicate`",
        );
        drop(backend);
    }
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_cli_quietly() {
    let home = Home::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // like `| head` after its lines: nobody reads any more
    let out = home
        .command(&["runtime", "list", "--available"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
