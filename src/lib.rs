//! Beep Python Host core: managed Python runtimes, virtual environments and supervised Python backends.

pub mod backend;
pub mod bundle;
pub mod check;
pub mod config;
pub mod daemon;
pub mod error;
pub mod host;
pub mod lock;
pub mod paths;
pub mod project;
pub mod reporter;
pub mod runtime;
pub mod venv;

pub use config::Config;
pub use error::ErrorCode;
pub use paths::Paths;
pub use reporter::{NoReporter, Progress, Reporter};

/// The crate error: each module's error, unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Paths(#[from] paths::Error),
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    Lock(#[from] lock::Error),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Venv(#[from] venv::Error),
    #[error(transparent)]
    Backend(#[from] backend::Error),
    #[error(transparent)]
    Host(#[from] host::Error),
    #[error(transparent)]
    Daemon(#[from] daemon::Error),
    #[error(transparent)]
    Project(#[from] project::Error),
    #[error(transparent)]
    Bundle(#[from] bundle::Error),
}
