//! Runtimes at the edges, through the real `beep-host` binary: downloads while the server
//! is down, a default given by path or through a shim, interpreters too old for the
//! backends, broken entries in the runtimes dir, `init` without a reachable download host,
//! and the configuration check of a missing or garbage config file.

// Links, pseudo-terminals and shell-script interpreters: Unix only.
#![cfg(unix)]

#[path = "support/http.rs"]
mod http;
#[path = "support/pbs.rs"]
mod pbs;
#[path = "support/venv.rs"]
mod venv_support;

use http::{Behaviour, FileServer};
use pbs::{Home, fixture, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn setup(behaviour: Behaviour) -> (FileServer, Home, tempfile::TempDir) {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    pbs::mirror_with(
        &dir.path().join("mirror"),
        &[(&fx.targz.name, &fx.targz.path)],
    );
    let catalog = dir.path().join("catalog.json");
    pbs::catalog(&catalog, &[(&fx.version, &fx.targz.name, &fx.targz.sha256)]);
    let server = FileServer::start(dir.path().join("mirror"), behaviour);
    let home = Home::new(catalog, server.url());
    (server, home, dir)
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn assert_fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// The machine's interpreter, canonical (what adopting it records).
fn machine_python() -> PathBuf {
    std::fs::canonicalize(venv_support::machine_python()).unwrap()
}

/// A directory holding only `python3`, a link to the machine's interpreter: as PATH, with
/// HOME elsewhere, discovery finds exactly that one interpreter.
fn lone_python_path(dir: &Path) -> PathBuf {
    let bin = dir.join("only-python");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(machine_python(), bin.join("python3")).unwrap();
    bin
}

fn config_text(home: &Home) -> String {
    std::fs::read_to_string(home.path().join("config/config.toml")).unwrap_or_default()
}

#[test]
fn downloads_retry_with_backoff_while_the_server_is_down() {
    let behaviour = Behaviour {
        refuse_for: Some(Duration::from_millis(2500)),
        ..Behaviour::default()
    };
    let (server, home, _dir) = setup(behaviour);
    let started = Instant::now();
    let out = home.run(&["runtime", "install", &fixture().version]);
    assert_ok(&out);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(home.managed().len(), 1);
    let seen = server.requests();
    let refused = seen.iter().filter(|s| s.path == "(refused)").count();
    assert!(refused >= 3, "{seen:?}");
    // Backoff, not a tight loop: 100 ms doubling gives a handful of attempts in 2.5 s.
    assert!(refused <= 8, "{seen:?}");
}

#[test]
fn downloads_give_up_when_the_retry_budget_runs_out_without_progress() {
    let behaviour = Behaviour {
        refuse_for: Some(Duration::from_secs(120)),
        ..Behaviour::default()
    };
    let (_server, home, _dir) = setup(behaviour);
    let started = Instant::now();
    let out = home
        .command()
        .args(["runtime", "install", &fixture().version])
        .env("BEEP_HOST_DOWNLOAD_RETRY_SECS", "1")
        .output()
        .unwrap();
    let err = assert_fails(&out);
    assert!(err.contains("without progress"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(home.managed().is_empty());
}

#[test]
fn a_default_given_by_path_stays_the_default_where_discovery_does_not_look() {
    // A real CPython prefix outside PATH, pyenv and conda: the fixture archive unpacked.
    let fx = fixture();
    let (_server, home, _dir) = setup(Behaviour::default());
    let prefix = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&fx.targz.path)
        .arg("-C")
        .arg(prefix.path())
        .status()
        .unwrap();
    assert!(status.success());
    let python = prefix.path().join("python/bin/python3");
    let out = home.run(&["runtime", "default", python.to_str().unwrap()]);
    assert_ok(&out);
    let canonical = std::fs::canonicalize(&python).unwrap();
    assert!(
        config_text(&home).contains(canonical.to_str().unwrap()),
        "the path is not in the config: {}",
        config_text(&home)
    );

    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&home.run(&["runtime", "list", "--json"]).stdout).unwrap();
    let default: Vec<_> = list.iter().filter(|r| r["default"] == true).collect();
    assert_eq!(default.len(), 1, "{list:?}");
    assert_eq!(default[0]["python"], canonical.to_str().unwrap());

    let out = home.run(&["config", "--json"]);
    assert_ok(&out);
    let create = home
        .command()
        .args(["venv", "create", "outside"])
        .env("BEEP_HOST_INSTALLER", "uv")
        .env("BEEP_HOST_UV", venv_support::shared_uv())
        .output()
        .unwrap();
    assert_ok(&create);
    let env: serde_json::Value =
        serde_json::from_slice(&home.run(&["venv", "status", "outside", "--json"]).stdout).unwrap();
    assert_eq!(env["healthy"], true, "{env}");
    assert!(
        env["pyvenv_cfg"]["home"]
            .as_str()
            .unwrap()
            .starts_with(prefix.path().to_str().unwrap()),
        "{env}"
    );
}

#[test]
fn a_shim_is_resolved_to_the_interpreter_it_runs_or_refused_with_the_reason() {
    let home = Home::new("/nonexistent".into(), "http://127.0.0.1:9".into());
    let dir = tempfile::tempdir().unwrap();
    let shims = dir.path().join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    let write_script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = shims.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let real = machine_python();
    let shim = write_script("python3", &format!("exec '{}' \"$@\"", real.display()));
    let out = home.run(&["runtime", "default", shim.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains(real.to_str().unwrap()),
        "{}",
        text(&out.stdout)
    );
    let config = config_text(&home);
    assert!(config.contains(real.to_str().unwrap()), "{config}");
    assert!(!config.contains("shims"), "{config}");

    let broken = write_script(
        "python3.99",
        "echo \"pyenv: python3.99: command not found\" >&2; exit 127",
    );
    let err = assert_fails(&home.run(&["runtime", "default", broken.to_str().unwrap()]));
    assert!(err.contains("command not found"), "{err}");
    assert!(err.contains("127"), "{err}");
    // The good default is kept.
    assert_eq!(config_text(&home), config);
}

/// A real interpreter older than 3.8 if the machine has one (pyenv), else a tiny script
/// answering the probe as Python 3.7 would.
fn old_python(dir: &Path) -> PathBuf {
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    let real = pyenv
        .and_then(|root| std::fs::read_dir(root.join("versions")).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/python3"))
        .find(|p| {
            Command::new(p)
                .args([
                    "-c",
                    "import sys; sys.exit(0 if sys.version_info[:2] == (3, 7) else 1)",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if let Some(real) = real {
        return real;
    }
    use std::os::unix::fs::PermissionsExt;
    let fake = dir.join("python3.7");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '3.7.16\\ncpython\\n0\\n%s\\n%s\\n' '{}' '{}'\n",
            fake.display(),
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

#[test]
fn an_interpreter_older_than_3_8_is_flagged_at_default_and_create() {
    let home = Home::new("/nonexistent".into(), "http://127.0.0.1:9".into());
    let dir = tempfile::tempdir().unwrap();
    let old = old_python(dir.path());
    let out = home.run(&["runtime", "default", old.to_str().unwrap()]);
    assert_ok(&out);
    let err = text(&out.stderr);
    assert!(err.contains("older than 3.8"), "{err}");
    assert!(err.contains("backends"), "{err}");
    let checks: Vec<serde_json::Value> =
        serde_json::from_slice(&home.run(&["config", "--json"]).stdout).unwrap();
    let default = checks
        .iter()
        .find(|c| c["name"] == "default runtime")
        .unwrap();
    assert_eq!(default["status"], "warn", "{default}");
    assert!(
        default["message"]
            .as_str()
            .unwrap()
            .contains("older than 3.8"),
        "{default}"
    );

    let out = home
        .command()
        .args(["venv", "create", "old", "--runtime", old.to_str().unwrap()])
        .env("BEEP_HOST_INSTALLER", "uv")
        .env("BEEP_HOST_UV", venv_support::shared_uv())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("older than 3.8"), "{err}");
    assert!(err.contains("`beep-host start`"), "{err}");

    // A current interpreter says nothing of the kind.
    let out = home.run(&["runtime", "default", machine_python().to_str().unwrap()]);
    assert_ok(&out);
    assert!(!text(&out.stderr).contains("older than"));
}

#[test]
fn broken_entries_in_the_runtimes_dir_are_listed_and_removable() {
    let home = Home::new("/nonexistent".into(), "http://127.0.0.1:9".into());
    let runtimes = home.runtimes_dir();
    std::fs::create_dir_all(&runtimes).unwrap();
    let dangling = runtimes.join("cpython-3.11.99-linux-x86_64-gnu");
    std::os::unix::fs::symlink("/nonexistent/runtime", &dangling).unwrap();
    // A link to a real directory without metadata: broken too, and its target is kept.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("keep.txt"), "mine").unwrap();
    let linked = runtimes.join("cpython-3.11.98-linux-x86_64-gnu");
    std::os::unix::fs::symlink(elsewhere.path(), &linked).unwrap();

    let out = home.run(&["runtime", "list", "--json"]);
    assert_ok(&out);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let broken: Vec<_> = list.iter().filter(|r| !r["problem"].is_null()).collect();
    assert_eq!(broken.len(), 2, "{list:?}");
    let dangling_entry = broken
        .iter()
        .find(|r| r["key"] == "cpython-3.11.99-linux-x86_64-gnu")
        .unwrap();
    assert!(
        dangling_entry["problem"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/runtime"),
        "{dangling_entry}"
    );
    let out = home.run(&["runtime", "list"]);
    assert!(
        text(&out.stderr).contains("is broken"),
        "{}",
        text(&out.stderr)
    );

    // Never used for anything.
    let err = assert_fails(&home.run(&["runtime", "default", "cpython-3.11.99-linux-x86_64-gnu"]));
    assert!(err.contains("broken"), "{err}");

    assert_ok(&home.run(&["runtime", "remove", "cpython-3.11.99-linux-x86_64-gnu"]));
    assert_ok(&home.run(&["runtime", "remove", "cpython-3.11.98-linux-x86_64-gnu"]));
    assert!(dangling.symlink_metadata().is_err());
    assert!(linked.symlink_metadata().is_err());
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(
        home.runtime_dir_names().is_empty(),
        "{:?}",
        home.runtime_dir_names()
    );
}

#[test]
fn init_without_a_reachable_download_host_names_the_mirror_and_the_interpreters_found() {
    let (_server, _home, dir) = setup(Behaviour::default());
    let fake_home = tempfile::tempdir().unwrap();
    let path = lone_python_path(fake_home.path());
    let home = Home::new(dir.path().join("catalog.json"), "http://127.0.0.1:9".into());
    let out = home
        .command()
        .args(["init", "--version", &fixture().version])
        .env("BEEP_HOST_DOWNLOAD_RETRY_SECS", "0.3")
        .env("HOME", fake_home.path())
        .env("PATH", &path)
        .env_remove("PYENV_ROOT")
        .env_remove("CONDA_PREFIX")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = assert_fails(&out);
    assert!(err.contains("BEEP_PYTHON_MIRROR"), "{err}");
    assert!(err.contains("mirror = "), "{err}");
    assert!(err.contains("config.toml"), "{err}");
    let real = machine_python();
    assert!(err.contains(real.to_str().unwrap()), "{err}");
    assert!(
        err.contains(&format!("beep-host runtime default {}", real.display())),
        "{err}"
    );
    // Nothing was made the default without asking.
    assert!(!config_text(&home).contains("default_runtime"));
}

#[test]
fn config_says_when_there_is_no_file_and_checks_everything_past_a_bad_one() {
    let (_server, home, _dir) = setup(Behaviour::default());
    let checks = |home: &Home| -> Vec<serde_json::Value> {
        serde_json::from_slice(&home.run(&["config", "--json"]).stdout).unwrap()
    };
    let first = checks(&home);
    let file = first.iter().find(|c| c["name"] == "config file").unwrap();
    assert_eq!(file["status"], "ok");
    let message = file["message"].as_str().unwrap();
    assert!(
        message.contains("no file") && message.contains("defaults"),
        "{message}"
    );
    assert!(!message.contains(" read"), "{message}");

    let config = home.path().join("config/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "\u{0}garbage [[[ = =\n").unwrap();
    let out = home.run(&["config", "--json"]);
    assert!(!out.status.success());
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = all.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in ["config file", "default runtime", "catalog", "mirror"] {
        assert!(names.contains(&name), "{name} not checked: {names:?}");
    }
    let file = all.iter().find(|c| c["name"] == "config file").unwrap();
    assert_eq!(file["status"], "fail");
    assert!(
        file["message"].as_str().unwrap().contains("config.toml"),
        "{file}"
    );

    // One bad setting: reported by name, the good ones still in force.
    std::fs::write(
        &config,
        "installer = \"bogus\"\ncolour = \"blue\"\ndefault_version = \"3.12\"\n",
    )
    .unwrap();
    let all = checks(&home);
    let failed: Vec<&str> = all
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"setting installer"), "{all:?}");
    assert!(failed.contains(&"setting colour"), "{all:?}");
    assert!(all.iter().any(|c| c["name"] == "catalog"), "{all:?}");
}

#[test]
fn remove_refuses_a_runtime_that_environments_and_backends_use_unless_forced() {
    let fx = fixture();
    let (_server, home, _dir) = setup(Behaviour::default());
    assert_ok(&home.run(&["init", "--version", &fx.version]));
    let key = home.managed()[0]["key"].as_str().unwrap().to_string();
    let uv = |args: &[&str]| {
        home.command()
            .args(args)
            .env("BEEP_HOST_INSTALLER", "uv")
            .env("BEEP_HOST_UV", venv_support::shared_uv())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    assert_ok(&uv(&["venv", "create", "built-on-it"]));
    /// Stops every backend of the home when the test ends, passed or not.
    struct StopAll<'a>(&'a Home);
    impl Drop for StopAll<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["stop", "--all"]);
        }
    }
    let _stop = StopAll(&home);
    let out = uv(&["start", "http", "--venv", "built-on-it", "--detach"]);
    assert_ok(&out);
    let ps: Vec<serde_json::Value> =
        serde_json::from_slice(&home.run(&["ps", "--json"]).stdout).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    let id = ps[0]["id"].as_str().unwrap().to_string();

    let err = assert_fails(&home.run(&["runtime", "remove", &key]));
    assert!(err.contains("`built-on-it`"), "{err}");
    assert!(err.contains(&id), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(home.managed().len(), 1, "the runtime was removed");

    let out = home.run(&["runtime", "remove", &key, "--force"]);
    assert_ok(&out);
    let err = text(&out.stderr);
    assert!(
        err.contains("built-on-it") && err.contains("no longer work"),
        "{err}"
    );
    assert!(err.contains(&id), "{err}");
    assert!(home.managed().is_empty());
}

#[test]
fn init_on_a_terminal_offers_to_make_an_interpreter_found_the_default() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};

    let (_server, _home, dir) = setup(Behaviour::default());
    let fake_home = tempfile::tempdir().unwrap();
    let path = lone_python_path(fake_home.path());
    let home = Home::new(dir.path().join("catalog.json"), "http://127.0.0.1:9".into());
    // A real terminal for stdin and stderr: a pseudo-terminal pair.
    let (mut master, mut slave) = (0, 0);
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = home
        .command()
        .args(["init", "--version", &fixture().version])
        .env("BEEP_HOST_DOWNLOAD_RETRY_SECS", "0.3")
        .env("HOME", fake_home.path())
        .env("PATH", &path)
        .env_remove("PYENV_ROOT")
        .env_remove("CONDA_PREFIX")
        .stdin(std::process::Stdio::from(slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(slave.try_clone().unwrap()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(slave);
    let mut terminal = std::fs::File::from(master);
    let mut typing = terminal.try_clone().unwrap();
    let screen = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child has closed its side.
        while let Ok(n) = terminal.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    typing.write_all(b"1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(typing);
    let screen = screen.join().unwrap();
    assert!(out.status.success(), "{screen}\n{}", text(&out.stdout));
    assert!(screen.contains("Make one of them the default?"), "{screen}");
    let real = machine_python();
    assert!(
        text(&out.stdout).contains(real.to_str().unwrap()),
        "{}",
        text(&out.stdout)
    );
    assert!(config_text(&home).contains(real.to_str().unwrap()));
}
