//! Live calls through the daemon's real backends on every transport: output arrives while
//! the call runs (Rust client and `beep-host exec`), a killed CLI's call is followed again by
//! `beep-host attach` with every line exactly once, `calls` lists the states.

#[path = "support/backend.rs"]
mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Home, id_of, kill9};

use beep_host::backend::client::{CallEvent, CallState, CallStream, OutputStream};
use beep_host::backend::{BackendClient, BackendId};

const TRANSPORTS: [&str; 3] = ["pipe", "http", "rpc"];

/// A backend started with `start --detach`, stopped when dropped.
struct Detached<'a> {
    home: &'a Home,
    id: String,
}

impl<'a> Detached<'a> {
    fn start(home: &'a Home, transport: &str) -> Self {
        let id = id_of(&home.ok(&["start", transport, "--detach"]));
        Self { home, id }
    }

    async fn client(&self) -> Box<dyn BackendClient> {
        let daemon = beep_host::daemon::DaemonClient::connect_existing(&self.home.paths)
            .await
            .unwrap()
            .expect("the daemon runs");
        daemon
            .backend_client(&self.id.parse::<BackendId>().unwrap())
            .await
            .unwrap()
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

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Python that prints `<i> <time printed>` every 100 ms, `lines` times, then has the value
/// `'end'`.
fn printer(lines: u32) -> String {
    format!(
        "import time\nfor i in range({lines}):\n    print(i, repr(time.time()))\n    time.sleep(0.1)\n'end'"
    )
}

/// Read a stream to its end: (stdout text, events, the end).
async fn drain(mut stream: CallStream) -> (String, Vec<CallEvent>, CallEvent) {
    let mut stdout = String::new();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        match &event {
            CallEvent::Output {
                stream: OutputStream::Stdout,
                data,
                ..
            } => stdout.push_str(data),
            CallEvent::End(_) => return (stdout, events, event),
            _ => {}
        }
        events.push(event);
    }
    panic!("the stream ended without the end of the call");
}

fn lines_of(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

fn end_value(end: &CallEvent) -> Value {
    match end {
        CallEvent::End(end) => end
            .result
            .as_ref()
            .expect("the call succeeds")
            .value
            .clone(),
        other => panic!("not an end: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_arrives_while_the_call_runs_on_every_transport() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in TRANSPORTS {
        let backend = Detached::start(&home, transport);
        let client = backend.client().await;

        // The Rust client: a 3 s printer; its first line within 300 ms of being printed.
        let mut stream = client
            .exec_stream(&printer(30), None, None, None)
            .await
            .unwrap();
        let first = stream.next().await.unwrap().unwrap();
        let received = now();
        let CallEvent::Output {
            call, seq, data, ..
        } = &first
        else {
            panic!("{transport}: first event {first:?}");
        };
        assert_eq!(*seq, 1, "{transport}");
        let printed: f64 = data
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            received - printed < 0.3,
            "{transport}: the first line came {:.3} s after it was printed",
            received - printed
        );
        let call = call.clone();
        // The same connection answers other requests while the stream is open.
        let began = Instant::now();
        client.info().await.unwrap();
        let listed = client.calls(None, false).await.unwrap();
        assert!(
            listed
                .iter()
                .any(|c| c.call == call && c.state == CallState::Running),
            "{transport}: {listed:?}"
        );
        assert!(
            began.elapsed() < Duration::from_millis(500),
            "{transport}: info and calls waited {:?} for the running call",
            began.elapsed()
        );
        let (rest, events, end) = drain(stream).await;
        let CallEvent::Output { data, .. } = &first else {
            unreachable!()
        };
        assert_eq!(
            lines_of(&format!("{data}{rest}")),
            (0..30).collect::<Vec<_>>(),
            "{transport}"
        );
        let seqs: Vec<u64> = std::iter::once(1)
            .chain(events.iter().map(|e| match e {
                CallEvent::Output { seq, .. } => *seq,
                other => panic!("{transport}: {other:?}"),
            }))
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "{transport}: seqs"
        );
        assert_eq!(end_value(&end), json!("end"), "{transport}");
        assert_eq!(end.call(), call, "{transport}");

        // `beep-host exec`: each line on stdout as it is printed.
        let mut exec = home
            .command(&["exec", &backend.id, &printer(10)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(exec.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let received = now();
        let printed: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            received - printed < 0.3,
            "{transport}: the CLI printed the first line {:.3} s after Python did",
            received - printed
        );
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert!(exec.wait().unwrap().success(), "{transport}");
        let (lines, value) = rest
            .rsplit_once('\n')
            .map(|(a, _)| a.rsplit_once('\n').unwrap_or(("", a)))
            .unwrap();
        let all = format!("{line}{lines}\n");
        assert_eq!(
            lines_of(all.trim_end_matches('\n')),
            (0..10).collect::<Vec<_>>(),
            "{transport}: {rest}"
        );
        assert_eq!(value, "\"end\"", "{transport}: {rest}");
        drop(backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cli_call_is_followed_again_with_every_line_once() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in TRANSPORTS {
        let backend = Detached::start(&home, transport);
        let id = backend.id.clone();
        let call = format!("job-{transport}");
        let mut exec = home
            .command(&["exec", &id, "--call", &call, &printer(25)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(exec.stdout.take().unwrap());
        for _ in 0..3 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
        }
        kill9(exec.id());
        exec.wait().unwrap();
        std::thread::sleep(Duration::from_secs(1));

        let calls: Vec<Value> = serde_json::from_str(&home.ok(&["calls", &id, "--json"])).unwrap();
        let row = calls
            .iter()
            .find(|c| c["call"] == call.as_str())
            .unwrap_or_else(|| panic!("{transport}: {calls:?}"));
        assert_eq!(row["state"], "running", "{transport}: {row}");
        assert_eq!(row["op"], "exec", "{transport}: {row}");

        let began = Instant::now();
        let attach = home.cli(&["attach", &id, &call]);
        assert!(attach.status.success(), "{transport}: {attach:?}");
        assert!(
            began.elapsed() > Duration::from_millis(500),
            "{transport}: attach did not follow the live call"
        );
        let stdout = String::from_utf8(attach.stdout).unwrap();
        let (lines, value) = stdout.trim_end().rsplit_once('\n').unwrap();
        assert_eq!(
            lines_of(lines),
            (0..25).collect::<Vec<_>>(),
            "{transport}: {stdout}"
        );
        assert_eq!(value, "\"end\"", "{transport}");

        // The Rust client: `attach` after any seq gets exactly the events after it.
        let client = backend.client().await;
        let (_, all, end) = drain(client.attach(&call, 0).await.unwrap()).await;
        assert_eq!(end_value(&end), json!("end"));
        for after in [1u64, 7, all.len() as u64] {
            let (_, tail, end) = drain(client.attach(&call, after).await.unwrap()).await;
            assert_eq!(tail, all[after as usize..], "{transport}: after {after}");
            assert_eq!(end_value(&end), json!("end"));
        }
        drop(backend);
    }
}

#[cfg(unix)]
fn sigint(pid: u32) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

/// A second Ctrl+C leaves the call running and says how to follow it; following it with the
/// `--after` given prints the rest of the output, nothing twice.
#[cfg(unix)]
#[test]
fn a_second_ctrl_c_detaches_and_names_the_attach_command() {
    let home = Home::new();
    home.plain_env("admin");
    let backend = Detached::start(&home, "pipe");
    let id = backend.id.clone();
    // Swallows the first interrupt and goes on printing.
    let code = "import time\nfor i in range(30):\n    try:\n        print(i, 0)\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass\n'end'";
    let mut exec = home
        .command(&["exec", &id, code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(exec.stdout.take().unwrap());
    let mut seen = String::new();
    for _ in 0..3 {
        out.read_line(&mut seen).unwrap();
    }
    sigint(exec.id());
    std::thread::sleep(Duration::from_millis(300));
    sigint(exec.id());
    let status = exec.wait().unwrap();
    out.read_to_string(&mut seen).unwrap();
    let mut stderr = String::new();
    exec.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let command = stderr
        .split('`')
        .find(|s| s.starts_with("beep-host attach "))
        .unwrap_or_else(|| panic!("no attach command in {stderr}"));
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(args[1], id);
    let rest = home.ok(&args);
    let all = format!("{seen}{rest}");
    let (lines, value) = all.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(lines_of(lines), (0..30).collect::<Vec<_>>(), "{all}");
    assert_eq!(value, "\"end\"");
    drop(backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_lists_each_call_with_its_state_on_every_transport() {
    let home = Home::new();
    home.grpc_env("admin");
    for transport in TRANSPORTS {
        let backend = Detached::start(&home, transport);
        let id = backend.id.clone();
        let client = backend.client().await;
        let named = |call: &str| format!("{transport}-{call}");
        beep_host::backend::client::finish(
            client
                .exec_stream("print('hi')", None, None, Some(&named("done")))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        beep_host::backend::client::finish(
            client
                .eval_stream("1/0", None, Some(&named("failed")))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        beep_host::backend::client::finish(
            client
                .exec_stream(
                    "import time; time.sleep(5)",
                    Some(0.2),
                    None,
                    Some(&named("timed_out")),
                )
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        let running = client
            .exec_stream(
                "import time; time.sleep(20)",
                None,
                None,
                Some(&named("running")),
            )
            .await
            .unwrap();
        let other = backend.client().await;
        let states =
            |calls: Vec<beep_host::backend::client::CallInfo>| -> Vec<(String, CallState)> {
                calls.into_iter().map(|c| (c.call, c.state)).collect()
            };
        // Wait until the sleeping call is the running one.
        let began = Instant::now();
        loop {
            let calls = other.calls(None, false).await.unwrap();
            if calls.iter().any(|c| c.call == named("running")) {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "{transport}: {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !other.interrupt_call(&named("done")).await.unwrap(),
            "{transport}: a finished call is not interrupted"
        );
        let listed = states(other.calls(None, false).await.unwrap());
        assert_eq!(
            listed,
            vec![
                (named("done"), CallState::Done),
                (named("failed"), CallState::Failed),
                (named("timed_out"), CallState::TimedOut),
                (named("running"), CallState::Running),
            ],
            "{transport}"
        );
        assert!(
            other.interrupt_call(&named("running")).await.unwrap(),
            "{transport}"
        );
        let end = beep_host::backend::client::finish(running).await.unwrap();
        assert_eq!(
            end.result.unwrap_err().type_name,
            "KeyboardInterrupt",
            "{transport}"
        );
        let calls: Vec<Value> = serde_json::from_str(&home.ok(&["calls", &id, "--json"])).unwrap();
        let row = calls
            .iter()
            .find(|c| c["call"] == named("running").as_str())
            .unwrap();
        assert_eq!(row["state"], "interrupted", "{transport}: {row}");
        assert!(row["duration"].as_f64().unwrap() > 0.0, "{row}");
        let done = calls
            .iter()
            .find(|c| c["call"] == named("done").as_str())
            .unwrap();
        assert_eq!(done["output_bytes"], 3, "{transport}: {done}");

        // The table, and errors that name what was wrong.
        let table = home.ok(&["calls", &id]);
        assert!(table.starts_with("CALL"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&named("timed_out")) && l.contains("timed_out")),
            "{table}"
        );
        let unknown = home.cli(&["attach", &id, "nope"]);
        assert!(!unknown.status.success());
        let stderr = String::from_utf8_lossy(&unknown.stderr);
        assert!(
            stderr.contains("`nope`") && stderr.contains(&format!("beep-host calls {id}")),
            "{transport}: {stderr}"
        );
        drop(backend);
    }
    let bad = home.cli(&["attach", "abc", "a b"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("`a b` is not a call id"), "{stderr}");
}
