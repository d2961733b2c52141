//! Exclusive lock files: one process at a time works on a runtime or an environment.
//!
//! [`LockFile::acquire`] is the one way to wait for a lock: it polls (no thread is left
//! blocked behind a waiter that gave up), says once that it waits, and gives up at a
//! timeout or a cancel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

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
    #[error("Cancelled while waiting for `{what}` (lock `{}`)", path.display())]
    Cancelled { what: String, path: PathBuf },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Busy { .. } => C::Conflict,
            Self::Cancelled { .. } => C::Cancelled,
            Self::Open { .. } | Self::Take { .. } => C::Internal,
        }
    }
}

/// How [`LockFile::acquire`] waits while another holder has the lock.
#[derive(Default, Clone, Copy)]
pub struct Wait<'a> {
    /// Give up with [`Error::Busy`] after this long; `None` waits until the lock is free.
    pub timeout: Option<Duration>,
    /// Give up with [`Error::Cancelled`] when this is cancelled.
    pub cancel: Option<&'a CancellationToken>,
    /// Called once, when the lock is found taken (e.g. to say "waiting for ...").
    pub on_wait: Option<&'a (dyn Fn() + Send + Sync)>,
}

impl std::fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("timeout", &self.timeout)
            .field("cancel", &self.cancel.is_some())
            .field("on_wait", &self.on_wait.is_some())
            .finish()
    }
}

/// How often a waiter tries again: from the first to the last interval, doubling.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_LAST: Duration = Duration::from_millis(100);

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: fs_err::File,
    path: PathBuf,
}

impl LockFile {
    fn open(path: &Path) -> Result<fs_err::File, Error> {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        }
        fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Take the lock on `path` (naming it `what` in errors), waiting as `wait` says while
    /// another holder has it.
    pub async fn acquire(path: &Path, what: &str, wait: Wait<'_>) -> Result<Self, Error> {
        match Self::try_acquire(path, what) {
            Err(Error::Busy { .. }) => {}
            taken => return taken,
        }
        if let Some(on_wait) = wait.on_wait {
            on_wait();
        }
        let deadline = wait.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut interval = POLL_FIRST;
        loop {
            let mut pause = interval;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::Busy {
                        what: what.to_string(),
                        path: path.to_path_buf(),
                    });
                }
                pause = pause.min(left);
            }
            let cancelled = async {
                match wait.cancel {
                    Some(cancel) => cancel.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancelled => {
                    return Err(Error::Cancelled {
                        what: what.to_string(),
                        path: path.to_path_buf(),
                    });
                }
                () = tokio::time::sleep(pause) => {}
            }
            match Self::try_acquire(path, what) {
                Err(Error::Busy { .. }) => {}
                taken => return taken,
            }
            interval = (interval * 2).min(POLL_LAST);
        }
    }

    /// Wait until the lock is ours, blocking the thread (for synchronous callers).
    pub fn acquire_blocking(path: &Path) -> Result<Self, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn lock_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("locks").join("thing.lock")
    }

    #[tokio::test]
    async fn a_free_lock_is_taken_at_once_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let waited = AtomicUsize::new(0);
        let on_wait = || {
            waited.fetch_add(1, Ordering::SeqCst);
        };
        let lock = LockFile::acquire(
            &lock_in(&dir),
            "thing",
            Wait {
                on_wait: Some(&on_wait),
                ..Wait::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(lock.path(), lock_in(&dir));
        assert_eq!(waited.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_second_holder_waits_says_so_once_and_gets_the_lock_when_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_in(&dir);
        let first = LockFile::try_acquire(&path, "thing").unwrap();
        assert!(matches!(
            LockFile::try_acquire(&path, "thing"),
            Err(Error::Busy { .. })
        ));
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            drop(first);
        });
        let waited = AtomicUsize::new(0);
        let on_wait = || {
            waited.fetch_add(1, Ordering::SeqCst);
        };
        let started = Instant::now();
        let second = LockFile::acquire(
            &path,
            "thing",
            Wait {
                timeout: Some(Duration::from_secs(10)),
                on_wait: Some(&on_wait),
                ..Wait::default()
            },
        )
        .await
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(140));
        assert_eq!(waited.load(Ordering::SeqCst), 1);
        release.await.unwrap();
        // Held again: a third party is refused.
        assert!(LockFile::try_acquire(&path, "thing").is_err());
        drop(second);
        LockFile::try_acquire(&path, "thing").unwrap();
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_timeout_and_the_holder_keeps_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_in(&dir);
        let _first = LockFile::try_acquire(&path, "thing").unwrap();
        let started = Instant::now();
        let err = LockFile::acquire(
            &path,
            "thing",
            Wait {
                timeout: Some(Duration::from_millis(200)),
                ..Wait::default()
            },
        )
        .await
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert_eq!(err.code(), crate::ErrorCode::Conflict);
        assert!(
            elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert!(LockFile::try_acquire(&path, "thing").is_err());
    }

    #[tokio::test]
    async fn a_waiter_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_in(&dir);
        let first = LockFile::try_acquire(&path, "thing").unwrap();
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            canceller.cancel();
        });
        let started = Instant::now();
        let err = LockFile::acquire(
            &path,
            "thing",
            Wait {
                cancel: Some(&cancel),
                ..Wait::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // The waiter left nothing behind: once the holder lets go, the lock is free.
        drop(first);
        LockFile::try_acquire(&path, "thing").unwrap();
    }
}
