//! Projects: a folder with `beep.toml` (runtime, requirements, backends) and `beep.lock`
//! (the packages resolved, the runtime pinned). `up` converges the machine to them:
//! installs the runtime, creates or syncs the environment exactly to the lock, starts,
//! restarts and stops the declared backends through the daemon; `down` stops them;
//! `status` sets the declaration beside what runs.

mod backends;
mod converge;
mod declaration;
pub mod lockfile;
pub mod manifest;
mod resolution;
mod status;

use std::path::PathBuf;

pub use backends::{Action, BackendChange};
pub use converge::{OfflineSource, Projects, UpReport};
pub use lockfile::{LOCK_FILE, ProjectLock, RuntimePin};
pub use manifest::{BackendDecl, MANIFEST_FILE, Manifest, PythonRequest, Requirements};
pub use status::{BackendRow, ProjectStatus};

/// The file in a project's environment that records the lock it was synced to.
pub const STATE_FILE: &str = "beep-project.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] manifest::Error),
    #[error(transparent)]
    LockFile(#[from] lockfile::Error),
    #[error("Failed to find the runtime `{request}` of project `{}`", dir.display())]
    Runtime {
        dir: PathBuf,
        request: String,
        #[source]
        source: Box<crate::runtime::Error>,
    },
    #[error("Failed to lock project `{}`: locking needs uv (the installer in force is pip)", dir.display())]
    NeedsUv { dir: PathBuf },
    #[error("Failed to bring project `{}` up offline: its beep.lock does not match beep.toml, and locking needs a package index", dir.display())]
    OfflineStale { dir: PathBuf },
    #[error("Failed to lock project `{}`", dir.display())]
    Resolve {
        dir: PathBuf,
        #[source]
        source: crate::venv::installer::Error,
    },
    #[error("Failed to sync environment `{name}` to `{}`", lock.display())]
    Sync {
        name: String,
        lock: PathBuf,
        #[source]
        source: crate::venv::installer::Error,
    },
    #[error(transparent)]
    Venv(#[from] crate::venv::Error),
    #[error("Failed to start backend `{name}` of project `{}`", dir.display())]
    Start {
        dir: PathBuf,
        name: String,
        #[source]
        source: Box<crate::daemon::Error>,
    },
    #[error("Failed to stop backend `{name}` ({id}) of project `{}`", dir.display())]
    Stop {
        dir: PathBuf,
        name: String,
        id: String,
        #[source]
        source: Box<crate::daemon::Error>,
    },
    #[error(transparent)]
    Daemon(Box<crate::daemon::Error>),
    /// `up` failed; what it had created was undone (`undone`, in words).
    #[error("Failed to bring project `{}` up (undone: {})", dir.display(), undone.join("; "))]
    Undone {
        dir: PathBuf,
        undone: Vec<String>,
        #[source]
        source: Box<Error>,
    },
    #[error("Failed to lock project `{}`", dir.display())]
    Busy {
        dir: PathBuf,
        #[source]
        source: crate::lock::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::daemon::Error> for Error {
    fn from(e: crate::daemon::Error) -> Self {
        Self::Daemon(Box::new(e))
    }
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Manifest(e) => e.code(),
            Self::LockFile(lockfile::Error::Parse { .. }) => C::Invalid,
            Self::LockFile(_) | Self::Write { .. } => C::Internal,
            Self::Runtime { source, .. } => source.code(),
            Self::NeedsUv { .. } | Self::OfflineStale { .. } => C::Invalid,
            Self::Venv(e) => e.code(),
            Self::Daemon(e) => e.code(),
            Self::Undone { source, .. } => source.code(),
            Self::Busy { source, .. } => source.code(),
            Self::Resolve { .. } | Self::Sync { .. } | Self::Start { .. } | Self::Stop { .. } => {
                C::Failed
            }
        }
    }
}
