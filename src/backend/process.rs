//! Starting and ending one backend process: the command line, the ready line, signals.
//!
//! Children are spawned from one long-lived thread: Linux `PR_SET_PDEATHSIG` fires when
//! the *thread* that forked the child exits, and tokio's blocking threads come and go.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::Error;
#[cfg(windows)]
use super::job::JobObject;
use super::log::BackendLog;
use super::spec::{BackendId, BackendOptions, Transport};
use super::status::{LastExit, LogStream};
use super::termination::{Signal, signal_group};

/// Overrides where the `beep_backend` package is found.
pub use crate::paths::PYTHONPATH_ENV;

/// The ready or error line the Python side prints once on stdout.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum StartEvent {
    Ready {
        address: String,
        #[allow(dead_code)]
        transport: String,
        pid: Option<u32>,
    },
    Error {
        kind: String,
        message: String,
    },
}

/// Where the shipped `python/` directory is (see [`crate::paths::python_package_dir`]).
pub fn python_package_dir() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::CurrentExe { source })?;
    let exe = exe.canonicalize().unwrap_or(exe);
    crate::paths::python_package_dir(&exe).ok_or(Error::PythonPackageMissing { exe })
}

/// A fresh 256-bit token, hex encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// What [`launch`] needs.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    pub id: BackendId,
    /// The environment's name; empty on a runtime.
    pub env: String,
    /// The interpreter: the environment's, or the runtime's own.
    pub python: PathBuf,
    /// The environment's folder, or the runtime interpreter's: the default working
    /// directory.
    pub env_dir: PathBuf,
    pub transport: Transport,
    pub python_path: PathBuf,
    pub socket: Option<PathBuf>,
    pub token: String,
    pub ready_timeout: Duration,
    /// The host API's URL and token, when the host serves one.
    pub host_api: Option<(String, String)>,
    /// Environment variables, working directory, preload and memory limit.
    pub options: BackendOptions,
}

/// A backend process that printed its ready line.
#[derive(Debug)]
pub struct Launched {
    pub child: Child,
    pub pid: u32,
    pub address: String,
    pub readers: Vec<JoinHandle<()>>,
    /// Windows: the kill-on-close job the process runs in; dropping it ends the process.
    #[cfg(windows)]
    pub job: Option<JobObject>,
}

/// Spawn the backend and wait for its ready line.
pub async fn launch(plan: &LaunchPlan, log: &Arc<BackendLog>) -> Result<Launched, Error> {
    let python = plan.python.clone();
    let scope = match plan.options.memory_limit {
        Some(limit) => tokio::task::spawn_blocking(systemd_scope_works)
            .await
            .unwrap_or(false)
            .then_some(limit),
        None => None,
    };
    let mut command = match scope {
        // A transient scope with MemoryMax: `systemd-run --scope` execs the command itself,
        // so the pid, the pipes and the process group stay those of the backend.
        Some(limit) => {
            let mut command = Command::new("systemd-run");
            command
                .args(["--user", "--scope", "--quiet", "--collect"])
                .arg(format!("--property=MemoryMax={limit}"))
                .arg("--")
                .arg(&python);
            command
        }
        None => Command::new(&python),
    };
    // The declared variables first: what the backend needs (below) wins over them.
    command.envs(&plan.options.env_vars);
    command
        .arg("-m")
        .arg("beep_backend")
        .arg("--transport")
        .arg(plan.transport.python_name());
    if !plan.env.is_empty() {
        command.arg("--env-name").arg(&plan.env);
    }
    command
        // The token comes over stdin, never through the environment: an environment block
        // stays readable in /proc/<pid>/environ by user code and its children.
        .arg("--token-stdin");
    if let Some(socket) = &plan.socket {
        command.arg("--socket").arg(socket);
    }
    if let Some(preload) = &plan.options.preload {
        command.arg("--preload").arg(preload);
    }
    if let Some((url, token)) = &plan.host_api {
        command
            .env("BEEP_HOST_URL", url)
            .env("BEEP_HOST_TOKEN", token);
    }
    // A declared PYTHONPATH comes after the package's own directory.
    let python_path = match plan.options.env_vars.get("PYTHONPATH") {
        Some(extra) if !extra.is_empty() => {
            let mut joined = plan.python_path.clone().into_os_string();
            joined.push(if cfg!(windows) { ";" } else { ":" });
            joined.push(extra);
            joined
        }
        _ => plan.python_path.clone().into_os_string(),
    };
    command
        .env("PYTHONPATH", python_path)
        .env("PYTHONUNBUFFERED", "1")
        .env("BEEP_PARENT_PID", std::process::id().to_string())
        .env("BEEP_ENV_NAME", &plan.env)
        .current_dir(plan.options.cwd.as_deref().unwrap_or(&plan.env_dir))
        .env_remove("BEEP_BACKEND_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    orphan_protection(&mut command);

    if let Some(cwd) = &plan.options.cwd
        && !cwd.is_dir()
    {
        return Err(Error::CwdMissing {
            id: plan.id.clone(),
            path: cwd.clone(),
        });
    }
    let mut child = spawn(command).await.map_err(|source| Error::Spawn {
        program: python.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    // Windows: from here on the backend dies with this process (or with `job`).
    #[cfg(windows)]
    let job = contain(&child);
    tracing::debug!(id = %plan.id, pid, "backend process spawned");
    hand_over_token(&mut child, &plan.token).await;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = tokio::spawn(pump(stderr, log.clone(), LogStream::Stderr));
    let mut stdout = BufReader::new(stdout).lines();

    let waited = tokio::time::timeout(plan.ready_timeout, async {
        loop {
            match stdout.next_line().await {
                Ok(Some(line)) => match parse_start_line(&line) {
                    Some(event) => return Ok(Some(event)),
                    None => log.push(LogStream::Stdout, line),
                },
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    })
    .await;
    let event = match waited {
        Ok(Ok(event)) => event,
        Ok(Err(err)) => return Err(err),
        Err(_) => {
            signal_group(pid, Signal::Kill);
            let _ = child.wait().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_reader).await;
            return Err(Error::ReadyTimeout {
                id: plan.id.clone(),
                timeout: plan.ready_timeout,
                last_lines: last_lines(log),
            });
        }
    };
    match event {
        Some(Ok(StartEvent::Ready {
            address,
            pid: ready_pid,
            ..
        })) => {
            if ready_pid.is_some_and(|p| p != pid) {
                tracing::warn!(pid, ?ready_pid, "the ready line names another pid");
            }
            let stdout_reader = tokio::spawn(pump_lines(stdout, log.clone(), LogStream::Stdout));
            Ok(Launched {
                child,
                pid,
                address,
                readers: vec![stderr_reader, stdout_reader],
                #[cfg(windows)]
                job,
            })
        }
        Some(Ok(StartEvent::Error { kind, message })) => {
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_reader).await;
            Err(Error::Reported {
                id: plan.id.clone(),
                kind,
                message,
            })
        }
        Some(Err((line, source))) => {
            signal_group(pid, Signal::Kill);
            let _ = child.wait().await;
            Err(Error::BadReadyLine {
                id: plan.id.clone(),
                line,
                source,
            })
        }
        None => {
            let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                Ok(Ok(status)) => Some(status),
                _ => {
                    signal_group(pid, Signal::Kill);
                    child.wait().await.ok()
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_reader).await;
            let exit = status
                .map(|s| exit_of(s, Vec::new()).describe())
                .unwrap_or_else(|| "unknown exit".into());
            Err(Error::ExitedBeforeReady {
                id: plan.id.clone(),
                exit,
                last_lines: last_lines(log),
            })
        }
    }
}

/// Whether `systemd-run --user --scope` can place a process in a transient scope (a user
/// manager with delegated cgroups answers). Asked once per process.
pub fn systemd_scope_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return false;
        }
        let probe = std::process::Command::new("systemd-run")
            .args(["--user", "--scope", "--quiet", "--collect", "--"])
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = probe else { return false };
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(2) {
            match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::debug!(%status, "systemd-run --user --scope probe");
                    return status.success();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return false,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    })
}

/// Write the token as the first line of the backend's stdin, then close it (the backend
/// reads the line and puts the null device in its place). A backend that died before
/// reading it is reported by the wait for its ready line, so a failed write is only logged.
async fn hand_over_token(child: &mut Child, token: &str) {
    use tokio::io::AsyncWriteExt;

    let Some(mut stdin) = child.stdin.take() else {
        return;
    };
    let line = format!("{token}\n");
    if let Err(err) = stdin.write_all(line.as_bytes()).await {
        tracing::debug!(%err, "Failed to write the token to the backend's stdin");
    }
    // Dropping `stdin` closes the pipe.
}

type StartLine = Result<StartEvent, (String, serde_json::Error)>;

/// `Some` for a line that is a start event (or claims to be one and is malformed).
fn parse_start_line(line: &str) -> Option<StartLine> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
    value.get("event")?;
    Some(serde_json::from_value(value).map_err(|e| (trimmed.to_string(), e)))
}

fn last_lines(log: &BackendLog) -> String {
    let lines: Vec<String> = log.tail(20).into_iter().map(|l| l.text).collect();
    if lines.is_empty() {
        "(no output)".to_string()
    } else {
        lines.join("\n")
    }
}

async fn pump(stream: impl AsyncRead + Unpin, log: Arc<BackendLog>, which: LogStream) {
    pump_lines(BufReader::new(stream).lines(), log, which).await;
}

async fn pump_lines<R: AsyncBufReadExt + Unpin>(
    mut lines: tokio::io::Lines<R>,
    log: Arc<BackendLog>,
    which: LogStream,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(which, line);
    }
}

/// Turn an exit status into a [`LastExit`].
pub fn exit_of(status: ExitStatus, last_lines: Vec<String>) -> LastExit {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    LastExit {
        code: status.code(),
        signal,
        at: unix_now(),
        last_lines,
        reason: None,
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// New process group, and on Linux a SIGKILL when this process goes away.
fn orphan_protection(command: &mut Command) {
    #[cfg(unix)]
    {
        command.process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run in the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
        }
    }
    #[cfg(windows)]
    {
        // Windows: `contain` puts the started process into a kill-on-close job; the Python
        // watchdog (BEEP_PARENT_PID) is the second line.
        let _ = command;
    }
}

/// Windows: put a just-spawned backend into its own kill-on-close job. Without one (the
/// job could not be made) the backend still ends itself when it sees its parent gone.
#[cfg(windows)]
fn contain(child: &Child) -> Option<JobObject> {
    let handle = child.raw_handle()?;
    let job = JobObject::kill_on_close().and_then(|job| job.assign(handle).map(|()| job));
    match job {
        Ok(job) => Some(job),
        Err(err) => {
            tracing::warn!(%err, "Failed to put the backend into a kill-on-close job object");
            None
        }
    }
}

type SpawnTask = Box<dyn FnOnce() + Send>;

/// Run `command.spawn()` on the long-lived spawner thread, registered with the caller's
/// tokio runtime.
async fn spawn(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<SpawnTask>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnTask>();
        std::thread::Builder::new()
            .name("beep-backend-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("the spawner thread starts");
        std::sync::Mutex::new(tx)
    });
    let handle = tokio::runtime::Handle::current();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let mut command = command;
    let task: SpawnTask = Box::new(move || {
        let _guard = handle.enter();
        let _ = reply.send(command.spawn());
    });
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(task)
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| std::io::Error::other("the spawner thread dropped the request"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert!(parse_start_line("hello").is_none());
        assert!(parse_start_line("{\"x\": 1}").is_none());
        match parse_start_line(
            r#"{"event": "ready", "transport": "pipe", "address": "/a.sock", "pid": 5}"#,
        ) {
            Some(Ok(StartEvent::Ready { address, .. })) => assert_eq!(address, "/a.sock"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_start_line(r#"{"event": "error", "kind": "bind", "message": "no"}"#),
            Some(Ok(StartEvent::Error { .. }))
        ));
        assert!(matches!(
            parse_start_line(r#"{"event": "surprise"}"#),
            Some(Err(_))
        ));
    }

    #[test]
    fn tokens_are_256_bit() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_token());
    }
}
