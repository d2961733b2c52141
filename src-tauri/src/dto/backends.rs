use serde::{Deserialize, Serialize};

use beep_host::backend::{BackendStatus, ExecOutput, PyValue, RemoteError};

/// One backend, as the table shows it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct BackendRow {
    pub id: String,
    pub env: String,
    /// `http`, `pipe` or `rpc`.
    pub transport: String,
    pub address: Option<String>,
    /// `starting`, `ready`, `stopping`, `stopped`, `crashed`, `restarting`.
    pub state: String,
    pub pid: Option<u32>,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    pub uptime_secs: u64,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Started by this window (closing it asks whether to stop it).
    pub own: bool,
}

impl BackendRow {
    /// A row; `own` when this window started the backend.
    pub fn new(s: BackendStatus, own: bool) -> Self {
        Self {
            id: s.id.as_str().to_string(),
            env: s.env,
            transport: s.transport.as_str().to_string(),
            address: s.address,
            state: s.state.as_str().to_string(),
            pid: s.pid,
            cpu_percent: s.cpu_percent,
            rss_bytes: s.rss_bytes,
            uptime_secs: s.uptime_secs,
            restarts: s.restarts,
            last_exit: s.last_exit.map(|e| e.describe()),
            own,
        }
    }
}

/// What the start form sends.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct StartBackend {
    pub env: String,
    /// `http`, `pipe` or `rpc`.
    pub transport: String,
    /// `never` or `on-failure`.
    pub restart: String,
}

/// How to reach a backend from another program.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct Connection {
    pub transport: String,
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

    pub fn exec(output: ExecOutput) -> Self {
        Self {
            stdout: output.stdout,
            stderr: output.stderr,
            ..Self::value(output.value)
        }
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
