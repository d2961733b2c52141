//! Python backends: the supervisor and the clients for every transport.
//!
//! A backend is `python -m beep_backend --transport http|pipe|grpc` running in an
//! environment, with a fresh token, watched by a [`Supervisor`]. Any program (the CLI,
//! the GUI, a test) talks to it through a [`BackendClient`].

pub mod client;
mod health;
mod instance;
#[cfg(windows)]
mod job;
pub mod log;
mod place;
pub mod process;
pub mod record;
mod recovery;
pub mod spec;
pub mod stats;
pub mod status;
pub mod supervisor;
pub mod termination;

use std::path::PathBuf;
use std::time::Duration;

pub use client::{BackendClient, ExecOutput, Handle, Op, PyValue, RemoteError, Reply};
pub use record::BackendRecord;
pub use spec::{
    BackendId, BackendOptions, BackendSpec, HealthCheck, Place, ProjectTag, RestartLimits,
    RestartPolicy, RuntimeRef, Transport,
};
pub use status::{
    BackendEvent, BackendState, BackendStatus, LastExit, LogLine, LogStream, ProcessStats,
};
pub use supervisor::{Connection, Supervisor};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to find environment `{env}` at `{}`", path.display())]
    EnvironmentMissing { env: String, path: PathBuf },
    #[error(
        "Failed to start an `rpc` backend in environment `{env}`: grpcio is not installed there. \
         Run `beep-host venv admin` and use the admin environment (the default), or install \
         `grpcio protobuf` into `{env}`"
    )]
    GrpcMissing { env: String, path: PathBuf },
    #[error("Failed to find the interpreter `{}` of runtime `{key}`; see `beep-host runtime list`", python.display())]
    RuntimeMissing { key: String, python: PathBuf },
    #[error(
        "Failed to start an `rpc` backend on runtime `{key}`: grpcio is not installed there. \
         Install `grpcio protobuf` into it (`{} -m pip install grpcio protobuf`), or start it in an environment that has them (`--venv admin`)",
        python.display()
    )]
    RuntimeGrpcMissing { key: String, python: PathBuf },
    #[error(
        "Failed to start a backend on runtime `{key}`: another operation on it (install or remove) did not finish in time"
    )]
    RuntimeBusy {
        key: String,
        #[source]
        source: crate::lock::Error,
    },
    #[error(
        "Failed to start a backend on embedded runtime `{key}`: {problem}; its `pythonXY._pth` ignores PYTHONPATH, so `beep_backend` is found only through `{}`", pth.display()
    )]
    EmbeddedPath {
        key: String,
        pth: PathBuf,
        problem: String,
    },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
    #[error(
        "Failed to find the `beep_backend` Python package near `{}`; set `{}`",
        exe.display(),
        process::PYTHONPATH_ENV
    )]
    PythonPackageMissing { exe: PathBuf },
    #[error("Failed to find the current executable")]
    CurrentExe {
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to create directory `{}`", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to use socket path `{}`: longer than a Unix socket allows; use a shorter BEEP_HOST_HOME", path.display())]
    SocketPathTooLong { path: PathBuf },
    #[error("Failed to start backend `{id}`: the id is taken")]
    IdTaken { id: BackendId },
    #[error(
        "Failed to start a backend in environment `{env}`: another operation on it (create, package install or delete) did not finish in time"
    )]
    EnvironmentBusy {
        env: String,
        #[source]
        source: crate::lock::Error,
    },
    #[error("Failed to start backend `{id}`: its working directory `{}` is not a directory", path.display())]
    CwdMissing { id: BackendId, path: PathBuf },
    #[error("Failed to spawn `{}`", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to start backend `{id}`: {kind}: {message}")]
    Reported {
        id: BackendId,
        kind: String,
        message: String,
    },
    #[error(
        "Failed to start backend `{id}`: the process ended ({exit}) before it was ready. Last log lines:\n{last_lines}"
    )]
    ExitedBeforeReady {
        id: BackendId,
        exit: String,
        last_lines: String,
    },
    #[error(
        "Failed to start backend `{id}`: not ready within {timeout:?}. Last log lines:\n{last_lines}"
    )]
    ReadyTimeout {
        id: BackendId,
        timeout: Duration,
        last_lines: String,
    },
    #[error("Failed to start backend `{id}`: unexpected start line `{line}`")]
    BadReadyLine {
        id: BackendId,
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Failed to find backend `{id}`")]
    NotFound { id: BackendId },
    #[error("Failed to reach backend `{id}`: it is not ready")]
    NotReady { id: BackendId },
    #[error("Failed to restart backend `{id}`: it has ended")]
    Ended { id: BackendId },
    #[error("Failed to restart backend `{id}`: {message}")]
    Restart { id: BackendId, message: String },
    #[error(
        "Failed to remove backend `{id}`: it is running; stop it first (`beep-host stop {id}`)"
    )]
    StillRunning { id: BackendId },
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    Client(#[from] client::Error),
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::EnvironmentMissing { .. }
            | Self::NotFound { .. }
            | Self::CwdMissing { .. }
            | Self::RuntimeMissing { .. } => C::NotFound,
            Self::IdTaken { .. }
            | Self::NotReady { .. }
            | Self::EnvironmentBusy { .. }
            | Self::RuntimeBusy { .. }
            | Self::StillRunning { .. }
            | Self::Ended { .. } => C::Conflict,
            // The environment cannot serve the transport asked for.
            Self::GrpcMissing { .. } | Self::RuntimeGrpcMissing { .. } => C::Invalid,
            Self::Runtime(e) => e.code(),
            Self::CurrentExe { .. } | Self::CreateDir { .. } | Self::Record(_) => C::Internal,
            Self::Client(e) => e.code(),
            _ => C::Failed,
        }
    }
}
