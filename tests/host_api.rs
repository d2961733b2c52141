//! The host API against a real `beep-host serve`: every HTTP route and gRPC call, with
//! real environments created and deleted on disk, and the security refusals.

#[path = "support/http.rs"]
mod http;
#[path = "support/pbs.rs"]
mod pbs;
#[path = "support/venv.rs"]
mod support_venv;

use beep_host::host::grpc::proto;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use support_venv::{Home, Mode, snapshot};

/// A running `beep-host serve` in a temp home (uv installer, machine Python as default).
struct Served {
    home: Home,
    child: Child,
    http: String,
    grpc: String,
    token: String,
}

impl Served {
    fn start(extra_env: &[(&str, &str)]) -> Self {
        let home = Home::new(Mode::Uv);
        let mut command = home.command(&["serve"]);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        assert_eq!(ready["event"], "ready");
        let record_path = PathBuf::from(ready["record"].as_str().unwrap());
        let record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&record_path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "host.json must be private");
        }
        let token = record["token"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 64, "a 256-bit token");
        Self {
            http: format!("http://{}", ready["http"].as_str().unwrap()),
            grpc: format!("http://{}", ready["grpc"].as_str().unwrap()),
            token,
            home,
            child,
        }
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client()
            .request(method, format!("{}{path}", self.http))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn grpc_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    fn auth<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    /// A raw HTTP request, so headers are exactly what the test says.
    fn raw(&self, request: &str) -> (u16, String) {
        let addr = self.http.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, out)
    }

    fn port(&self) -> &str {
        self.http.rsplit(':').next().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM)
        };
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_route_works_on_real_environments() {
    let served = Served::start(&[]);
    let envs = served.home.envs();

    let (status, created) = served
        .post(
            "/venv/create",
            json!({"name": "api1", "providerName": "openai", "modelId": "m1", "packages": ["six"]}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["success"], true);
    assert_eq!(
        Path::new(created["path"].as_str().unwrap()),
        envs.join("api1")
    );
    assert!(envs.join("api1/pyvenv.cfg").is_file());

    let (status, list) = served.get("/venv/list").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api1"]);
    assert_eq!(list[0]["provider"], "openai");
    assert_eq!(list[0]["model_id"], "m1");

    let (status, detail) = served.get("/venv/api1").await;
    assert_eq!(status, 200, "{detail}");
    let has = |d: &Value, name: &str| {
        d["installed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == name)
    };
    assert!(has(&detail, "six"), "{detail}");

    let (status, installed) = served
        .post("/venv/api1/packages", json!({"requirements": ["idna"]}))
        .await;
    assert_eq!(status, 200, "{installed}");
    let (_, detail) = served.get("/venv/api1").await;
    assert!(has(&detail, "idna"), "{detail}");

    let (status, runtimes) = served.get("/runtimes").await;
    assert_eq!(status, 200);
    assert!(
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["default"] == true),
        "{runtimes}"
    );

    // A pipe backend in the environment, started, listed and stopped through the API.
    let (status, backend) = served
        .post("/backends", json!({"env": "api1", "transport": "pipe"}))
        .await;
    assert_eq!(status, 201, "{backend}");
    assert_eq!(backend["state"], "ready");
    let pid = backend["pid"].as_u64().unwrap() as u32;
    let id = backend["id"].as_str().unwrap().to_string();
    let (_, backends) = served.get("/backends").await;
    assert!(
        backends
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == id.as_str()),
        "{backends}"
    );
    // An environment with a running backend is not deleted without force.
    let (status, err) = served.delete("/venv/api1").await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["code"], "conflict");
    assert!(envs.join("api1").is_dir());
    let (status, stopped) = served.delete(&format!("/backends/{id}")).await;
    assert_eq!(status, 200, "{stopped}");
    assert!(!process_exists(pid), "backend process still alive");
    let (status, _) = served.delete(&format!("/backends/{id}")).await;
    assert_eq!(status, 404);

    let (status, deleted) = served.delete("/venv/api1").await;
    assert_eq!(status, 200, "{deleted}");
    assert!(!envs.join("api1").exists());
    let (status, err) = served.get("/venv/api1").await;
    assert_eq!(status, 404);
    assert_eq!(err["code"], "not_found");

    let (status, doc) = served.get("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/venv/create",
        "/venv/list",
        "/venv/{name}",
        "/venv/{name}/packages",
        "/runtimes",
        "/runtimes/install",
        "/backends",
        "/backends/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_install_streams_progress_events() {
    let fx = pbs::fixture();
    let dir = tempfile::tempdir().unwrap();
    pbs::mirror_with(
        &dir.path().join("mirror"),
        &[(&fx.targz.name, &fx.targz.path)],
    );
    let catalog = dir.path().join("catalog.json");
    pbs::catalog(&catalog, &[(&fx.version, &fx.targz.name, &fx.targz.sha256)]);
    let server = http::FileServer::start(dir.path().join("mirror"), http::Behaviour::default());
    let served = Served::start(&[
        ("BEEP_PYTHON_CATALOG", catalog.to_str().unwrap()),
        ("BEEP_PYTHON_MIRROR", &server.url()),
    ]);

    let response = served
        .client()
        .post(format!("{}/runtimes/install", served.http))
        .bearer_auth(&served.token)
        .json(&json!({"version": "3.11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event, serde_json::from_str(data).unwrap()))
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|(e, d)| *e == "progress" && d["phase"] == "download"),
        "{body}"
    );
    assert!(
        events
            .iter()
            .any(|(e, d)| *e == "progress" && d["phase"] == "extract"),
        "{body}"
    );
    let (last, done) = events.last().unwrap();
    assert_eq!(*last, "done", "{body}");
    assert_eq!(done["runtime"]["version"], fx.version.as_str());
    let (_, runtimes) = served.get("/runtimes").await;
    assert!(
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "managed"),
        "{runtimes}"
    );

    let (status, err) = served
        .post("/runtimes/install", json!({"version": "3.99"}))
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = served
        .post("/runtimes/install", json!({"version": "../x"}))
        .await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_call_works_and_needs_the_token() {
    use proto::backend_service_client::BackendServiceClient;
    use proto::venv_service_client::VenvServiceClient;
    let served = Served::start(&[]);
    let channel = served.grpc_channel().await;
    let mut venvs = VenvServiceClient::new(channel.clone());
    let mut backends = BackendServiceClient::new(channel);

    let created = venvs
        .create_environment(served.auth(proto::CreateEnvRequest {
            name: "g1".into(),
            provider_name: "p".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(created.success);
    assert!(Path::new(&created.path).join("pyvenv.cfg").is_file());
    let list = venvs
        .list_environments(served.auth(proto::ListEnvRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.environments
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["g1"]
    );
    assert_eq!(list.environments[0].provider, "p");
    let installed = venvs
        .install_packages(served.auth(proto::InstallPackagesRequest {
            name: "g1".into(),
            requirements: vec!["six".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(installed.success);
    let env = venvs
        .get_environment(served.auth(proto::GetEnvRequest { name: "g1".into() }))
        .await
        .unwrap()
        .into_inner();
    assert!(env.packages >= 1, "{env:?}");

    let started = backends
        .start(served.auth(proto::StartBackendRequest {
            env: "g1".into(),
            transport: "http".into(),
            restart: String::new(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, "ready");
    assert!(started.pid > 0);
    let listed = backends
        .list(served.auth(proto::ListBackendsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.backends.iter().any(|b| b.id == started.id));
    backends
        .stop(served.auth(proto::StopBackendRequest {
            id: started.id.clone(),
        }))
        .await
        .unwrap();
    assert!(!process_exists(started.pid));

    let bad = venvs
        .get_environment(served.auth(proto::GetEnvRequest {
            name: "../etc".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let missing = venvs
        .get_environment(served.auth(proto::GetEnvRequest {
            name: "nope".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let taken = venvs
        .create_environment(served.auth(proto::CreateEnvRequest {
            name: "g1".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists, "{taken:?}");

    // Without the token, or with a wrong one: refused, and nothing changes.
    let before = snapshot(&served.home.envs());
    let refused = venvs
        .delete_environment(tonic::Request::new(proto::DeleteEnvRequest {
            name: "g1".into(),
            force: true,
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(proto::DeleteEnvRequest {
        name: "g1".into(),
        force: true,
    });
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        venvs.delete_environment(wrong).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(snapshot(&served.home.envs()), before);

    venvs
        .delete_environment(served.auth(proto::DeleteEnvRequest {
            name: "g1".into(),
            force: false,
        }))
        .await
        .unwrap();
    assert!(!served.home.envs().join("g1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_change_nothing() {
    let served = Served::start(&[]);
    let (status, _) = served.post("/venv/create", json!({"name": "keep"})).await;
    assert_eq!(status, 200);
    let envs = served.home.envs();
    let before = snapshot(&envs);
    let port = served.port();
    let token = &served.token;
    let body = r#"{"name":"evil"}"#;
    // Every route that changes something is behind the same guard: environments, projects
    // and bundles.
    for route in ["/venv/create", "/projects/up", "/projects/down", "/bundles"] {
        let post = |host: &str, extra: &str, auth: &str| {
            format!(
                "POST {route} HTTP/1.1\r\nHost: {host}\r\n{auth}{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let good_auth = format!("Authorization: Bearer {token}\r\n");
        let local = format!("127.0.0.1:{port}");
        let cases = [
            ("no token", post(&local, "", ""), 401, "unauthorized"),
            (
                "wrong token",
                post(&local, "", "Authorization: Bearer 00\r\n"),
                401,
                "unauthorized",
            ),
            (
                "foreign Host",
                post(&format!("evil.example:{port}"), "", &good_auth),
                403,
                "forbidden",
            ),
            (
                "Host without the port",
                post("localhost", "", &good_auth),
                403,
                "forbidden",
            ),
            (
                "an Origin header",
                post(&local, "Origin: http://127.0.0.1\r\n", &good_auth),
                403,
                "forbidden",
            ),
        ];
        for (what, request, want, code) in cases {
            let (status, out) = served.raw(&request);
            assert_eq!(status, want, "{route} {what}: {out}");
            assert!(
                out.contains(&format!("\"code\":\"{code}\"")),
                "{route} {what}: {out}"
            );
        }
    }
    // Bad names and path tricks.
    for name in ["..", "a/b", "/abs", "", "a b", "con", "nul", "com1"] {
        let (status, err) = served.post("/venv/create", json!({"name": name})).await;
        assert_eq!(status, 400, "{name:?}: {err}");
        assert_eq!(err["code"], "invalid");
    }
    for path in ["/venv/..%2F..%2Fetc", "/venv/..%2Fkeep", "/venv/%2Ftmp"] {
        let (status, err) = served.delete(path).await;
        assert!(status == 400 || status == 404, "{path}: {status} {err}");
        assert!(
            err["code"] == "invalid" || err["code"] == "not_found",
            "{path}: {err}"
        );
    }
    let (status, err) = served
        .call(reqwest::Method::POST, "/venv/create", None)
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = served
        .post("/venv/create", json!({"name": "x", "unknown": 1}))
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = served
        .post("/backends", json!({"env": "keep", "transport": "smoke"}))
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = served
        .post("/backends", json!({"env": "missing", "transport": "pipe"}))
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = served.get("/no/such/route").await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(
        snapshot(&envs),
        before,
        "a refused request changed the environments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_of_one_name_one_wins_the_other_gets_409() {
    let served = Served::start(&[]);
    let body = json!({"name": "race"});
    let (a, b) = tokio::join!(
        served.post("/venv/create", body.clone()),
        served.post("/venv/create", body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let loser = if a.0 == 409 { a.1 } else { b.1 };
    assert_eq!(loser["code"], "conflict");
    let (_, list) = served.get("/venv/list").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// The backend's record holds its token (mode 0600, for the user only).
fn backend_token(served: &Served, id: &str) -> String {
    let record = served.home.path().join(format!("state/backends/{id}.json"));
    let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    record["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_in_a_backend_manages_environments_through_the_host() {
    let served = Served::start(&[]);
    assert_eq!(
        served
            .post("/venv/create", json!({"name": "pyhost"}))
            .await
            .0,
        200
    );
    let (status, backend) = served
        .post("/backends", json!({"env": "pyhost", "transport": "http"}))
        .await;
    assert_eq!(status, 201, "{backend}");
    let address = backend["address"].as_str().unwrap().to_string();
    let token = backend_token(&served, backend["id"].as_str().unwrap());
    let client = reqwest::Client::new();
    let exec = |code: &str| {
        let request = client
            .post(format!("http://{address}/v1/exec"))
            .bearer_auth(&token)
            .json(&json!({ "code": code }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // Python code inside the backend creates an environment through `beep_backend.host`.
    let answer = exec("from beep_backend import host\nr = host.venv.create('made-by-python', provider_name='py')\nr['success']").await;
    assert_eq!(answer["value"], true, "{answer}");
    let listed = served.home.json(&["venv", "list", "--json"]);
    let made = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "made-by-python");
    assert_eq!(
        made.expect("listed by `beep-host venv list`")["provider"],
        "py"
    );
    let answer = exec("sorted(e['name'] for e in host.venv.list())").await;
    assert_eq!(
        answer["value"],
        json!(["made-by-python", "pyhost"]),
        "{answer}"
    );
    let answer = exec("[b['env'] for b in host.backends.list()]").await;
    assert_eq!(answer["value"], json!(["pyhost"]), "{answer}");
    // A bad name raises HostError with the host's code; nothing is created.
    let answer = exec("host.venv.create('../evil')").await;
    assert_eq!(
        answer["error"]["type"], "beep_backend.host.HostError",
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid"),
        "{answer}"
    );

    // The backend's own HTTP transport forwards environment routes to the host.
    let forwarded = client
        .get(format!("http://{address}/venv/list"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);
    let list: Value = forwarded.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let unauthorized = client
        .get(format!("http://{address}/venv/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthorized.status(),
        401,
        "forwarded routes need the backend token too"
    );
    let created = client
        .post(format!("http://{address}/venv/create"))
        .bearer_auth(&token)
        .json(&json!({"name": "via-backend"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert!(served.home.envs().join("via-backend/pyvenv.cfg").is_file());
    for name in ["via-backend", "made-by-python"] {
        let deleted = client
            .delete(format!("http://{address}/venv/{name}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200, "{name}");
        assert!(!served.home.envs().join(name).exists());
    }
    let traversal = client
        .delete(format!("http://{address}/venv/..%2Fpyhost"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 400);
    assert!(served.home.envs().join("pyhost").is_dir());
}

/// Does a process with this pid exist (zombies included)?
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    // SAFETY: kill(2) with signal 0 only checks.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    #[cfg(not(unix))]
    let exists = {
        let pid = sysinfo::Pid::from_u32(pid);
        let mut system = sysinfo::System::new();
        system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false);
        system.process(pid).is_some()
    };
    exists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive_on_http_and_grpc() {
    use proto::venv_service_client::VenvServiceClient;
    let served = Served::start(&[]);
    let mut venvs = VenvServiceClient::new(served.grpc_channel().await);
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let authorization = format!("{scheme} {}", served.token);
        let response = served
            .client()
            .get(format!("{}/venv/list", served.http))
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "HTTP, {scheme}");
        let mut request = tonic::Request::new(proto::ListEnvRequest {});
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        venvs
            .list_environments(request)
            .await
            .unwrap_or_else(|e| panic!("gRPC, {scheme}: {e:?}"));
    }
    // Another scheme, or the token alone, is still refused.
    for authorization in [
        format!("Basic {}", served.token),
        served.token.clone(),
        format!("Bearer{}", served.token),
    ] {
        let response = served
            .client()
            .get(format!("{}/venv/list", served.http))
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{authorization}");
        let mut request = tonic::Request::new(proto::ListEnvRequest {});
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        let refused = venvs.list_environments(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_with_the_error_shape() {
    let served = Served::start(&[]);
    let envs = served.home.envs();
    let before = snapshot(&envs);
    // A raw request, read while it is written: the server answers before it has read the
    // body and then closes, and a client that only reads once it has written everything
    // (reqwest) sees the broken pipe instead of the answer.
    let body = format!(
        r#"{{"name": "big", "packages": ["{}"]}}"#,
        "x".repeat(14 << 20)
    );
    let head = format!(
        "POST /venv/create HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        served.port(),
        served.token,
        body.len()
    );
    let mut stream =
        std::net::TcpStream::connect(served.http.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(body.as_bytes());
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, json) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let err: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(err["code"], "invalid", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("too large"),
        "{err}"
    );
    drop(stream);
    sending.join().unwrap();
    assert_eq!(snapshot(&envs), before);
    // The server is fine afterwards.
    let (status, _) = served.get("/venv/list").await;
    assert_eq!(status, 200);
}
