//! The daemon: one owner for every backend of a home. Real `beep-host` processes, real
//! Python backends, real signals, each test in a fresh `BEEP_HOST_HOME`.

#![cfg(unix)] // Signals, /proc and tmpfs: the Windows lane runs its own checks.

#[path = "support/backend.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Home, alive, id_of, kill9, wait_for};

fn row<'a>(ps: &'a [Value], id: &str) -> &'a Value {
    ps.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {ps:?}"))
}

fn pid_of(ps: &[Value], id: &str) -> u32 {
    row(ps, id)["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{id} has no pid: {ps:?}")) as u32
}

/// The resident memory of a process from `/proc/<pid>/status`, in bytes.
fn proc_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn two_clients_and_a_foreground_start_see_one_table_with_stats() {
    let home = Home::new();
    home.plain_env("admin");
    let id = id_of(&home.ok(&["start", "http", "--detach"]));
    // A foreground start in another process: listed by everyone, stopped by Ctrl+C.
    let (mut fg, first) = home.start_foreground("pipe");
    let fg_id = id_of(&first);

    // Two `ps` at once, from two processes: the same backends, each with memory.
    let ps = || {
        home.command(&["ps", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (ps(), ps());
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    let a: Vec<Value> = serde_json::from_slice(&a.stdout).unwrap();
    let b: Vec<Value> = serde_json::from_slice(&b.stdout).unwrap();
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v.iter().map(|r| r["id"].as_str().unwrap().into()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&a), ids(&b));
    let mut want = vec![id.clone(), fg_id.clone()];
    want.sort();
    assert_eq!(ids(&a), want);
    let pid = pid_of(&a, &id);
    // Memory is the process's own, as /proc counts it (one process, several threads).
    let shown = row(&a, &id)["rss_bytes"].as_u64().unwrap();
    let real = proc_rss(pid);
    assert!(
        shown.abs_diff(real) <= real / 5,
        "ps shows {shown} bytes, /proc says {real}"
    );
    // Both backends have the same owner: the daemon.
    let daemon = home.daemon_pid().expect("a daemon runs");
    for r in &a {
        assert_eq!(r["supervisor_pid"], daemon, "{r}");
    }

    // Ctrl+C on the foreground start stops its backend.
    let fg_pid = pid_of(&a, &fg_id);
    // SAFETY: plain kill(2).
    unsafe { libc::kill(fg.id() as libc::pid_t, libc::SIGINT) };
    assert!(fg.wait().unwrap().success());
    wait_for(
        "the foreground backend gone",
        Duration::from_secs(5),
        || !alive(fg_pid),
    );
    let ps = home.ps();
    assert!(ps.iter().all(|r| r["id"] != fg_id.as_str()), "{ps:?}");
    home.ok(&["stop", &id]);
    assert!(!alive(pid));
}

#[test]
fn a_killed_backend_stays_crashed_with_its_signal_until_removed() {
    let home = Home::new();
    home.plain_env("admin");
    let id = id_of(&home.ok(&["start", "pipe", "--detach"]));
    let pid = pid_of(&home.ps(), &id);
    kill9(pid);
    wait_for("crashed", Duration::from_secs(5), || {
        row(&home.ps(), &id)["state"] == "crashed"
    });
    let ps = home.ps();
    let crashed = row(&ps, &id);
    assert_eq!(crashed["last_exit"]["signal"], 9, "{crashed}");
    assert!(crashed["pid"].is_null(), "{crashed}");
    let table = home.ok(&["ps"]);
    assert!(
        table.contains("crashed: signal 9 (SIGKILL)"),
        "ps shows:\n{table}"
    );
    // Still there a while later, and after the daemon is restarted.
    let record = home.paths.backend_records().join(format!("{id}.json"));
    assert!(record.exists());
    let stop = home.cli(&["stop", &id]);
    assert!(
        stop.status.success(),
        "stopping an ended backend is no error"
    );
    let running = home.cli(&["rm", "ffffffff"]);
    assert!(!running.status.success());
    home.ok(&["rm", &id]);
    assert!(home.ps().iter().all(|r| r["id"] != id.as_str()));
    assert!(!record.exists(), "rm removes the record");
    // The log says what happened.
    let log = home.ok(&["logs", &id]);
    assert!(log.contains("[beep-host"), "{log}");
    assert!(log.contains("signal 9"), "{log}");
}

#[test]
fn a_running_backend_cannot_be_removed() {
    let home = Home::new();
    home.plain_env("admin");
    let id = id_of(&home.ok(&["start", "http", "--detach"]));
    let out = home.cli(&["rm", &id]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("it is running; stop it first"), "{stderr}");
    home.ok(&["stop", &id]);
    // Stopped by hand: hidden from `ps`, shown by `ps --all`.
    assert!(home.ps().iter().all(|r| r["id"] != id.as_str()));
    let all: Vec<Value> = serde_json::from_str(&home.ok(&["ps", "--all", "--json"])).unwrap();
    assert_eq!(row(&all, &id)["state"], "stopped");
    // Start again: same id, a new process.
    home.ok(&["restart", &id]);
    let ps = home.ps();
    assert_eq!(row(&ps, &id)["state"], "ready");
    assert_eq!(home.ok(&["eval", &id, "2+3"]).trim(), "5");
}

#[test]
fn a_killed_daemon_takes_its_backends_and_the_next_one_reports_them_lost() {
    let home = Home::new();
    home.plain_env("admin");
    let never = id_of(&home.ok(&["start", "pipe", "--detach"]));
    let again = id_of(&home.ok(&["start", "http", "--detach", "--restart", "on-failure"]));
    let ps = home.ps();
    let (p1, p2) = (pid_of(&ps, &never), pid_of(&ps, &again));
    let daemon = home.daemon_pid().unwrap();
    kill9(daemon);
    let took = wait_for(
        "the backends gone with their daemon",
        Duration::from_secs(3),
        || !alive(p1) && !alive(p2),
    );
    eprintln!("backends gone {took:?} after the daemon was killed");

    // The next command starts a daemon, which reads the table its predecessor left.
    let ps = home.ps();
    assert_ne!(home.daemon_pid(), Some(daemon));
    let lost = row(&ps, &never);
    assert_eq!(lost["state"], "lost", "{lost}");
    let reason = lost["last_exit"]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("pid {daemon}")), "{reason}");
    let back = row(&ps, &again);
    assert_eq!(back["state"], "ready", "on-failure comes back: {back}");
    assert_ne!(back["pid"], p2);
    assert_eq!(home.ok(&["eval", &again, "1+1"]).trim(), "2");
    let table = home.ok(&["ps"]);
    assert!(table.contains("lost: the daemon"), "{table}");
}

#[test]
fn one_daemon_per_home_and_a_stale_one_is_taken_over() {
    let home = Home::new();
    // A stale record of a daemon that is gone: ignored and replaced.
    std::fs::create_dir_all(&home.paths.state).unwrap();
    std::fs::write(
        home.paths.state.join("daemon.json"),
        r#"{"pid": 4000000, "start_time": 1, "version": "0", "protocol": 1, "socket": "/nowhere", "http": null, "grpc": null, "started_at": 1}"#,
    )
    .unwrap();
    // And a stale host API record with its own (dead) token.
    std::fs::write(
        home.paths.state.join("host.json"),
        r#"{"pid": 4000000, "http": "http://127.0.0.1:9", "grpc": null, "token": "stale", "started_at": 1}"#,
    )
    .unwrap();
    assert!(home.ps().is_empty());
    let first = home.daemon_pid().expect("a daemon runs");

    // A second daemon, or `serve`, on the same home refuses and names the first.
    for args in [&["daemon"][..], &["serve"][..]] {
        let out = home.cli(args);
        assert!(!out.status.success(), "{args:?} started a second daemon");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("another one serves it") && stderr.contains(&format!("pid {first}")),
            "{stderr}"
        );
    }
    assert_eq!(home.daemon_pid(), Some(first));
    // host.json names the daemon's host API and is not deleted by the refused attempts.
    let host: Value =
        serde_json::from_slice(&std::fs::read(home.paths.state.join("host.json")).unwrap())
            .unwrap();
    assert_eq!(host["pid"], first);
    assert_ne!(host["token"], "stale");
    assert_ne!(host["http"], "http://127.0.0.1:9");
}

#[test]
fn the_daemon_exits_when_idle_and_when_its_home_is_removed() {
    let home = Home::new();
    let out = home
        .command(&["ps"])
        .env("BEEP_HOST_DAEMON_IDLE", "0.5")
        .output()
        .unwrap();
    assert!(out.status.success());
    let pid = home.daemon_pid().expect("ps started a daemon");
    wait_for("the idle daemon gone", Duration::from_secs(5), || {
        !alive(pid)
    });
    assert!(!home.paths.state.join("daemon.json").exists());

    // With a backend running it does not idle out; removing the home ends both.
    let other = Home::new();
    other.plain_env("admin");
    let id = id_of(
        &other
            .command(&["start", "pipe", "--detach"])
            .env("BEEP_HOST_DAEMON_IDLE", "0.5")
            .output()
            .map(|o| String::from_utf8(o.stdout).unwrap())
            .unwrap(),
    );
    let backend = pid_of(&other.ps(), &id);
    let daemon = other.daemon_pid().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        alive(daemon) && alive(backend),
        "idle exit with a backend running"
    );
    std::fs::remove_dir_all(other.root()).unwrap();
    wait_for(
        "daemon and backend gone with the home",
        Duration::from_secs(5),
        || !alive(daemon) && !alive(backend),
    );
}

#[test]
fn a_damaged_record_is_reported_and_what_it_names_is_stoppable() {
    let home = Home::new();
    // A process the damaged record names, in its own process group as backends are.
    let mut victim = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let pid = victim.id();
    let start_time = beep_host::backend::record::process_start_time(pid).unwrap();
    let dir = home.paths.backend_records();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("abcd1234.json");
    std::fs::write(
        &path,
        format!("{{\n  \"id\": \"abcd1234\",\n  \"pid\": {pid},\n  \"start_time\": {start_time},\n  \"transp"),
    )
    .unwrap();
    // The daemon that reads it stops the process it names (its owner is gone) and reports
    // the file; `ps` still exits 0 and says which file and what is wrong.
    let out = home.cli(&["ps"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("abcd1234.json") && stderr.contains("unreadable"),
        "{stderr}"
    );
    let began = Instant::now();
    while victim.try_wait().unwrap().is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the process named by the damaged record still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    home.ok(&["rm", "abcd1234"]);
    assert!(!path.exists());
    let out = home.cli(&["ps"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unreadable"));
}

#[test]
fn a_full_disk_fails_the_start_by_name_and_leaves_nothing() {
    let home = Home::new();
    home.plain_env("admin");
    // The state directory on a real, tiny tmpfs.
    let state = &home.paths.state;
    std::fs::create_dir_all(state).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(state)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(state.clone());
    assert!(home.ps().is_empty(), "the daemon starts on the small disk");
    // Fill it.
    let filler = state.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let out = home.cli(&["start", "http", "--detach"]);
    assert!(!out.status.success(), "a start on a full disk succeeded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("ready"),
        "said ready without a record: {stdout}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the error does not name the cause: {stderr}"
    );
    let leftovers: Vec<String> = home
        .files(&home.paths.backend_records())
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    // No backend process survived the failed start.
    let ps = home.ps();
    assert!(
        ps.iter().all(|r| r["pid"].is_null()),
        "a backend runs after the failed start: {ps:?}"
    );
    std::fs::remove_file(&filler).unwrap();
}

#[test]
fn ps_shows_a_backend_busy_while_a_call_runs() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in ["pipe", "http", "rpc"] {
        let id = id_of(&home.ok(&["start", transport, "--detach"]));
        assert_eq!(row(&home.ps(), &id)["busy"], false, "{transport}");
        let mut call = home
            .command(&["exec", &id, "import time; time.sleep(2)"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(
            &format!("{transport}: busy in ps"),
            Duration::from_secs(3),
            || {
                home.ok(&["ps"])
                    .lines()
                    .any(|l| l.starts_with(&id) && l.contains(" busy "))
            },
        );
        assert_eq!(row(&home.ps(), &id)["busy"], true, "{transport}");
        assert!(call.wait().unwrap().success());
        assert_eq!(row(&home.ps(), &id)["busy"], false, "{transport}");
        home.ok(&["stop", &id]);
    }
}

#[test]
fn a_daemon_of_another_protocol_is_reported_with_what_to_do() {
    let home = Home::new();
    let socket = home.paths.state.join("daemon").join("daemon.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    // A stand-in daemon of a future version: answers `hello` with protocol 999.
    let script = r#"
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    f.readline()
    f.write(json.dumps({"ok": {"protocol": 999, "version": "9.9.9", "pid": os.getpid()}}).encode() + b"\n")
    f.flush(); c.close()
"#;
    let mut fake = std::process::Command::new(support::python())
        .args(["-c", script])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(fake.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let out = home.cli(&["ps"]);
    fake.kill().unwrap();
    fake.wait().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("version 9.9.9 (protocol 999)") && stderr.contains("beep-host daemon stop"),
        "{stderr}"
    );
}

#[test]
fn the_daemon_log_is_private_and_plain_text() {
    let home = Home::new();
    let out = home
        .command(&["ps"])
        .env("RUST_LOG", "beep_host=info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = home.paths.logs().join("daemon.log");
    home.ok(&["daemon", "stop"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("daemon exiting"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI codes in the log: {text:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_renamed_cli_starts_its_daemon_from_itself() {
    let home = Home::new();
    let copy = home.root().join("bh-renamed");
    std::fs::copy(env!("CARGO_BIN_EXE_beep-host"), &copy).unwrap();
    let out = std::process::Command::new(&copy)
        .arg("ps")
        .env("BEEP_HOST_HOME", home.root())
        .env("BEEP_HOST_DAEMON_IDLE", "30")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = home.daemon_pid().expect("a daemon runs");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, copy);
}

#[test]
fn the_daemon_socket_is_private_and_holds_off_bad_clients() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    assert!(home.ps().is_empty());
    let socket = home.paths.state.join("daemon").join("daemon.sock");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&socket), 0o600);

    let answer = |stream: &mut std::os::unix::net::UnixStream| {
        let mut line = String::new();
        BufReader::new(stream.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        serde_json::from_str::<Value>(&line).unwrap()
    };
    let mut client = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    // Not JSON: a clear error, and the connection keeps serving.
    client.write_all(b"{not json\n").unwrap();
    let bad = answer(&mut client);
    assert_eq!(bad["error"]["code"], "invalid", "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Failed to parse the request")
    );
    // A request before `hello` is refused and names what to do.
    client.write_all(b"{\"op\": \"stop_all\"}\n").unwrap();
    let early = answer(&mut client);
    assert!(
        early["error"]["message"]
            .as_str()
            .unwrap()
            .contains("say hello"),
        "{early}"
    );

    // A line over 1 MiB is refused and the connection closed, without reading it all.
    let mut big = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent <= 2 << 20 {
        if big.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut rest = String::new();
    let _ = big.read_to_string(&mut rest);
    assert!(rest.contains("longer than 1048576 bytes"), "{rest:?}");

    // Everyone else is still served.
    assert!(home.ps().is_empty());
    assert!(home.daemon_pid().is_some());
}

/// A start the core refuses with CLI advice (grpcio missing: "Run `beep-host venv admin`")
/// comes back from the real daemon with that advice for the CLI and, for the app and other
/// interfaces, the plain message and the hint.
#[test]
fn a_refused_start_comes_back_with_its_hint_and_a_message_without_cli_advice() {
    use beep_host::daemon::DaemonClient;
    use beep_host::daemon::protocol::StartSpec;
    use beep_host::error::Hint;

    let home = Home::new();
    home.plain_env("plain");
    let out = home.cli(&["start", "rpc", "--venv", "plain", "--detach"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("beep-host venv admin"), "{stderr}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        let client = DaemonClient::connect_existing(&home.paths)
            .await
            .unwrap()
            .expect("the CLI's daemon runs");
        client
            .start(StartSpec {
                env: "plain".into(),
                runtime: None,
                transport: beep_host::backend::Transport::Rpc,
                restart: Default::default(),
                ready_timeout_ms: 10_000,
                options: Default::default(),
            })
            .await
            .unwrap_err()
    });
    assert!(err.to_string().contains("beep-host venv admin"), "{err}");
    let (message, hint) = beep_host::error::advised(&err);
    assert_eq!(hint, Some(Hint::RepairAdmin));
    assert!(
        message.contains("grpcio") && !message.contains("beep-host"),
        "{message}"
    );
    // Wrapped in the crate error (as the app's commands get it), the same.
    let err = beep_host::Error::from(err);
    assert_eq!(beep_host::error::advised(&err), (message, hint));
}
