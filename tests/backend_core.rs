//! The backend supervisor and the Rust clients, through the core API, against real Python.

#[path = "support/backend.rs"]
mod support;

use std::time::{Duration, Instant};

use beep_host::backend::{
    BackendEvent, BackendSpec, BackendState, PyValue, RestartLimits, RestartPolicy, Supervisor,
    Transport, client,
};
use serde_json::json;
use support::{Home, alive, kill9};
use tokio::sync::broadcast;

async fn next_state(
    events: &mut broadcast::Receiver<BackendEvent>,
    timeout: Duration,
) -> (
    BackendState,
    Option<u32>,
    Option<beep_host::backend::LastExit>,
) {
    loop {
        let event = tokio::time::timeout(timeout, events.recv())
            .await
            .expect("a state change in time")
            .expect("events flow");
        if let BackendEvent::State {
            state,
            pid,
            last_exit,
            ..
        } = event
        {
            return (state, pid, last_exit);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_answers_the_rust_client_and_refuses_a_wrong_token() {
    let home = Home::new();
    let env = home.grpc_env("admin");
    let supervisor = Supervisor::new(home.paths.clone());
    for transport in Transport::ALL {
        let id = supervisor
            .start(BackendSpec::new(env.clone(), transport))
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        let status = supervisor.status(&id).unwrap();
        assert_eq!(status.state, BackendState::Ready);
        let client = supervisor.client(&id).await.unwrap();
        assert_eq!(client.transport(), transport);
        assert_eq!(client.eval("1+1").await.unwrap(), PyValue::Json(json!(2)));

        let out = client
            .exec("print('hi')\nx = 20\nx + 1", None)
            .await
            .unwrap();
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.value, PyValue::Json(json!(21)));

        let d = client
            .create("collections.OrderedDict", vec![], Default::default())
            .await
            .unwrap();
        let handle = d.as_handle().expect("an OrderedDict is a handle").clone();
        assert_eq!(handle.type_name, "collections.OrderedDict");
        client
            .call(
                &handle,
                "__setitem__",
                vec![json!("a"), json!(1)],
                Default::default(),
            )
            .await
            .unwrap();
        let len = client
            .call(&handle, "__len__", vec![], Default::default())
            .await;
        assert_eq!(len.unwrap(), PyValue::Json(json!(1)));
        client.release(&handle).await.unwrap();

        let err = client.eval("1/0").await.unwrap_err();
        let remote = err.remote().expect("a Python error");
        assert_eq!(remote.type_name, "ZeroDivisionError");
        assert!(remote.traceback.contains("ZeroDivisionError"), "{remote:?}");

        let info = client.info().await.unwrap();
        assert_eq!(info["env_name"], json!("admin"));

        let address = status.address.clone().unwrap();
        let wrong = "0".repeat(64);
        match client::connect(transport, &address, &wrong).await {
            Err(client::Error::Unauthorized { .. }) => {}
            Err(other) => panic!("{transport}: wrong token gave {other}"),
            Ok(_) => panic!("{transport}: a wrong token was accepted"),
        }

        let pid = status.pid.unwrap();
        supervisor.stop(&id).await.unwrap();
        assert!(!alive(pid), "{transport}: the process is gone");
        assert_eq!(
            record_state(&status.record),
            "stopped",
            "{transport}: the record keeps the end"
        );
        if transport == Transport::Pipe {
            assert!(
                !std::path::Path::new(&address).exists(),
                "the socket is gone"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_crashed_at_once_and_restarts_up_to_the_limit() {
    let home = Home::new();
    let env = home.plain_env("admin");
    let supervisor = Supervisor::new(home.paths.clone());
    let mut events = supervisor.subscribe();
    let mut spec = BackendSpec::new(env, Transport::Pipe).restart(RestartPolicy::OnFailure);
    spec.limits = RestartLimits {
        backoff: Duration::from_millis(20),
        ..RestartLimits::default()
    };
    let id = supervisor.start(spec).await.unwrap();
    let mut pid = supervisor.status(&id).unwrap().pid.unwrap();
    while !matches!(
        next_state(&mut events, Duration::from_secs(5)).await.0,
        BackendState::Ready
    ) {}

    for round in 0..=5 {
        let killed = Instant::now();
        kill9(pid);
        let (state, _, exit) = next_state(&mut events, Duration::from_secs(1)).await;
        assert_eq!(state, BackendState::Crashed, "round {round}");
        assert!(killed.elapsed() < Duration::from_secs(1));
        assert_eq!(exit.unwrap().signal, Some(9));
        if round == 5 {
            break;
        }
        let (state, _, _) = next_state(&mut events, Duration::from_secs(1)).await;
        assert_eq!(state, BackendState::Restarting);
        let (state, new_pid, _) = next_state(&mut events, Duration::from_secs(10)).await;
        assert_eq!(state, BackendState::Ready, "round {round}");
        assert_ne!(new_pid.unwrap(), pid);
        pid = new_pid.unwrap();
        let client = supervisor.client(&id).await.unwrap();
        assert_eq!(client.eval("2+2").await.unwrap(), PyValue::Json(json!(4)));
        assert_eq!(supervisor.status(&id).unwrap().restarts, round + 1);
    }
    // Five restarts used: it stays crashed (so says its record), its socket gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = supervisor.status(&id).unwrap();
    assert_eq!(status.state, BackendState::Crashed);
    assert_eq!(status.restarts, 5);
    assert_eq!(status.last_exit.unwrap().signal, Some(9));
    assert_eq!(record_state(&status.record), "crashed");
    assert!(home.files(&home.paths.sockets()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_restart_policy_a_crash_is_final() {
    let home = Home::new();
    let env = home.plain_env("work");
    let supervisor = Supervisor::new(home.paths.clone());
    let mut events = supervisor.subscribe();
    let id = supervisor
        .start(BackendSpec::new(env.clone(), Transport::Http))
        .await
        .unwrap();
    assert_eq!(supervisor.backends_in_env(&env).len(), 1);
    while !matches!(
        next_state(&mut events, Duration::from_secs(5)).await.0,
        BackendState::Ready
    ) {}
    let status = supervisor.status(&id).unwrap();
    let client = supervisor.client(&id).await.unwrap();
    // Written just after the call (a call's own fd 2 output is the call's, not the log's).
    client
        .exec(
            "import os, threading; threading.Timer(0.02, os.write, (2, b'about to die\\n')).start()",
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    kill9(status.pid.unwrap());
    let (state, _, exit) = next_state(&mut events, Duration::from_secs(1)).await;
    assert_eq!(state, BackendState::Crashed);
    let exit = exit.unwrap();
    assert_eq!(exit.signal, Some(9));
    assert!(exit.describe().contains("SIGKILL"));
    assert!(
        exit.last_lines.iter().any(|l| l.contains("about to die")),
        "{:?}",
        exit.last_lines
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(record_state(&status.record), "crashed");
    assert!(supervisor.backends_in_env(&env).is_empty());
    // Removed on request: the record goes, the backend leaves the table.
    supervisor.remove(&id).await.unwrap();
    assert!(!status.record.exists());
    assert!(supervisor.status(&id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_reports_why() {
    let home = Home::new();
    let supervisor = Supervisor::new(home.paths.clone());
    let missing = beep_host::venv::EnvName::parse("nope").unwrap();
    let err = supervisor
        .start(BackendSpec::new(missing, Transport::Pipe))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Failed to find environment `nope`"),
        "{err}"
    );

    // An interpreter that dies before it is ready: the last stderr lines are in the error.
    let env = home.plain_env("broken");
    let site = beep_host::venv::env_dir(&home.paths, &env).join("lib");
    let site = std::fs::read_dir(&site)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        site.join("site-packages/sitecustomize.py"),
        "import sys\nsys.stderr.write('custom failure here\\n')\nsys.exit(3)\n",
    )
    .unwrap();
    let err = supervisor
        .start(BackendSpec::new(env, Transport::Pipe))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit code 1"), "{err}");
    assert!(err.contains("custom failure here"), "{err}");
    assert!(supervisor.list().is_empty());
    assert!(home.files(&home.paths.backend_records()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stable_run_resets_the_restart_counter() {
    let home = Home::new();
    let env = home.plain_env("admin");
    let supervisor = Supervisor::new(home.paths.clone());
    let mut events = supervisor.subscribe();
    let mut spec = BackendSpec::new(env, Transport::Pipe).restart(RestartPolicy::OnFailure);
    spec.limits = RestartLimits {
        max_restarts: 1,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        stable_after: Duration::from_millis(400),
    };
    let id = supervisor.start(spec).await.unwrap();
    let first = next_ready(&mut events).await;
    kill9(first); // restart 1 of 1
    let second = next_ready(&mut events).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // a stable run
    kill9(second); // the counter was reset: restarted again
    let third = next_ready(&mut events).await;
    kill9(third); // right away: over the limit
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(BackendEvent::Ended { state, .. })) => {
                assert_eq!(state, BackendState::Crashed);
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(supervisor.status(&id).unwrap().restarts, 2);
}

async fn next_ready(events: &mut broadcast::Receiver<BackendEvent>) -> u32 {
    loop {
        let (state, pid, _) = next_state(events, Duration::from_secs(10)).await;
        if state == BackendState::Ready {
            return pid.unwrap();
        }
        assert_ne!(state, BackendState::Stopped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pipe_connection_serves_many_concurrent_and_cancelled_calls() {
    let home = Home::new();
    let env = home.plain_env("admin");
    let supervisor = Supervisor::new(home.paths.clone());
    let id = supervisor
        .start(BackendSpec::new(env, Transport::Pipe))
        .await
        .unwrap();
    let client = std::sync::Arc::new(supervisor.client(&id).await.unwrap());
    let calls = (0..64).map(|task| {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                let n = task * 1000 + i;
                let value = client.eval(&format!("{n} * 2")).await.unwrap();
                assert_eq!(value, PyValue::Json(json!(n * 2)));
            }
        })
    });
    for call in futures_util::future::join_all(calls).await {
        call.unwrap();
    }
    // A caller that gives up (its future dropped while it was the reader) leaves the
    // connection usable for the others.
    let slow = tokio::time::timeout(
        Duration::from_millis(100),
        client.exec("import time; time.sleep(0.5)", None),
    )
    .await;
    assert!(slow.is_err());
    assert_eq!(client.eval("7").await.unwrap(), PyValue::Json(json!(7)));
    supervisor.stop(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_another_operation_on_its_environment() {
    let home = Home::new();
    let supervisor = Supervisor::new(home.paths.clone());
    let env = home.plain_env("busy");
    // What `venv install`/`venv delete` hold while they work on the environment.
    let lock_path = home.paths.locks().join("venv-busy.lock");
    let held = beep_host::lock::LockFile::acquire_blocking(&lock_path).unwrap();

    let mut spec = BackendSpec::new(env.clone(), Transport::Pipe);
    spec.ready_timeout = Duration::from_millis(300);
    let err = supervisor.start(spec).await.unwrap_err().to_string();
    assert!(err.contains("environment `busy`"), "{err}");
    assert!(err.contains("did not finish in time"), "{err}");
    assert!(supervisor.list().is_empty());

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    });
    let t0 = Instant::now();
    let id = supervisor
        .start(BackendSpec::new(env, Transport::Pipe))
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t0.elapsed()
    );
    release.join().unwrap();
    // Once ready and recorded the lock is free again: a delete could now see the backend.
    let again = beep_host::lock::LockFile::try_acquire(&lock_path, "test").unwrap();
    drop(again);
    supervisor.stop(&id).await.unwrap();
}

/// The `state` field of a backend record.
fn record_state(path: &std::path::Path) -> String {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["state"].as_str().unwrap().to_string()
}
