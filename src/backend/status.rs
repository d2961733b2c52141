//! What a backend is doing: its state, its last exit, its resource use.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{BackendId, BackendOptions, RuntimeRef, Transport};

/// The life cycle of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    Starting,
    Ready,
    Stopping,
    Stopped,
    /// Exited on its own; see [`BackendStatus::last_exit`].
    Crashed,
    /// Crashed and waiting for its next start (restart policy `on-failure`).
    Restarting,
    /// Its owner (a daemon) ended while it ran; see [`BackendStatus::last_exit`].
    Lost,
    /// Runs but did not answer its health probe (`info`) the declared number of times in a
    /// row; it is being stopped, then started again by its restart policy.
    Unhealthy,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Crashed => "crashed",
            Self::Restarting => "restarting",
            Self::Lost => "lost",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// No process runs and none will be started again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Crashed | Self::Lost)
    }

    /// Ended in a way a person should see (`crashed`, `lost`), unlike a stop asked for.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Crashed | Self::Lost)
    }
}

impl std::fmt::Display for BackendState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a backend process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when a signal ended it (Unix).
    pub signal: Option<i32>,
    /// Unix time in seconds.
    pub at: u64,
    /// The last log lines before the exit (at most 20).
    pub last_lines: Vec<String>,
    /// Why, when neither a code nor a signal says it (`the daemon that owned it ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LastExit {
    /// `exit code 1`, `signal 9 (SIGKILL)`.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            _ if self.reason.is_some() => self.reason.clone().unwrap_or_default(),
            (_, Some(signal)) => format!("signal {signal}{}", signal_name(signal)),
            (Some(code), None) => format!("exit code {code}"),
            (None, None) => "unknown exit".to_string(),
        }
    }

    /// A clean exit (code 0): not a failure for the restart policy.
    pub fn is_success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none()
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// Resource use of a backend's process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// CPU use in percent of one core, summed over the tree (may exceed 100).
    pub cpu_percent: f32,
    /// Resident memory in bytes, summed over the tree.
    pub rss_bytes: u64,
    /// Processes in the tree.
    pub processes: u32,
}

/// One row of `beep-host ps` and the GUI's backend table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub id: BackendId,
    /// The environment it runs in; empty when it runs on a runtime (see `runtime`).
    pub env: String,
    /// The runtime it runs on directly (`beep-host start --runtime`); absent in an
    /// environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeRef>,
    pub transport: Transport,
    /// `127.0.0.1:PORT` or the socket path, once ready.
    pub address: Option<String>,
    pub state: BackendState,
    /// A call is running in it (asked of the backend when listed; `ready` only).
    #[serde(default)]
    pub busy: bool,
    pub pid: Option<u32>,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    /// Seconds since the current process started.
    pub uptime_secs: u64,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// The `beep-host` process (CLI, detached supervisor or GUI) that supervises it.
    pub supervisor_pid: u32,
    /// The record file (mode 0600; holds the token).
    pub record: PathBuf,
    pub log_file: PathBuf,
    /// Unix time in seconds of the first start.
    pub started_at: u64,
    /// A project's declarations (which project, health probe, memory limit).
    #[serde(default)]
    pub options: BackendOptions,
}

impl BackendStatus {
    /// Where it runs, for people: `admin` (an environment) or `runtime <key>`.
    pub fn place_text(&self) -> String {
        match &self.runtime {
            Some(runtime) => format!("runtime {}", runtime.key),
            None => self.env.clone(),
        }
    }
}

/// A change announced to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackendEvent {
    State {
        id: BackendId,
        state: BackendState,
        pid: Option<u32>,
        last_exit: Option<LastExit>,
    },
    /// Supervision is over: `state` is `stopped` or `crashed` and nothing restarts it.
    Ended {
        id: BackendId,
        state: BackendState,
        last_exit: Option<LastExit>,
    },
    /// An ended backend was removed from the table.
    Removed { id: BackendId },
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
}
