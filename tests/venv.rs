//! Environments and packages, through the real `beep-host` binary and real Python,
//! with uv and with pip.

#[path = "support/venv.rs"]
mod support_venv;

use std::time::{Duration, Instant};

use support_venv::{Home, Mode, snapshot};

fn has(packages: &[(String, String)], name: &str) -> bool {
    packages.iter().any(|(n, _)| n == name)
}

/// The whole life of an environment with one installer.
fn lifecycle(mode: Mode, installer: &str) {
    let home = Home::new(mode);
    let requirements = home.path().join("requirements.txt");
    std::fs::write(&requirements, "idna\n").unwrap();

    let created = home.json(&[
        "venv",
        "create",
        "work",
        "--provider",
        "openai",
        "--model-id",
        "gpt-x",
        "--packages",
        "six",
        "--json",
    ]);
    assert_eq!(created["installer"], installer);
    let err = home.fails(&["venv", "create", "work"]);
    assert!(err.contains("already exists"), "{err}");

    let list = home.list();
    assert_eq!(list.len(), 1);
    let env = &list[0];
    assert_eq!(env["name"], "work");
    assert_eq!(
        env["path"].as_str().unwrap(),
        home.envs().join("work").to_str().unwrap()
    );
    let version = env["python_version"].as_str().unwrap();
    assert!(version.starts_with("3."), "{version}");
    assert!(env["runtime"].as_str().unwrap().starts_with("adopted-"));
    assert!(env["packages"].as_u64().unwrap() >= 1);
    assert!(env["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(env["healthy"], true);
    assert_eq!(env["provider"], "openai");
    assert_eq!(env["model_id"], "gpt-x");

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.envs().join("work").join("beep-env.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["provider"], "openai");
    assert_eq!(meta["model_id"], "gpt-x");
    assert!(meta["created"].is_string());
    assert_eq!(meta["runtime"], env["runtime"]);

    // Install from a requirements file; status shows both with versions.
    home.ok(&[
        "pkg",
        "install",
        "work",
        "-r",
        requirements.to_str().unwrap(),
    ]);
    let status = home.json(&["venv", "status", "work", "--json"]);
    let installed: Vec<String> = status["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(!p["version"].as_str().unwrap().is_empty());
            p["name"].as_str().unwrap().to_lowercase()
        })
        .collect();
    assert!(installed.contains(&"six".to_string()), "{installed:?}");
    assert!(installed.contains(&"idna".to_string()), "{installed:?}");
    assert_eq!(
        status["packages"].as_u64().unwrap() as usize,
        installed.len()
    );
    assert!(status["size_bytes"].as_u64().unwrap() > 10_000);
    assert!(status["pyvenv_cfg"]["home"].is_string());
    assert_eq!(status["backends"], serde_json::json!([]));
    assert_eq!(status["healthy"], true);

    // The packages really work in the environment's interpreter.
    let python = status["python"].as_str().unwrap();
    let out = std::process::Command::new(python)
        .args(["-c", "import six, idna; print('ok')"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    home.ok(&["pkg", "remove", "work", "six"]);
    let packages = home.packages("work");
    assert!(
        !has(&packages, "six") && has(&packages, "idna"),
        "{packages:?}"
    );

    // A requirement the index does not have: the installer's message, nothing changed.
    let before = home.packages("work");
    let err = home.fails(&["pkg", "install", "work", "beep-host-no-such-package-x7"]);
    assert!(
        err.contains("Failed to install `beep-host-no-such-package-x7`"),
        "{err}"
    );
    let installer_says = match mode {
        Mode::Pip => "No matching distribution found",
        _ => "not found in the package registry",
    };
    assert!(err.contains(installer_says), "{err}");
    assert_eq!(home.packages("work"), before);

    home.ok(&["venv", "delete", "work", "--yes"]);
    assert!(home.list().is_empty());
    assert!(!home.envs().join("work").exists());
    let leftovers: Vec<_> = std::fs::read_dir(home.envs()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn lifecycle_with_uv() {
    lifecycle(Mode::Uv, "uv");
}

#[test]
fn lifecycle_with_pip() {
    lifecycle(Mode::Pip, "pip");
}

#[test]
fn uv_is_provisioned_into_the_data_dir() {
    let home = Home::new(Mode::Auto);
    let requirements = home.path().join("requirements.txt");
    std::fs::write(&requirements, "idna\n").unwrap();
    let env = home.json(&[
        "venv",
        "create",
        "auto",
        "--requirements",
        requirements.to_str().unwrap(),
        "--json",
    ]);
    assert!(has(&home.packages("auto"), "idna"));
    assert_eq!(env["installer"], "uv");
    let uv = home.path().join("data/tools/uv/bin/uv");
    assert!(uv.is_file(), "uv was not provisioned at {}", uv.display());
    // Provisioned once: the next operation uses it without pip.
    let out = home.run(&["pkg", "install", "auto", "six"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Provisioning uv"));
}

#[test]
fn bad_names_are_refused_before_any_file_is_touched() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "keep"]);
    let before = snapshot(home.path());
    let bad = [
        "",
        "..",
        ".",
        "a/b",
        "/abs",
        "../escape",
        "a b",
        " ",
        "con",
        "nul",
        "com1",
        "NUL",
        "lpt1.txt",
        ".trash-keep-00",
        "a\\b",
        "a.",
        "keep.",
        "é",
    ];
    for name in bad {
        for args in [
            vec!["venv", "create", name],
            vec!["venv", "status", name],
            vec!["venv", "delete", name, "--yes"],
            vec!["pkg", "install", name, "six"],
            vec!["pkg", "remove", name, "six"],
            vec!["pkg", "list", name],
        ] {
            let err = home.fails(&args);
            assert!(err.contains("Invalid environment name"), "{args:?}: {err}");
        }
    }
    assert_eq!(snapshot(home.path()), before, "the data dir changed");
    assert_eq!(home.list().len(), 1);
}

#[test]
#[cfg(unix)] // symbolic links (on Windows they need a privilege)
fn delete_never_follows_links_out_of_the_environments_dir() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "linked"]);
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let env = home.envs().join("linked");
    std::os::unix::fs::symlink(&precious, env.join("file-link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), env.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), env.join("lib").join("dir-link")).unwrap();

    // An environment that is itself a link to a directory outside.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("beep-env.json"), "{}").unwrap();
    std::fs::write(elsewhere.path().join("data.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), home.envs().join("pointer")).unwrap();

    home.ok(&["venv", "delete", "linked", "--yes"]);
    home.ok(&["venv", "delete", "pointer", "--yes"]);
    assert!(!env.exists());
    assert!(home.envs().join("pointer").symlink_metadata().is_err());
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(elsewhere.path().join("data.txt").is_file());
    assert!(elsewhere.path().join("beep-env.json").is_file());
    assert!(home.list().is_empty());
}

#[test]
fn an_interrupted_delete_or_create_is_invisible_and_cleaned_up() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "gone"]);
    home.ok(&["venv", "create", "stays"]);
    // A delete that crashed right after its rename: the trash dir is left behind.
    let trash = home.envs().join(".trash-gone-0a1b2c3d4e5f");
    std::fs::rename(home.envs().join("gone"), &trash).unwrap();
    // A create that crashed before its metadata was written.
    std::fs::create_dir_all(home.envs().join("half").join("bin")).unwrap();
    std::fs::write(home.envs().join("half").join("pyvenv.cfg"), "home = /x\n").unwrap();

    let names: Vec<_> = home.list().iter().map(|e| e["name"].clone()).collect();
    assert_eq!(names, vec!["stays"]);
    assert!(!trash.exists(), "the leftover trash was not cleaned up");
    home.fails(&["venv", "status", "half"]);

    // Creating over the remains of the interrupted create works.
    home.ok(&["venv", "create", "half"]);
    let names: Vec<_> = home.list().iter().map(|e| e["name"].clone()).collect();
    assert_eq!(names, vec!["half", "stays"]);
}

#[test]
fn failed_creates_leave_nothing_behind() {
    let home = Home::new(Mode::Uv);
    let err = home.fails(&["venv", "create", "bad-runtime", "--runtime", "9.99"]);
    assert!(err.contains("No runtime matches `9.99`"), "{err}");
    let err = home.fails(&[
        "venv",
        "create",
        "bad-package",
        "--packages",
        "beep-host-no-such-package-x7",
    ]);
    assert!(err.contains("Failed to install"), "{err}");
    assert!(err.contains("not found in the package registry"), "{err}");
    let missing = home.path().join("missing.txt");
    let err = home.fails(&[
        "venv",
        "create",
        "bad-file",
        "--requirements",
        missing.to_str().unwrap(),
    ]);
    assert!(err.contains("Failed to read requirements file"), "{err}");
    assert!(home.list().is_empty());
    assert!(!home.envs().join("bad-file").exists());
    assert!(!home.envs().join("bad-runtime").exists());
    assert!(!home.envs().join("bad-package").exists());
    let entries: Vec<_> = std::fs::read_dir(home.envs())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn concurrent_installs_into_one_environment_do_not_corrupt_it() {
    // pip has no lock of its own: the environment lock is what keeps them apart.
    let home = Home::new(Mode::Pip);
    home.ok(&["venv", "create", "shared"]);
    let children: Vec<_> = ["six", "idna"]
        .iter()
        .map(|pkg| {
            home.command(&["pkg", "install", "shared", pkg])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let packages = home.packages("shared");
    for name in ["six", "idna", "pip"] {
        assert!(has(&packages, name), "{packages:?}");
    }
    let status = home.json(&["venv", "status", "shared", "--json"]);
    assert_eq!(status["healthy"], true);
    let python = status["python"].as_str().unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "pip", "check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new(python)
        .args(["-c", "import six, idna"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_install_waits_while_the_environment_is_locked() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "busy"]);
    let lock_path = home.path().join("state/locks/venv-busy.lock");
    let held = std::fs::File::open(&lock_path).unwrap();
    held.lock().unwrap();
    let child = home
        .command(&["pkg", "install", "busy", "six"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !has(&home.packages("busy"), "six"),
        "installed while the lock was held"
    );
    held.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Waiting for another operation on environment `busy`"),
        "{err}"
    );
    assert!(has(&home.packages("busy"), "six"));
}

#[test]
fn admin_twice_the_second_run_changes_nothing_and_is_fast() {
    let home = Home::new(Mode::Uv);
    let first = home.json(&["venv", "admin", "--json"]);
    assert_eq!(first["action"], "created");
    let packages = home.packages("admin");
    assert!(
        has(&packages, "grpcio") && has(&packages, "protobuf"),
        "{packages:?}"
    );
    let before = snapshot(&home.envs());

    let start = Instant::now();
    let second = home.json(&["venv", "admin", "--json"]);
    let took = start.elapsed();
    assert_eq!(second["action"], "unchanged");
    assert!(
        took < Duration::from_millis(500),
        "second admin took {took:?}"
    );
    assert_eq!(
        snapshot(&home.envs()),
        before,
        "the second run changed files"
    );

    // A missing package is repaired.
    home.ok(&["pkg", "remove", "admin", "protobuf"]);
    let third = home.json(&["venv", "admin", "--json"]);
    assert_eq!(third["action"], "repaired");
    assert!(has(&home.packages("admin"), "protobuf"));
}

#[test]
fn delete_without_a_terminal_needs_yes() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "asked"]);
    let err = home.fails(&["venv", "delete", "asked"]);
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(home.list().len(), 1);
    let err = home.fails(&["venv", "delete", "missing", "--yes"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn delete_refuses_while_a_backend_runs_and_force_stops_it() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "served"]);
    let out = home.ok(&["start", "http", "--venv", "served", "--detach"]);
    let status = home.json(&["venv", "status", "served", "--json"]);
    let backends = status["backends"].as_array().unwrap().clone();
    assert_eq!(backends.len(), 1, "{status}\n{out}");
    let id = backends[0]["id"].as_str().unwrap().to_string();
    assert!(out.contains(&id), "{out}");
    let pid = backends[0]["pid"].as_u64().unwrap();

    let err = home.fails(&["venv", "delete", "served", "--yes"]);
    assert!(err.contains("backends are running in it"), "{err}");
    assert!(err.contains(&id), "{err}");
    assert_eq!(home.list().len(), 1);

    home.ok(&["venv", "delete", "served", "--yes", "--force"]);
    assert!(home.list().is_empty());
    assert!(!home.envs().join("served").exists());
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(!alive, "backend {pid} still runs");
}
