//! Exclusive lock files: one process at a time works on a runtime or an environment.

use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to open lock file `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to take lock `{}`", path.display())]
    Take {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{what}` is busy: another operation holds `{}`", path.display())]
    Busy { what: String, path: PathBuf },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Busy { .. } => C::Conflict,
            Self::Open { .. } | Self::Take { .. } => C::Internal,
        }
    }
}

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    fn open(path: &Path) -> Result<File, Error> {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Wait until the lock is ours (blocking; call from `spawn_blocking` in async code).
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        let file = Self::open(path)?;
        file.lock().map_err(|source| Error::Take {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Take the lock now or fail with [`Error::Busy`] naming `what`.
    pub fn try_acquire(path: &Path, what: &str) -> Result<Self, Error> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                path: path.to_path_buf(),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
                what: what.to_string(),
                path: path.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Take {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
