//! Backends on a runtime itself (`beep-host start --runtime`), with no environment: a
//! managed CPython installed from a local mirror (the python-build-standalone-shaped test
//! archive), backends on it over pipe and http, answered through the Rust client, listed
//! with their runtime, restarted, recovered by the next daemon, and the runtime's removal
//! refused while one runs on it.

#![cfg(unix)] // Signals and /proc: the Windows lane covers the embedded runtime.

#[path = "support/pbs.rs"]
mod pbs;
#[path = "support/backend.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use beep_host::backend::{PyValue, Transport, client};
use serde_json::{Value, json};
use support::{Home, alive, id_of, kill9, wait_for};

/// A backend home with the test runtime installed: the home, the runtime's key and its
/// installation prefix.
struct RuntimeHome {
    home: Home,
    key: String,
    prefix: PathBuf,
    _mirror: tempfile::TempDir,
}

impl RuntimeHome {
    fn new() -> Self {
        let fx = pbs::fixture();
        let mirror = tempfile::tempdir().unwrap();
        pbs::mirror_with(mirror.path(), &[(&fx.targz.name, &fx.targz.path)]);
        let catalog = mirror.path().join("catalog.json");
        pbs::catalog(&catalog, &[(&fx.version, &fx.targz.name, &fx.targz.sha256)]);
        let home = Home::new();
        let out = home
            .command(&["runtime", "install", &fx.version])
            .env("BEEP_PYTHON_CATALOG", &catalog)
            .env(
                "BEEP_PYTHON_MIRROR",
                format!("file://{}", mirror.path().display()),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "install: {}", text(&out.stderr));
        let list: Vec<Value> =
            serde_json::from_str(&home.ok(&["runtime", "list", "--json"])).unwrap();
        let managed = list
            .iter()
            .find(|r| r["kind"] == "managed")
            .unwrap_or_else(|| panic!("no managed runtime in {list:?}"));
        Self {
            key: managed["key"].as_str().unwrap().to_string(),
            prefix: PathBuf::from(managed["path"].as_str().unwrap()),
            home,
            _mirror: mirror,
        }
    }

    /// `start <transport> --runtime <key> --detach <extra>`: the backend id.
    fn start(&self, transport: &str, extra: &[&str]) -> String {
        let mut args = vec!["start", transport, "--runtime", &self.key, "--detach"];
        args.extend_from_slice(extra);
        id_of(&self.home.ok(&args))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", text(&out.stdout));
    text(&out.stderr)
}

fn row<'a>(ps: &'a [Value], id: &str) -> &'a Value {
    ps.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {ps:?}"))
}

fn block<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// `1+1` and `sys.prefix` through the Rust client, from the backend's record.
fn eval_prefix(home: &Home, id: &str) -> PathBuf {
    let record: Value = serde_json::from_slice(
        &std::fs::read(home.paths.backend_records().join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let transport: Transport = serde_json::from_value(record["transport"].clone()).unwrap();
    block(async {
        let client = client::connect(
            transport,
            record["address"].as_str().unwrap(),
            record["token"].as_str().unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("connect {id}: {e}"));
        assert_eq!(client.eval("1+1").await.unwrap(), PyValue::Json(json!(2)));
        match client.eval("__import__('sys').prefix").await.unwrap() {
            PyValue::Json(Value::String(prefix)) => PathBuf::from(prefix),
            other => panic!("{other:?}"),
        }
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    std::fs::canonicalize(a).unwrap() == std::fs::canonicalize(b).unwrap()
}

#[test]
fn backends_run_on_a_runtime_and_keep_it_from_being_removed() {
    let rt = RuntimeHome::new();
    let home = &rt.home;
    // No environment at all: the backends run on the runtime's own interpreter.
    assert!(!home.paths.envs().exists() || home.files(&home.paths.envs()).is_empty());
    let pipe = rt.start("pipe", &[]);
    let http = rt.start("http", &[]);
    let ps = home.ps();
    for id in [&pipe, &http] {
        let r = row(&ps, id);
        assert_eq!(r["state"], "ready", "{r}");
        assert_eq!(r["runtime"]["key"], rt.key.as_str(), "{r}");
        assert_eq!(r["env"], "", "{r}");
        assert!(r["pid"].as_u64().unwrap() > 0, "{r}");
        assert!(r["rss_bytes"].as_u64().unwrap() > 0, "{r}");
        let python = PathBuf::from(r["runtime"]["python"].as_str().unwrap());
        assert!(python.starts_with(&rt.prefix), "{r}");
        assert!(same_dir(&eval_prefix(home, id), &rt.prefix));
    }
    let table = home.ok(&["ps"]);
    assert!(table.contains(&format!("runtime {}", rt.key)), "{table}");
    let logs = home.ok(&["logs", &pipe]);
    assert!(
        logs.contains(&format!("starting: pipe on runtime `{}`", rt.key)),
        "{logs}"
    );

    // Restarted in place: a new process on the same runtime.
    let before = row(&ps, &http)["pid"].as_u64().unwrap();
    home.ok(&["restart", &http]);
    let ps = home.ps();
    let r = row(&ps, &http);
    assert_eq!(r["state"], "ready", "{r}");
    assert_ne!(r["pid"].as_u64().unwrap(), before);
    assert_eq!(r["runtime"]["key"], rt.key.as_str());
    assert!(same_dir(&eval_prefix(home, &http), &rt.prefix));

    // The runtime cannot go while they run: refused, naming them; nothing removed.
    let err = failed(&home.cli(&["runtime", "remove", &rt.key]));
    assert!(err.contains(&pipe) && err.contains(&http), "{err}");
    eprintln!("runtime remove: {err}");
    assert!(err.contains("running on it"), "{err}");
    assert!(rt.prefix.join("bin").is_dir());
    assert!(
        same_dir(&eval_prefix(home, &pipe), &rt.prefix),
        "still answers"
    );

    home.ok(&["stop", &pipe]);
    let err = failed(&home.cli(&["runtime", "remove", &rt.key]));
    assert!(err.contains(&http) && !err.contains(&pipe), "{err}");
    home.ok(&["stop", &http]);
    home.ok(&["runtime", "remove", &rt.key]);
    assert!(!rt.prefix.exists());
    // A stopped backend whose runtime is gone says so when started again.
    let err = failed(&home.cli(&["restart", &http]));
    assert!(err.contains(&rt.key), "{err}");
}

#[test]
fn the_next_daemon_reports_runtime_backends_lost_or_restarts_them() {
    let rt = RuntimeHome::new();
    let home = &rt.home;
    let never = rt.start("pipe", &[]);
    let again = rt.start("http", &["--restart", "on-failure"]);
    let ps = home.ps();
    let pids: Vec<u32> = [&never, &again]
        .iter()
        .map(|id| row(&ps, id)["pid"].as_u64().unwrap() as u32)
        .collect();
    let daemon = home.daemon_pid().expect("a daemon runs");
    kill9(daemon);
    wait_for(
        "the backends gone with their daemon",
        Duration::from_secs(3),
        || pids.iter().all(|&p| !alive(p)),
    );

    let ps = home.ps();
    assert_ne!(home.daemon_pid(), Some(daemon));
    let lost = row(&ps, &never);
    assert_eq!(lost["state"], "lost", "{lost}");
    assert_eq!(lost["runtime"]["key"], rt.key.as_str(), "{lost}");
    let back = row(&ps, &again);
    assert_eq!(back["state"], "ready", "on-failure comes back: {back}");
    assert_eq!(back["runtime"]["key"], rt.key.as_str(), "{back}");
    assert_ne!(back["pid"].as_u64().unwrap() as u32, pids[1]);
    assert!(same_dir(&eval_prefix(home, &again), &rt.prefix));
    // The lost one starts again on its runtime when asked.
    home.ok(&["restart", &never]);
    assert!(same_dir(&eval_prefix(home, &never), &rt.prefix));
    home.ok(&["stop", "--all"]);
}

#[test]
fn bad_runtime_requests_are_clear_errors() {
    let rt = RuntimeHome::new();
    let home = &rt.home;
    let err = failed(&home.cli(&["start", "http", "--runtime", "nope-3.99", "--detach"]));
    eprintln!("unknown runtime: {err}");
    assert!(err.contains("`nope-3.99`"), "{err}");
    assert!(err.contains("beep-host runtime list"), "{err}");

    let out = home.cli(&["start", "http", "--venv", "admin", "--runtime", &rt.key]);
    let err = failed(&out);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("--runtime") && err.contains("--venv"), "{err}");

    // gRPC needs grpcio, which the bare runtime lacks: the error names it.
    let err = failed(&home.cli(&["start", "rpc", "--runtime", &rt.key, "--detach"]));
    eprintln!("rpc without grpcio: {err}");
    assert!(err.contains("grpcio") && err.contains(&rt.key), "{err}");
    // Nothing was left running or recorded by the failed starts.
    let ps = home.ps();
    assert!(ps.iter().all(|r| r["state"] != "ready"), "{ps:?}");

    // The host API starts on a runtime too, and refuses both an environment and a runtime.
    let host: Value =
        serde_json::from_slice(&std::fs::read(home.paths.state.join("host.json")).unwrap())
            .unwrap();
    let url = format!("{}/backends", host["http"].as_str().unwrap());
    let token = host["token"].as_str().unwrap().to_string();
    let post = |body: Value| {
        block(async {
            let response = reqwest::Client::new()
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    let (status, started) = post(json!({"runtime": rt.key, "transport": "http"}));
    assert!(status < 300, "{status} {started}");
    assert_eq!(started["runtime"]["key"], rt.key.as_str(), "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    assert!(same_dir(&eval_prefix(home, &id), &rt.prefix));
    let (status, refused) = post(json!({"runtime": rt.key, "env": "admin", "transport": "http"}));
    assert_eq!(status, 400, "{refused}");
    let (status, unknown) = post(json!({"runtime": "nope-3.99", "transport": "http"}));
    assert_eq!(status, 404, "{unknown}");
    home.ok(&["stop", &id]);

    // And its gRPC `Start`.
    use beep_host::host::grpc::proto::{self, backend_service_client::BackendServiceClient};
    let grpc = format!("http://{}", host["grpc"].as_str().unwrap());
    let auth = |message| {
        let mut request = tonic::Request::new(message);
        let bearer = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", bearer);
        request
    };
    let started = block(async {
        let channel = tonic::transport::Endpoint::from_shared(grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut backends = BackendServiceClient::new(channel);
        let refused = backends
            .start(auth(proto::StartBackendRequest {
                env: "admin".into(),
                runtime: rt.key.clone(),
                transport: "pipe".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
        backends
            .start(auth(proto::StartBackendRequest {
                runtime: rt.key.clone(),
                transport: "pipe".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    });
    assert_eq!(started.runtime, rt.key);
    assert_eq!(started.env, "");
    assert!(same_dir(&eval_prefix(home, &started.id), &rt.prefix));
    home.ok(&["stop", &started.id]);
}
