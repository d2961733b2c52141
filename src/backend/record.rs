//! The record of a running backend, `<state>/backends/<id>.json` (mode 0600).
//!
//! Records let every `beep-host` process (the CLI while the GUI runs, a detached
//! supervisor) see and stop the backends of the others. The owning supervisor writes it
//! when the backend is ready and rewrites it on each state change; a record whose
//! supervisor and backend processes are both gone (or reused: their start times differ)
//! is stale and removed by whoever finds it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{BackendId, Transport};
use super::status::{BackendState, LastExit};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to write backend record `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to read backend record `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to parse backend record `{}`", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What another process needs to find, call and stop a backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRecord {
    pub id: BackendId,
    /// The Python process.
    pub pid: u32,
    /// Its start time (Unix seconds, as the OS reports it), to detect pid reuse.
    pub start_time: u64,
    pub transport: Transport,
    /// `127.0.0.1:PORT` or the socket path.
    pub address: String,
    /// The bearer token every request must carry.
    pub token: String,
    /// The environment name.
    pub env: String,
    /// Unix seconds of the first start.
    pub started_at: u64,
    /// The `beep-host` process that supervises the backend, and its start time.
    pub supervisor_pid: u32,
    pub supervisor_start_time: u64,
    pub state: BackendState,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub log_file: PathBuf,
    /// The socket file of a pipe backend, removed with the record.
    pub socket: Option<PathBuf>,
}

/// The record file of `id` in `dir`.
pub fn path(dir: &Path, id: &BackendId) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// A request left for the owning supervisor (`stop` or `restart`).
pub fn marker(dir: &Path, id: &BackendId, what: &str) -> PathBuf {
    dir.join(format!("{id}.{what}"))
}

impl BackendRecord {
    /// Write atomically (temp file, then rename) with mode 0600.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, Error> {
        let target = path(dir, &self.id);
        let err = |source| Error::Write {
            path: target.clone(),
            source,
        };
        create_private_dir(dir).map_err(err)?;
        let tmp = dir.join(format!(".{}.{}.tmp", self.id, std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).write(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(err)?;
            std::io::Write::write_all(&mut file, &json).map_err(err)?;
        }
        std::fs::rename(&tmp, &target).map_err(err)?;
        Ok(target)
    }

    pub fn read(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Every readable record in `dir`; unreadable ones are logged and skipped.
    pub fn list(dir: &Path) -> Vec<BackendRecord> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut records: Vec<BackendRecord> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .filter_map(|p| match Self::read(&p) {
                Ok(record) => Some(record),
                Err(err) => {
                    tracing::debug!(%err, "skipping a backend record");
                    None
                }
            })
            .collect();
        records.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        records
    }

    /// Remove the record, its markers and the socket file (missing files are fine).
    pub fn remove(&self, dir: &Path) {
        remove_files(dir, &self.id, self.socket.as_deref());
    }

    /// Is the supervising process still the one that wrote the record?
    pub fn supervisor_alive(&self) -> bool {
        process_start_time(self.supervisor_pid) == Some(self.supervisor_start_time)
    }

    /// Is the backend process still the one that wrote the record?
    pub fn backend_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }

    /// Nobody supervises it and the backend is gone: the record is stale.
    pub fn is_stale(&self) -> bool {
        !self.supervisor_alive() && !self.backend_alive()
    }
}

/// Remove the record of `id`, its markers and `socket`.
pub fn remove_files(dir: &Path, id: &BackendId, socket: Option<&Path>) {
    let _ = std::fs::remove_file(path(dir, id));
    for what in ["stop", "restart"] {
        let _ = std::fs::remove_file(marker(dir, id, what));
    }
    if let Some(socket) = socket {
        let _ = std::fs::remove_file(socket);
    }
}

/// Create `dir` with mode 0700 (Unix) if missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The start time of a live (not zombie) process in Unix seconds.
pub fn process_start_time(pid: u32) -> Option<u64> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
    let mut system = System::new();
    let pid = Pid::from_u32(pid);
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing(),
    );
    let process = system.process(pid)?;
    if matches!(
        process.status(),
        ProcessStatus::Zombie | ProcessStatus::Dead
    ) {
        return None;
    }
    Some(process.start_time())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, pid: u32, start_time: u64) -> BackendRecord {
        BackendRecord {
            id: BackendId::parse(id).unwrap(),
            pid,
            start_time,
            transport: Transport::Pipe,
            address: "/x.sock".into(),
            token: "t".into(),
            env: "admin".into(),
            started_at: 1,
            supervisor_pid: pid,
            supervisor_start_time: start_time,
            state: BackendState::Ready,
            restarts: 0,
            last_exit: None,
            log_file: "/x.log".into(),
            socket: None,
        }
    }

    #[test]
    fn round_trip_private_and_stale() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let live = record("aa", me, process_start_time(me).unwrap());
        let path = live.write(dir.path()).unwrap();
        assert!(path.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!live.is_stale());
        let reused = record("bb", me, 1);
        reused.write(dir.path()).unwrap();
        assert!(reused.is_stale());
        let dead = record("cc", u32::MAX - 7, 1);
        assert!(dead.is_stale());
        let listed = BackendRecord::list(dir.path());
        assert_eq!(listed.len(), 2);
        reused.remove(dir.path());
        assert_eq!(BackendRecord::list(dir.path()), vec![live]);
    }
}
