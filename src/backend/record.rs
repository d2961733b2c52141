//! The record of a backend, `<state>/backends/<id>.json` (mode 0600): the daemon's
//! persisted backend table.
//!
//! The daemon writes a record when a backend is ready and rewrites it on each state
//! change; an ended backend keeps its record (with its last exit) until it is removed.
//! The next daemon reads the records its predecessor left: those still marked running
//! were lost with it (their processes die with their owner).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{BackendId, BackendOptions, RestartPolicy, RuntimeRef, Transport};
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

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        C::Internal
    }
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
    /// The environment name; empty for a backend on a runtime.
    pub env: String,
    /// The runtime a backend runs on directly (absent in an environment, and in records
    /// written before backends could run on runtimes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeRef>,
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
    /// The restart policy (the next daemon restarts a lost `on-failure` backend).
    #[serde(default)]
    pub restart: RestartPolicy,
    /// A project's declarations, so the next daemon starts it again as declared.
    #[serde(default)]
    pub options: BackendOptions,
}

/// A record that cannot be read: which file, what is wrong, and the process it names
/// when that much can still be found in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    pub id: Option<BackendId>,
    pub path: PathBuf,
    pub error: String,
    /// The backend process (pid, start time) found in the damaged text.
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
}

impl Unreadable {
    /// Is the process the damaged record names still the one it started?
    pub fn process_alive(&self) -> bool {
        match (self.pid, self.start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            _ => false,
        }
    }
}

/// The number after `"key":` in damaged JSON text.
fn salvage_number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The record file of `id` in `dir`.
pub fn path(dir: &Path, id: &BackendId) -> PathBuf {
    dir.join(format!("{id}.json"))
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
        let written = (|| {
            let mut options = fs_err::OpenOptions::new();
            options.create(true).write(true).truncate(true);
            #[cfg(unix)]
            fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            std::io::Write::write_all(&mut file, &json)?;
            file.sync_data()?;
            drop(file);
            fs_err::rename(&tmp, &target)
        })();
        if let Err(source) = written {
            // A full disk must not leave a zero-byte temp file behind.
            let _ = fs_err::remove_file(&tmp);
            return Err(err(source));
        }
        Ok(target)
    }

    pub fn read(path: &Path) -> Result<Self, Error> {
        let bytes = fs_err::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Every record in `dir`, and the ones that cannot be read (with what is wrong).
    /// Leftover temp files of an interrupted write are removed.
    pub fn scan(dir: &Path) -> (Vec<BackendRecord>, Vec<Unreadable>) {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return (Vec::new(), Vec::new());
        };
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        for path in entries.flatten().map(|e| e.path()) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs_err::remove_file(&path);
                continue;
            }
            if name.starts_with('.') || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match Self::read(&path) {
                Ok(record) => records.push(record),
                Err(err) => {
                    let text = String::from_utf8_lossy(&fs_err::read(&path).unwrap_or_default())
                        .into_owned();
                    let source = std::error::Error::source(&err)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default();
                    unreadable.push(Unreadable {
                        id: BackendId::parse(name.trim_end_matches(".json")).ok(),
                        error: format!("{err}{source}"),
                        pid: salvage_number(&text, "pid").and_then(|p| u32::try_from(p).ok()),
                        start_time: salvage_number(&text, "start_time"),
                        path,
                    });
                }
            }
        }
        records.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        (records, unreadable)
    }

    /// Every readable record in `dir`.
    pub fn list(dir: &Path) -> Vec<BackendRecord> {
        Self::scan(dir).0
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
        self.pid != 0 && process_start_time(self.pid) == Some(self.start_time)
    }
}

/// Remove the record of `id` and `socket`.
pub fn remove_files(dir: &Path, id: &BackendId, socket: Option<&Path>) {
    let _ = fs_err::remove_file(path(dir, id));
    if let Some(socket) = socket {
        let _ = fs_err::remove_file(socket);
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
            runtime: None,
            started_at: 1,
            supervisor_pid: pid,
            supervisor_start_time: start_time,
            state: BackendState::Ready,
            restarts: 0,
            last_exit: None,
            log_file: "/x.log".into(),
            socket: None,
            restart: RestartPolicy::Never,
            options: BackendOptions::default(),
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
            let mode = fs_err::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(live.backend_alive());
        let reused = record("bb", me, 1);
        reused.write(dir.path()).unwrap();
        assert!(!reused.backend_alive());
        let dead = record("cc", u32::MAX - 7, 1);
        assert!(!dead.backend_alive());
        let listed = BackendRecord::list(dir.path());
        assert_eq!(listed.len(), 2);
        reused.remove(dir.path());
        assert_eq!(BackendRecord::list(dir.path()), vec![live]);
    }

    /// A record written before backends could run on runtimes (no `runtime`) still reads,
    /// as a backend in its environment; one on a runtime keeps it.
    #[test]
    fn records_without_a_runtime_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut on_runtime = record("ab", 1, 1);
        on_runtime.env = String::new();
        on_runtime.runtime = Some(RuntimeRef {
            key: "cpython-3.12.7-linux-x86_64-gnu".into(),
            python: "/r/bin/python3".into(),
        });
        let path = on_runtime.write(dir.path()).unwrap();
        assert_eq!(BackendRecord::read(&path).unwrap(), on_runtime);
        let mut old: serde_json::Value = serde_json::to_value(record("cd", 1, 1)).unwrap();
        old.as_object_mut().unwrap().remove("runtime");
        let old_path = dir.path().join("cd.json");
        fs_err::write(&old_path, serde_json::to_vec(&old).unwrap()).unwrap();
        let read = BackendRecord::read(&old_path).unwrap();
        assert_eq!(read.runtime, None);
        assert_eq!(
            crate::backend::Place::from_fields(&read.env, read.runtime.as_ref())
                .unwrap()
                .to_string(),
            "environment `admin`"
        );
    }

    #[test]
    fn damaged_records_are_reported_with_the_process_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let live = record("abcd", me, process_start_time(me).unwrap());
        let path = live.write(dir.path()).unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        // Cut after the start time: the pid and start time are still in the text.
        let cut = text.find("\"transport\"").unwrap();
        fs_err::write(&path, &text[..cut]).unwrap();
        fs_err::write(dir.path().join(".abcd.1.tmp"), b"").unwrap();
        let (records, unreadable) = BackendRecord::scan(dir.path());
        assert!(records.is_empty());
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        let bad = &unreadable[0];
        assert_eq!(bad.id.as_ref().map(BackendId::as_str), Some("abcd"));
        assert_eq!(bad.path, path);
        assert!(bad.error.contains("Failed to parse"), "{}", bad.error);
        assert_eq!(bad.pid, Some(me));
        assert!(bad.process_alive());
        assert!(
            !dir.path().join(".abcd.1.tmp").exists(),
            "temp files are swept"
        );
    }
}
