//! Helpers for the environment tests: a temp home with the machine's Python adopted as
//! the default runtime, the real `beep-host` binary, and one uv shared by the run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The machine's real interpreter (not a pyenv shim).
pub fn machine_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys;print(sys.executable)"])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "python3 failed: {out:?}");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// A uv binary provisioned once (per target dir) with pip, shared by the tests that use uv.
pub fn shared_uv() -> &'static Path {
    static UV: OnceLock<PathBuf> = OnceLock::new();
    UV.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("beep-uv");
        let uv = root.join("bin").join("uv");
        let lock =
            std::fs::File::create(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("beep-uv.lock"))
                .unwrap();
        lock.lock().unwrap();
        if !uv.is_file() {
            let staging = root.with_extension("staging");
            let _ = std::fs::remove_dir_all(&staging);
            let out = Command::new(machine_python())
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "--target",
                ])
                .arg(&staging)
                .arg("uv")
                .env("PIP_ROOT_USER_ACTION", "ignore")
                .output()
                .unwrap();
            assert!(out.status.success(), "pip install uv: {out:?}");
            let _ = std::fs::remove_dir_all(&root);
            std::fs::rename(&staging, &root).unwrap();
        }
        uv
    })
}

/// PATH without any directory that holds a `uv` (so provisioning is what finds uv).
pub fn path_without_uv() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("uv").exists())
        .collect();
    std::env::join_paths(dirs).unwrap()
}

/// Which installer a home forces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `BEEP_HOST_INSTALLER=uv` with the shared uv in `BEEP_HOST_UV`.
    Uv,
    /// `BEEP_HOST_INSTALLER=pip`.
    Pip,
    /// No setting: uv if found or provisioned (PATH without uv, no `BEEP_HOST_UV`).
    Auto,
}

/// A fresh `BEEP_HOST_HOME` with the machine's Python as the default runtime.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub mode: Mode,
}

impl Home {
    pub fn new(mode: Mode) -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
            mode,
        };
        home.ok(&["runtime", "default", machine_python().to_str().unwrap()]);
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn envs(&self) -> PathBuf {
        self.path().join("data").join("envs")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_beep-host"));
        cmd.args(args)
            .env("BEEP_HOST_HOME", self.path())
            .env_remove("BEEP_HOST_UV")
            .env_remove("BEEP_HOST_INSTALLER")
            .env_remove("VIRTUAL_ENV")
            // One uv cache for the whole run (the host would put one in each home).
            .env(
                "UV_CACHE_DIR",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uv-cache"),
            )
            .stdin(std::process::Stdio::null());
        match self.mode {
            Mode::Uv => {
                cmd.env("BEEP_HOST_INSTALLER", "uv")
                    .env("BEEP_HOST_UV", shared_uv());
            }
            Mode::Pip => {
                cmd.env("BEEP_HOST_INSTALLER", "pip");
            }
            Mode::Auto => {
                cmd.env("PATH", path_without_uv());
            }
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "beep-host {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "beep-host {args:?} should have failed\nstdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// `venv list --json`.
    pub fn list(&self) -> Vec<serde_json::Value> {
        self.json(&["venv", "list", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// `pkg list <env> --json` as (name, version) pairs.
    pub fn packages(&self, env: &str) -> Vec<(String, String)> {
        self.json(&["pkg", "list", env, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_lowercase(),
                    p["version"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Every path under `root` with its size and modification time (for "nothing changed").
pub fn snapshot(root: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let meta = entry.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.push((entry.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    out
}
