use serde::{Deserialize, Serialize};

use beep_host::backend::{BackendStatus, PyValue, RemoteError};

/// The core's `BackendState`, one to one (the core crate carries no specta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    Starting,
    Ready,
    Stopping,
    Stopped,
    Crashed,
    Restarting,
    Lost,
    Unhealthy,
}

impl From<beep_host::backend::BackendState> for BackendState {
    fn from(s: beep_host::backend::BackendState) -> Self {
        use beep_host::backend::BackendState as S;
        match s {
            S::Starting => Self::Starting,
            S::Ready => Self::Ready,
            S::Stopping => Self::Stopping,
            S::Stopped => Self::Stopped,
            S::Crashed => Self::Crashed,
            S::Restarting => Self::Restarting,
            S::Lost => Self::Lost,
            S::Unhealthy => Self::Unhealthy,
        }
    }
}

/// The core's `Transport`, one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Http,
    Pipe,
    Rpc,
}

impl From<beep_host::backend::Transport> for Transport {
    fn from(t: beep_host::backend::Transport) -> Self {
        use beep_host::backend::Transport as T;
        match t {
            T::Http => Self::Http,
            T::Pipe => Self::Pipe,
            T::Rpc => Self::Rpc,
        }
    }
}

impl From<Transport> for beep_host::backend::Transport {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Http => Self::Http,
            Transport::Pipe => Self::Pipe,
            Transport::Rpc => Self::Rpc,
        }
    }
}

/// How the last run of a backend ended.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct LastExit {
    /// "exited with code 3", "signal 9 (SIGKILL)", …
    pub text: String,
    /// Unix seconds.
    pub at: u64,
    /// Whether it ended on its own (not stopped by hand).
    pub failure: bool,
}

/// One backend, as the table shows it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct BackendRow {
    pub id: String,
    /// The environment it runs in; empty when it runs on a runtime.
    pub env: String,
    /// The key of the runtime it runs on directly (`beep-host start --runtime`).
    pub runtime: Option<String>,
    pub transport: Transport,
    pub address: Option<String>,
    pub state: BackendState,
    pub pid: Option<u32>,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    pub uptime_secs: u64,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// Started by this window (closing it asks whether to stop it).
    pub own: bool,
}

impl BackendRow {
    /// A row; `own` when this window started the backend.
    pub fn new(s: BackendStatus, own: bool) -> Self {
        Self {
            id: s.id.as_str().to_string(),
            env: s.env,
            runtime: s.runtime.map(|r| r.key),
            transport: s.transport.into(),
            address: s.address,
            state: s.state.into(),
            pid: s.pid,
            cpu_percent: s.cpu_percent,
            rss_bytes: s.rss_bytes,
            uptime_secs: s.uptime_secs,
            restarts: s.restarts,
            last_exit: s.last_exit.map(|e| LastExit::new(&e, s.state)),
            own,
        }
    }
}

impl LastExit {
    pub fn new(e: &beep_host::backend::LastExit, state: beep_host::backend::BackendState) -> Self {
        Self {
            text: e.describe(),
            at: e.at,
            failure: state.is_failure() || e.code.is_some_and(|c| c != 0) || e.signal.is_some(),
        }
    }
}

/// What the start form sends.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct StartBackend {
    /// The environment to run in (ignored when `runtime` is given).
    pub env: String,
    /// A runtime key to run on directly instead of an environment (an `embedded` runtime
    /// holds no environment).
    #[serde(default)]
    pub runtime: Option<String>,
    pub transport: Transport,
    /// `never` or `on-failure`.
    pub restart: String,
}

/// How to reach a backend from another program.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct Connection {
    pub transport: Transport,
    pub address: String,
    pub token: String,
}

/// A captured log line.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct LogRow {
    pub stream: String,
    pub text: String,
}

/// The Python exception of a failed console run.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct PyError {
    pub type_name: String,
    pub message: String,
    pub traceback: String,
}

impl From<RemoteError> for PyError {
    fn from(e: RemoteError) -> Self {
        Self {
            type_name: e.type_name,
            message: e.message,
            traceback: e.traceback,
        }
    }
}

/// The result of running code in the console.
#[derive(Debug, Clone, Default, Serialize, Deserialize, specta::Type)]
pub struct ConsoleResult {
    /// The value as JSON text, or a handle's `repr`.
    pub value: Option<String>,
    /// Set when the value is a handle.
    pub handle: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<PyError>,
}

impl ConsoleResult {
    pub fn value(value: PyValue) -> Self {
        let mut result = Self::default();
        match value {
            PyValue::Handle(h) => {
                result.value = Some(format!("<{}> {}", h.type_name, h.repr));
                result.handle = Some(h.id);
            }
            PyValue::Json(serde_json::Value::Null) => {}
            other => result.value = Some(other.to_json().to_string()),
        }
        result
    }

    pub fn error(e: RemoteError) -> Self {
        Self {
            error: Some(e.into()),
            ..Self::default()
        }
    }
}

/// A live object held by the backend.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct HandleRow {
    pub id: String,
    pub type_name: String,
    pub repr: String,
    /// Unix seconds it was created, when the backend says.
    pub created: Option<f64>,
}

impl HandleRow {
    /// Read the `handles` answer: `[{id, type, repr, created, last_used}]`.
    pub fn list(value: serde_json::Value) -> Vec<Self> {
        let text = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|v| Self {
                        id: text(v, "id"),
                        type_name: text(v, "type"),
                        repr: text(v, "repr"),
                        created: v.get("created").and_then(|x| x.as_f64()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
