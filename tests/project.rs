//! Projects end to end: `beep.toml` → `lock` → `up` (runtime from a local mirror,
//! environment from the lock with packages from a local wheel folder, backends through
//! the daemon) → `up` again → changes → `down`, with the real binary, uv and Python.

#[path = "support/http.rs"]
mod http;
#[path = "support/pbs.rs"]
mod pbs;
#[path = "support/backend.rs"]
mod support;
#[path = "support/venv.rs"]
mod support_venv;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Home;

/// Wheels `alpha 1.0` (needs `beta`) and `beta 2.0`, written by Python's zipfile.
fn wheels(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"
import base64, hashlib, sys, zipfile
def wheel(out, name, version, deps=()):
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (name, version, "".join(f"Requires-Dist: {d}\n" for d in deps)),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
wheel(sys.argv[1], "alpha", "1.0", ["beta"])
wheel(sys.argv[1], "beta", "2.0")
"#;
    let out = Command::new(support::python())
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A home whose catalog names the test runtime on a local mirror, uv from the shared
/// provision, packages only from a local wheel folder; a project folder beside it.
struct Project {
    home: Home,
    _server: http::FileServer,
    scratch: tempfile::TempDir,
    catalog: PathBuf,
    mirror: String,
    dir: PathBuf,
    wheels: PathBuf,
}

impl Project {
    fn new() -> Self {
        let fx = pbs::fixture();
        let scratch = tempfile::tempdir().unwrap();
        pbs::mirror_with(
            &scratch.path().join("mirror"),
            &[(&fx.targz.name, &fx.targz.path)],
        );
        let catalog = scratch.path().join("catalog.json");
        pbs::catalog(&catalog, &[(&fx.version, &fx.targz.name, &fx.targz.sha256)]);
        let server = http::FileServer::start(scratch.path().join("mirror"), Default::default());
        let wheels_dir = scratch.path().join("wheels");
        wheels(&wheels_dir);
        let dir = scratch.path().join("demo");
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            home: Home::new(),
            mirror: server.url(),
            _server: server,
            catalog,
            dir,
            wheels: wheels_dir,
            scratch,
        }
    }

    fn minor(&self) -> String {
        let v = &pbs::fixture().version;
        v.rsplit_once('.').unwrap().0.to_string()
    }

    fn write(&self, text: &str) {
        std::fs::write(self.dir.join("beep.toml"), text).unwrap();
        std::fs::write(
            self.dir.join("app.py"),
            "def load():\n    return 42\n\ndef boom():\n    raise RuntimeError('no model here')\n",
        )
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.home.command(args);
        cmd.current_dir(&self.dir)
            .env("BEEP_PYTHON_CATALOG", &self.catalog)
            .env("BEEP_PYTHON_MIRROR", &self.mirror)
            .env("BEEP_HOST_INSTALLER", "uv")
            .env("BEEP_HOST_UV", support_venv::shared_uv())
            .env(
                "UV_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache"),
            )
            .env("UV_NO_INDEX", "1")
            .env("UV_FIND_LINKS", &self.wheels)
            .env_remove("VIRTUAL_ENV");
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "beep-host {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "beep-host {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `(name, pid, id)` of the project's live backends, from `ps --json`.
    fn backends(&self) -> Vec<(String, u64, String)> {
        let ps: Vec<Value> = serde_json::from_str(&self.ok(&["ps", "--json"])).unwrap();
        let mut rows: Vec<(String, u64, String)> = ps
            .iter()
            .filter(|b| b["state"] == "ready")
            .map(|b| {
                (
                    b["options"]["project"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    b["pid"].as_u64().unwrap(),
                    b["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    fn env_dir(&self) -> PathBuf {
        self.home.root().join("data/envs/demo")
    }

    fn site_packages(&self) -> PathBuf {
        let lib = self.env_dir().join("lib");
        let py = std::fs::read_dir(&lib).unwrap().next().unwrap().unwrap();
        py.path().join("site-packages")
    }
}

fn manifest(python: &str, requirements: &str, one_env: &str) -> String {
    format!(
        r#"[python]
version = "{python}"

[environment]
name = "demo"
requirements = {requirements}

[[backend]]
name = "one"
transport = "pipe"
restart = "on-failure"
env = {{ GREETING = "{one_env}" }}

[[backend]]
name = "two"
transport = "http"
preload = "app:load"
health = {{ every = "5s", timeout = "2s", failures = 3 }}
limits = {{ memory = "2 GiB" }}
"#
    )
}

#[test]
fn up_converges_and_up_again_changes_nothing() {
    let p = Project::new();
    p.write(&manifest(&p.minor(), r#"["alpha"]"#, "hi"));

    // A fresh home: the runtime comes from the mirror, the env from the lock.
    let out = p.ok(&["up"]);
    assert!(out.contains("Installed runtime cpython-"), "{out}");
    assert!(out.contains("backend one started"), "{out}");
    assert!(out.contains("backend two started"), "{out}");
    let lock = std::fs::read_to_string(p.dir.join("beep.lock")).unwrap();
    assert!(
        lock.contains("name = \"alpha\"") && lock.contains("sha256 = "),
        "{lock}"
    );
    assert!(p.site_packages().join("alpha").is_dir());
    assert!(p.site_packages().join("beta").is_dir());
    let backends = p.backends();
    assert_eq!(
        backends.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    for (_, _, id) in &backends {
        assert_eq!(
            p.ok(&["eval", id, "__import__('alpha').VERSION"]).trim(),
            "\"1.0\""
        );
        // The project folder is the working directory.
        let cwd = p.ok(&["eval", id, "__import__('os').getcwd()"]);
        assert_eq!(
            cwd.trim(),
            format!("{:?}", p.dir.canonicalize().unwrap().to_str().unwrap())
        );
    }
    let greeting = |id: &str| p.ok(&["eval", id, "__import__('os').environ.get('GREETING')"]);
    assert_eq!(greeting(&backends[0].2).trim(), "\"hi\"");
    assert_eq!(greeting(&backends[1].2).trim(), "null");
    // `preload` ran before ready: its value is bound to the function's name.
    assert_eq!(p.ok(&["eval", &backends[1].2, "load"]).trim(), "42");

    // Again: nothing to do, nothing touched.
    let before = support_venv::snapshot(p.home.root());
    let project_before = support_venv::snapshot(&p.dir);
    let began = Instant::now();
    let out = p.ok(&["up"]);
    let took = began.elapsed();
    assert!(out.starts_with("Nothing to do"), "{out}");
    assert!(took < Duration::from_secs(1), "a no-op up took {took:?}");
    assert_eq!(p.backends(), backends);
    assert_eq!(support_venv::snapshot(&p.dir), project_before);
    // Only the daemon's and backends' own state files may move (records, logs).
    let moved: Vec<_> = support_venv::snapshot(p.home.root())
        .into_iter()
        .filter(|f| !before.contains(f))
        .filter(|(path, _, _)| path.starts_with(p.home.root().join("data")))
        .collect();
    assert!(moved.is_empty(), "up without changes touched {moved:?}");
    let status: Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["up_to_date"], true, "{status}");
    assert_eq!(status["environment_in_sync"], true);
    assert_eq!(status["backends"][1]["healthy"], true, "{status}");
    assert_eq!(status["backends"][1]["memory_limit"], 2u64 << 30);
    assert!(status["backends"][1]["rss_bytes"].as_u64().unwrap() > 0);

    // One backend's env changes: only it restarts.
    p.write(&manifest(&p.minor(), r#"["alpha"]"#, "hello"));
    let status: Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["up_to_date"], false, "{status}");
    let out = p.ok(&["up"]);
    assert!(out.contains("backend one restarted"), "{out}");
    assert!(out.contains("backend two unchanged"), "{out}");
    let after = p.backends();
    assert_ne!(after[0].1, backends[0].1, "one has a new process");
    assert_eq!(after[1], backends[1], "two is the same process");
    assert_eq!(greeting(&after[0].2).trim(), "\"hello\"");

    // A requirement removed: the packages go.
    p.write(&manifest(&p.minor(), "[]", "hello"));
    let out = p.ok(&["up"]);
    assert!(out.contains("Synced environment"), "{out}");
    assert!(!p.site_packages().join("alpha").exists());
    assert!(!p.site_packages().join("beta").exists());
    let id = &p.backends()[0].2;
    let failed = p.run(&["eval", id, "__import__('alpha')"]);
    assert!(!failed.status.success());

    // A backend no longer declared is stopped; `down` stops the rest.
    let only_one = manifest(&p.minor(), "[]", "hello");
    let only_one = &only_one[..only_one.find("[[backend]]\nname = \"two\"").unwrap()];
    p.write(only_one);
    let out = p.ok(&["up"]);
    assert!(out.contains("backend two stopped"), "{out}");
    assert!(out.contains("backend one unchanged"), "{out}");
    let out = p.ok(&["down"]);
    assert!(out.contains("backend one stopped"), "{out}");
    assert!(p.backends().is_empty());
    drop(p.scratch);
}

#[test]
fn bad_manifests_say_where_and_change_nothing() {
    let p = Project::new();
    let good = manifest(&p.minor(), r#"["alpha"]"#, "hi");
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("health =", "helth ="),
            "beep.toml:18: unknown key `helth` in [[backend]] \"two\"",
        ),
        (
            good.replacen(&format!("\"{}\"", p.minor()), "\"three\"", 1),
            "beep.toml:2: bad value `three` for `version` in [python]",
        ),
        (
            good.replace("every = \"5s\"", "every = \"5 sec\""),
            "beep.toml:18: bad value `5 sec` for `every`",
        ),
        (
            good.replace("\"2 GiB\"", "\"2 gigs\""),
            "beep.toml:19: bad value `2 gigs` for `memory`",
        ),
        (
            good.replace("name = \"two\"", "name = \"one\""),
            "beep.toml:15: two backends are named `one`",
        ),
        (
            good.replace("transport = \"http\"", "transport = \"tcp\""),
            "beep.toml:16: bad value `tcp` for `transport`",
        ),
        (
            good.replace("\"on-failure\"", "\"always\""),
            "beep.toml:11: bad value `always` for `restart`",
        ),
        (
            good.replace("[environment]", "[environment\n"),
            "beep.toml:4: ",
        ),
    ];
    for (text, expected) in cases {
        p.write(&text);
        for verb in ["up", "lock", "status"] {
            let err = p.fails(&[verb]);
            assert!(
                err.contains(expected),
                "{verb}: expected {expected:?} in:\n{err}"
            );
        }
        // Nothing started, nothing written.
        assert!(!p.dir.join("beep.lock").exists());
        assert!(!p.home.root().join("data/envs").exists());
        assert!(!p.home.root().join("data/runtimes").exists());
        assert_eq!(p.home.daemon_pid(), None);
    }
}

#[test]
fn lock_is_reproducible() {
    let p = Project::new();
    p.write(&manifest(&p.minor(), r#"["alpha"]"#, "hi"));
    let out = p.ok(&["lock"]);
    assert!(out.contains("Locked 2 packages"), "{out}");
    let first = std::fs::read(p.dir.join("beep.lock")).unwrap();
    let modified = std::fs::metadata(p.dir.join("beep.lock"))
        .unwrap()
        .modified()
        .unwrap();
    // Unchanged bytes are not rewritten.
    p.ok(&["lock"]);
    assert_eq!(
        std::fs::metadata(p.dir.join("beep.lock"))
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );
    std::fs::remove_file(p.dir.join("beep.lock")).unwrap();
    p.ok(&["lock"]);
    let second = std::fs::read(p.dir.join("beep.lock")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
    let text = String::from_utf8(first).unwrap();
    let lock: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(lock["lock-version"].as_str(), Some("1.0"));
    let runtime = &lock["tool"]["beep"]["runtime"];
    let fx = pbs::fixture();
    assert_eq!(runtime["version"].as_str(), Some(fx.version.as_str()));
    assert_eq!(runtime["sha256"].as_str(), Some(fx.targz.sha256.as_str()));
    assert!(
        runtime["url"]
            .as_str()
            .unwrap()
            .starts_with(pbs::GITHUB_PREFIX)
    );
    assert!(runtime["key"].as_str().unwrap().starts_with("cpython-"));
    for package in lock["packages"].as_array().unwrap() {
        let wheel = &package["wheels"][0];
        assert_eq!(wheel["hashes"]["sha256"].as_str().unwrap().len(), 64);
    }
    // No command line, no temp path, no time.
    assert!(!text.contains("uv pip compile") && !text.contains("requirements.in"));
}

#[test]
fn venv_create_is_in_process_and_python_accepts_it() {
    let p = Project::new();
    let python = support::python().to_str().unwrap().to_string();
    p.ok(&["runtime", "default", &python]);
    let out = p.ok(&["venv", "create", "inproc", "--json"]);
    let env: Value = serde_json::from_str(&out).unwrap();
    let dir = PathBuf::from(env["path"].as_str().unwrap());
    let cfg = std::fs::read_to_string(dir.join("pyvenv.cfg")).unwrap();
    // `uv venv` writes `uv = <version>`; the host's own layout does not.
    assert!(!cfg.contains("\nuv = "), "{cfg}");
    assert!(
        cfg.contains("include-system-site-packages = false"),
        "{cfg}"
    );
    let activate = std::fs::read_to_string(dir.join("bin/activate")).unwrap();
    assert!(activate.contains(dir.to_str().unwrap()), "{activate}");
    assert!(!activate.contains("__VENV_"), "{activate}");
    let check = Command::new(dir.join("bin/python"))
        .args([
            "-c",
            "import sys, site; print(sys.prefix != sys.base_prefix, sys.prefix, site.getsitepackages()[0])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(text.starts_with("True "), "{text} {check:?}");
    assert!(text.contains(dir.to_str().unwrap()), "{text}");
    // uv installs into it (no pip inside).
    p.ok(&["pkg", "install", "inproc", "alpha"]);
    let imported = Command::new(dir.join("bin/python"))
        .args(["-c", "import alpha, beta; print(alpha.VERSION)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&imported.stdout).trim(), "1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_api_up_status_down() {
    use std::io::{BufRead, BufReader};
    let p = Project::new();
    let text = manifest(&p.minor(), r#"["alpha"]"#, "hi");
    p.write(&text[..text.find("[[backend]]\nname = \"two\"").unwrap()]);
    let mut serve = {
        let mut cmd = p
            .home
            .command(&["serve", "--http", "127.0.0.1:0", "--no-grpc"]);
        cmd.env("BEEP_PYTHON_CATALOG", &p.catalog)
            .env("BEEP_PYTHON_MIRROR", &p.mirror)
            .env("BEEP_HOST_INSTALLER", "uv")
            .env("BEEP_HOST_UV", support_venv::shared_uv())
            .env(
                "UV_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache"),
            )
            .env("UV_NO_INDEX", "1")
            .env("UV_FIND_LINKS", &p.wheels)
            .stdout(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let record: Value =
        serde_json::from_slice(&std::fs::read(ready["record"].as_str().unwrap()).unwrap()).unwrap();
    let token = record["token"].as_str().unwrap().to_string();
    let base = format!("http://{}", ready["http"].as_str().unwrap());
    let client = reqwest::Client::new();
    let dir = p.dir.to_str().unwrap().to_string();

    let up = client
        .post(format!("{base}/projects/up"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "dir": dir }))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    let up: Value = up.json().await.unwrap();
    assert_eq!(up["backends"][0]["action"], "started", "{up}");
    assert_eq!(up["environment_created"], true, "{up}");

    let status: Value = client
        .get(format!("{base}/projects/status"))
        .query(&[("dir", &dir)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["up_to_date"], true, "{status}");
    assert_eq!(status["backends"][0]["state"], "ready", "{status}");

    let down: Value = client
        .post(format!("{base}/projects/down"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "dir": dir }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(down[0]["action"], "stopped", "{down}");

    // A bad beep.toml is a 400 that names the line.
    p.write("[python]\nversion = \"3.11\"\nhelth = 1\n");
    let bad = client
        .post(format!("{base}/projects/up"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "dir": dir }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("beep.toml:3: unknown key `helth`"),
        "{bad}"
    );

    serve.kill().unwrap();
    serve.wait().unwrap();
}

#[test]
fn a_preload_that_raises_fails_up_with_its_traceback() {
    let p = Project::new();
    let text = manifest(&p.minor(), "[]", "hi").replace("app:load", "app:boom");
    p.write(&text);
    let err = p.fails(&["up"]);
    assert!(err.contains("Failed to start backend `two`"), "{err}");
    assert!(err.contains("RuntimeError: no model here"), "{err}");
    assert!(
        err.contains("app.py"),
        "the traceback names the file: {err}"
    );
    // What this `up` created is undone, and the error says so.
    assert!(err.contains("undone"), "{err}");
    assert!(err.contains("stopped backend `one`"), "{err}");
    assert!(err.contains("deleted environment `demo`"), "{err}");
    assert!(err.contains("removed runtime `cpython-"), "{err}");
    assert!(err.contains("removed the new `beep.lock`"), "{err}");
    assert!(
        !p.dir.join("beep.lock").exists(),
        "the lock it wrote is gone"
    );
    let ps: Vec<Value> = serde_json::from_str(&p.ok(&["ps", "--json"])).unwrap();
    assert!(ps.is_empty(), "no backend runs or is recorded: {ps:?}");
    assert!(!p.env_dir().exists(), "the environment is deleted");
    let runtimes = p.home.root().join("data/runtimes");
    let left: Vec<_> = std::fs::read_dir(&runtimes)
        .map(|d| {
            d.map(|e| e.unwrap().file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "the runtime is removed: {left:?}");
    let status: Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["up_to_date"], false, "{status}");
}

#[test]
fn a_changed_backend_whose_preload_raises_leaves_the_old_one_running() {
    let p = Project::new();
    let good = manifest(&p.minor(), "[]", "hi");
    p.write(&good);
    p.ok(&["up"]);
    let before = p.backends();
    let two = before.iter().find(|b| b.0 == "two").unwrap().clone();

    // The new declaration's preload raises: `up` fails, the old run is untouched.
    p.write(&good.replace("app:load", "app:boom"));
    let err = p.fails(&["up"]);
    assert!(err.contains("Failed to start backend `two`"), "{err}");
    assert!(err.contains("RuntimeError: no model here"), "{err}");
    assert!(!err.contains("deleted environment"), "{err}");
    assert!(!err.contains("beep.lock"), "the lock is unchanged: {err}");
    assert_eq!(p.backends(), before, "the same runs, the same pids");
    assert_eq!(p.ok(&["eval", &two.2, "load"]).trim(), "42");
    assert_eq!(
        p.ok(&["eval", &two.2, "__import__('os').getpid()"]).trim(),
        two.1.to_string()
    );
    let ps: Vec<Value> = serde_json::from_str(&p.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps.len(), 2, "the failed run is not kept: {ps:?}");
    let status: Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["up_to_date"], false, "{status}");
    assert_eq!(status["backends"][1]["pid"], two.1, "{status}");

    // Back to the declaration that runs: nothing to do (the fingerprint tells).
    p.write(&good);
    assert!(p.ok(&["up"]).starts_with("Nothing to do"));
    assert_eq!(p.backends(), before);

    // Another good preload: `two` is replaced once, by a new process.
    p.write(&good.replace("app:load", "app:load_again"));
    std::fs::write(p.dir.join("app.py"), "def load_again():\n    return 42\n").unwrap();
    let out = p.ok(&["up"]);
    assert_eq!(out.matches("backend two restarted").count(), 1, "{out}");
    assert!(out.contains("backend one unchanged"), "{out}");
    let after = p.backends();
    assert_eq!(after.len(), 2, "exactly one run each: {after:?}");
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1].1, two.1, "two has a new process");
    assert_eq!(p.ok(&["eval", &after[1].2, "load_again"]).trim(), "42");
    let status: Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["up_to_date"], true, "{status}");
    assert!(p.ok(&["up"]).starts_with("Nothing to do"));
}

#[test]
fn two_ups_at_once_start_each_backend_once() {
    let p = Project::new();
    p.write(&manifest(&p.minor(), r#"["alpha"]"#, "hi"));
    let spawn = || {
        let mut cmd = p.home.command(&["up"]);
        cmd.current_dir(&p.dir)
            .env("BEEP_PYTHON_CATALOG", &p.catalog)
            .env("BEEP_PYTHON_MIRROR", &p.mirror)
            .env("BEEP_HOST_INSTALLER", "uv")
            .env("BEEP_HOST_UV", support_venv::shared_uv())
            .env(
                "UV_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache"),
            )
            .env("UV_NO_INDEX", "1")
            .env("UV_FIND_LINKS", &p.wheels)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let ps: Vec<Value> = serde_json::from_str(&p.ok(&["ps", "--json"])).unwrap();
    let live: Vec<&Value> = ps.iter().filter(|b| b["state"] == "ready").collect();
    assert_eq!(live.len(), 2, "{ps:?}");
    assert!(p.ok(&["up"]).starts_with("Nothing to do"));
}
