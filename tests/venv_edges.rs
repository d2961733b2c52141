//! Environments at the edges, through the real `beep-host` binary and real Python: uv's
//! cache under the home, a failed install reported once, names that collide by case, a
//! damaged `beep-env.json`, and a create without a default runtime.

// Links, pseudo-terminals and shell-script interpreters: Unix only.
#![cfg(unix)]

#[path = "support/venv.rs"]
mod support;

use std::path::{Path, PathBuf};
use support::{Home, Mode, machine_python, shared_uv};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn uv_keeps_its_cache_under_the_home() {
    let home = Home::new(Mode::Uv);
    let user_home = tempfile::tempdir().unwrap();
    let mut command = home.command(&["venv", "create", "cached", "--packages", "six"]);
    command
        .env_remove("UV_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", user_home.path());
    // pyenv stays where it is, so discovery finds what it found before HOME moved.
    if let Some(real_home) = std::env::var_os("HOME") {
        let pyenv = PathBuf::from(real_home).join(".pyenv");
        if std::env::var_os("PYENV_ROOT").is_none() && pyenv.is_dir() {
            command.env("PYENV_ROOT", pyenv);
        }
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cache = home.path().join("cache").join("uv");
    let entries = std::fs::read_dir(&cache).map(|rd| rd.count()).unwrap_or(0);
    assert!(entries > 0, "nothing in {}", cache.display());
    assert!(
        !user_home.path().join(".cache").join("uv").exists(),
        "uv wrote to ~/.cache/uv"
    );
}

/// How many times `needle` occurs in `haystack`.
fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_failed_install_prints_the_installer_output_once() {
    for (mode, line) in [
        (Mode::Pip, "Could not find a version that satisfies"),
        (Mode::Uv, "No solution found"),
    ] {
        let home = Home::new(mode);
        home.ok(&["venv", "create", "once"]);
        let err = home.fails(&["pkg", "install", "once", "beep-host-no-such-package-x7"]);
        assert_eq!(count(&err, line), 1, "{mode:?}: {err}");
        assert!(
            err.contains("Failed to install `beep-host-no-such-package-x7`"),
            "{err}"
        );
    }
}

#[test]
fn names_that_differ_only_in_case_cannot_coexist() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "Work"]);
    let err = home.fails(&["venv", "create", "work"]);
    assert!(err.contains("`Work`"), "{err}");
    assert!(err.contains("differs only in case"), "{err}");
    let names: Vec<String> = home
        .list()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["Work"]);
    assert!(!home.envs().join("work").exists());
}

#[test]
fn a_damaged_beep_env_json_is_listed_as_broken_with_the_reason() {
    let home = Home::new(Mode::Uv);
    home.ok(&["venv", "create", "fine"]);
    home.ok(&["venv", "create", "cut"]);
    home.ok(&["venv", "create", "empty"]);
    let metadata = |name: &str| home.envs().join(name).join("beep-env.json");
    let full = std::fs::read_to_string(metadata("cut")).unwrap();
    std::fs::write(metadata("cut"), &full[..full.len() / 2]).unwrap();
    std::fs::write(metadata("empty"), "").unwrap();

    let list = home.list();
    let by_name = |name: &str| {
        list.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {list:?}"))
            .clone()
    };
    assert_eq!(by_name("fine")["healthy"], true);
    assert!(by_name("fine")["problem"].is_null());
    for name in ["cut", "empty"] {
        let env = by_name(name);
        assert_eq!(env["healthy"], false, "{env}");
        let problem = env["problem"].as_str().unwrap_or_default();
        assert!(problem.contains(metadata(name).to_str().unwrap()), "{env}");
    }
    assert!(
        by_name("empty")["problem"]
            .as_str()
            .unwrap()
            .contains("empty"),
        "{list:?}"
    );
    let out = home.run(&["venv", "list"]);
    assert!(
        text(&out.stderr).contains("`cut` is broken"),
        "{}",
        text(&out.stderr)
    );
    // Still deletable.
    home.ok(&["venv", "delete", "cut", "--yes"]);
}

/// A PATH with the machine's interpreter alone, and a HOME without pyenv or conda.
fn lone_python(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(machine_python(), bin.join("python3")).unwrap();
    bin
}

#[test]
fn without_a_default_the_only_runtime_is_used_and_named() {
    let outer = tempfile::tempdir().unwrap();
    let beep_home = outer.path().join("home");
    let user_home = outer.path().join("user");
    std::fs::create_dir_all(&user_home).unwrap();
    let path = lone_python(outer.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beep-host"))
        .args(["venv", "create", "solo"])
        .env("BEEP_HOST_HOME", &beep_home)
        .env("BEEP_HOST_INSTALLER", "uv")
        .env("BEEP_HOST_UV", shared_uv())
        .env("HOME", &user_home)
        .env("PATH", &path)
        .env_remove("PYENV_ROOT")
        .env_remove("CONDA_PREFIX")
        .env_remove("VIRTUAL_ENV")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the only runtime installed"), "{err}");
    let real = std::fs::canonicalize(machine_python()).unwrap();
    assert!(err.contains(real.to_str().unwrap()), "{err}");
}
