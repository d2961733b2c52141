//! Virtual environments and their packages.
//!
//! The filesystem is the truth: an environment is `<data>/envs/<name>` with the venv
//! tool's `pyvenv.cfg` and the host's `beep-env.json`. The metadata file is written last,
//! so a directory without it (a create in progress or interrupted) is never listed.
//! Create, install and delete of one environment hold its lock file
//! (`<state>/locks/venv-<name>.lock`) and never overlap; a second one waits.

pub mod admin;
pub mod backends;
pub mod environment;
mod environments;
pub mod installer;
pub mod layout;
pub mod name;
pub mod package;
mod runtime_users;
pub mod trash;

use std::path::PathBuf;

pub use admin::{ADMIN_ENV, ADMIN_REQUIREMENTS, AdminAction, AdminOutcome};
pub use backends::{EnvBackend, NoBackends, RunningBackends, StopError};
pub use environment::{
    Environment, EnvironmentSize, EnvironmentStatus, Metadata, env_dir, has_grpc, python_in,
};
pub(crate) use environments::lock_path;
pub use environments::{CreateOptions, DeleteOptions, Environments};
pub use installer::Tool;
pub use name::EnvName;
pub use package::{Package, PackageRequest};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] name::Error),
    #[error("Environment `{name}` does not exist; see `beep-host venv list`")]
    NotFound { name: String },
    #[error("Failed to create environment `{name}`: it already exists at `{}`", path.display())]
    Exists { name: String, path: PathBuf },
    #[error(
        "Failed to create environment `{name}`: environment `{existing}` differs only in case, and the two would be one directory on a case-insensitive file system"
    )]
    CaseCollision { name: String, existing: String },
    #[error("Failed to find a runtime for environment `{name}`")]
    Runtime {
        name: String,
        #[source]
        source: Box<crate::runtime::Error>,
    },
    #[error("Failed to choose an installer for environment `{name}`")]
    Installer {
        name: String,
        #[source]
        source: installer::Error,
    },
    #[error("Failed to create environment `{name}` at `{}`", path.display())]
    Create {
        name: String,
        path: PathBuf,
        #[source]
        source: installer::Error,
    },
    #[error("Failed to install `{what}` into environment `{name}`")]
    Install {
        name: String,
        what: String,
        #[source]
        source: installer::Error,
    },
    #[error("Failed to remove `{what}` from environment `{name}`")]
    Uninstall {
        name: String,
        what: String,
        #[source]
        source: installer::Error,
    },
    #[error("Invalid requirement `{requirement}`: it must not start with `-`")]
    Requirement { requirement: String },
    #[error("Failed to read requirements file `{}`", path.display())]
    RequirementsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Failed to delete environment `{name}`: backends are running in it ({backends}); stop them first, or pass `--force` to stop them and delete"
    )]
    InUse { name: String, backends: String },
    #[error("Failed to stop the backends running in environment `{name}`")]
    StopBackends {
        name: String,
        #[source]
        source: backends::StopError,
    },
    #[error("Failed to delete environment `{name}` at `{}`", path.display())]
    Delete {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read environment `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write environment `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to lock environment `{name}`")]
    Lock {
        name: String,
        #[source]
        source: crate::lock::Error,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Name(_) | Self::Requirement { .. } => C::Invalid,
            Self::NotFound { .. } => C::NotFound,
            Self::Exists { .. } | Self::CaseCollision { .. } | Self::InUse { .. } => C::Conflict,
            Self::Lock { source, .. } => source.code(),
            // A runtime the request named that cannot be used is a bad request here.
            Self::Runtime { source, .. } => match source.code() {
                C::NotFound | C::Invalid => C::Invalid,
                code => code,
            },
            Self::Installer { source, .. } => source.code(),
            Self::Read { .. } | Self::Write { .. } => C::Internal,
            Self::Create { .. }
            | Self::Install { .. }
            | Self::Uninstall { .. }
            | Self::RequirementsFile { .. }
            | Self::StopBackends { .. }
            | Self::Delete { .. } => C::Failed,
        }
    }
}
