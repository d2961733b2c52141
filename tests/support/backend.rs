//! Test homes with real environments, and helpers to drive `beep-host` and real backends.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use beep_host::Paths;
use beep_host::venv::EnvName;

/// The machine's real interpreter (`python3` on PATH may be a pyenv shim).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "python3 fails: {out:?}");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// One environment with grpcio + protobuf per test run, shared by every test (a venv
/// under the target dir, created once behind a lock file).
pub fn grpc_env() -> &'static Path {
    static ENV: OnceLock<PathBuf> = OnceLock::new();
    ENV.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-envs");
        std::fs::create_dir_all(&root).unwrap();
        let env = root.join("grpc");
        let _lock = beep_host::lock::LockFile::acquire_blocking(&root.join("grpc.lock")).unwrap();
        if env.join("ok").exists() {
            return env;
        }
        let partial = root.join("grpc.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let _ = std::fs::remove_dir_all(&env);
        run(Command::new(python()).args(["-m", "venv"]).arg(&partial));
        run(Command::new(partial.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "grpcio==1.76.0",
            "protobuf==6.33.1",
        ]));
        std::fs::rename(&partial, &env).unwrap();
        std::fs::write(env.join("ok"), b"").unwrap();
        env
    })
}

fn run(command: &mut Command) {
    let out = command.output().expect("command runs");
    assert!(out.status.success(), "{command:?} failed: {out:?}");
}

/// A fresh `BEEP_HOST_HOME`.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
}

impl Home {
    pub fn new() -> Self {
        // Short paths: Unix socket paths are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bh")
            .tempdir_in("/tmp")
            .unwrap();
        let paths = Paths::under(dir.path().to_path_buf());
        Self { dir, paths }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A plain environment (`python -m venv --without-pip`): enough for http and pipe.
    pub fn plain_env(&self, name: &str) -> EnvName {
        let dir = beep_host::venv::env_dir(&self.paths, &EnvName::parse(name).unwrap());
        run(Command::new(python())
            .args(["-m", "venv", "--without-pip"])
            .arg(&dir));
        EnvName::parse(name).unwrap()
    }

    /// An environment with grpcio: a link to the shared one.
    pub fn grpc_env(&self, name: &str) -> EnvName {
        let env = EnvName::parse(name).unwrap();
        let dir = beep_host::venv::env_dir(&self.paths, &env);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(grpc_env(), &dir).unwrap();
        #[cfg(windows)]
        std::os::windows::fs::symlink_dir(grpc_env(), &dir).unwrap();
        env
    }

    /// Run `beep-host` in this home.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("beep-host runs")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_beep-host"));
        command
            .args(args)
            .env("BEEP_HOST_HOME", self.root())
            // A daemon a test forgets still ends soon; `Drop` checks none is left.
            .env("BEEP_HOST_DAEMON_IDLE", "30")
            .env_remove("RUST_LOG");
        command
    }

    /// The pid of the home's running daemon, if one runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        let record = std::fs::read(self.paths.state.join("daemon.json")).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&record).ok()?;
        let pid = record["pid"].as_u64()? as u32;
        alive(pid).then_some(pid)
    }

    /// Run `beep-host`, require success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "beep-host {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `beep-host start <transport>` in the foreground, once it said ready: the process
    /// and its first line (`backend <id> ready: ..., pid <pid>`).
    pub fn start_foreground(&self, transport: &str) -> (std::process::Child, String) {
        let mut fg = self
            .command(&["start", transport])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(fg.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        (fg, first)
    }

    /// `ps --json`.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["ps", "--json"])).unwrap()
    }

    /// Files in a state subdirectory.
    pub fn files(&self, dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// No test leaves a daemon behind: the home's daemon is asked to stop, and must be gone
/// (with its backends) within 10 s.
impl Drop for Home {
    fn drop(&mut self) {
        let Some(pid) = self.daemon_pid() else {
            return;
        };
        let _ = self.command(&["daemon", "stop"]).output();
        let began = Instant::now();
        while alive(pid) && began.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(pid) {
            kill9(pid);
            if !std::thread::panicking() {
                panic!("the daemon (pid {pid}) did not stop when asked");
            }
        }
    }
}

include!("ids.rs"); // `id_of`, shared with test files that use other support modules

/// Is `pid` a live (non-zombie) process?
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Wait until `check` holds or fail after `timeout`; returns the time it took.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let began = Instant::now();
    while !check() {
        assert!(began.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    began.elapsed()
}

pub fn kill9(pid: u32) {
    #[cfg(unix)]
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    #[cfg(not(unix))]
    {
        let pid = sysinfo::Pid::from_u32(pid);
        let mut system = sysinfo::System::new();
        system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false);
        if let Some(process) = system.process(pid) {
            process.kill();
        }
    }
}
