//! The daemon: the one owner of a home's backends.
//!
//! `beep-host daemon` owns every backend of a home (start, stop, restart policy, stats,
//! logs, history) and serves the host API. The CLI, the app and the host API's clients
//! are its clients: a client that finds no daemon starts one ([`DaemonClient::connect`]),
//! in its own session with its log in `<state>/logs/daemon.log`. One daemon per home (a
//! lock file); it exits when it has had no backend and no client for a while, and when its
//! home is removed. Its backends die with it (Linux `PR_SET_PDEATHSIG` and the backends'
//! own parent check; a job object on Windows); the next daemon shows them as `lost`.

mod client;
pub mod protocol;
mod running;
mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Paths;

pub use client::{DaemonClient, runs_the_daemon};
pub use protocol::{Listing, StartSpec};
pub use running::DaemonBackends;
pub use server::{Daemon, Options};

/// The file that names the running daemon: `<state>/daemon.json`.
pub const RECORD_FILE: &str = "daemon.json";
/// Seconds of idleness before the daemon exits (tests set it short).
pub const IDLE_ENV: &str = "BEEP_HOST_DAEMON_IDLE";
/// The executable a client starts as the daemon (default: `beep-host` beside the caller).
pub const EXE_ENV: &str = "BEEP_HOST_DAEMON_EXE";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Failed to start the daemon for `{}`: another one serves it{}{}",
        home.display(),
        pid.map(|p| format!(" (pid {p}")).unwrap_or_default(),
        socket.as_ref().map(|s| format!(", socket `{s}`)")).unwrap_or_else(|| if pid.is_some() { ")".into() } else { String::new() })
    )]
    Running {
        pid: Option<u32>,
        socket: Option<String>,
        home: PathBuf,
    },
    #[error(transparent)]
    Lock(crate::lock::Error),
    #[error("Failed to listen on `{name}`")]
    Bind {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] crate::host::Error),
    #[error("Failed to find the `beep-host` executable to start the daemon (looked at `{}`); set `{EXE_ENV}`", looked.display())]
    ExeMissing { looked: PathBuf },
    #[error("Failed to start the daemon `{}`", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to reach the daemon: it did not answer within {secs} s. Its log: `{}`{}", log.display(), last_lines)]
    NoAnswer {
        secs: u64,
        log: PathBuf,
        last_lines: String,
    },
    #[error("Failed to talk to the daemon at `{name}`")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "The running daemon (pid {pid}) is version {theirs} (protocol {their_protocol}); this program is version {ours} (protocol {}). Stop it with `beep-host daemon stop` (its backends stop too), then try again",
        protocol::PROTOCOL
    )]
    Version {
        pid: u32,
        theirs: String,
        their_protocol: u32,
        ours: String,
    },
    /// The daemon's failure. `message` is the CLI's text; `plain` (the text without CLI
    /// advice) and `hint` are what other interfaces show (see [`crate::error::advised`]).
    #[error("{message}")]
    Remote {
        code: protocol::FailureCode,
        message: String,
        plain: Option<String>,
        hint: Option<crate::error::Hint>,
    },
    #[error("Failed to read the daemon's answer")]
    BadAnswer(#[source] serde_json::Error),
}

impl Error {
    /// What kind of failure this is; a daemon's answer keeps the code it was sent with.
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::Running { .. } => C::Conflict,
            Self::Lock(e) => e.code(),
            Self::Host(e) => e.code(),
            Self::Remote { code, .. } => (*code).into(),
            Self::Record { .. } | Self::BadAnswer(_) => C::Internal,
            Self::Bind { .. }
            | Self::ExeMissing { .. }
            | Self::Spawn { .. }
            | Self::NoAnswer { .. }
            | Self::Io { .. }
            | Self::Version { .. } => C::Failed,
        }
    }
}

/// What `<state>/daemon.json` holds (mode 0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    pub pid: u32,
    pub start_time: u64,
    pub version: String,
    pub protocol: u32,
    /// The Unix socket path or the Windows pipe name.
    pub socket: String,
    /// The host API: `http://127.0.0.1:PORT` and `127.0.0.1:PORT`.
    pub http: Option<String>,
    pub grpc: Option<String>,
    pub started_at: u64,
}

impl DaemonRecord {
    pub fn path(paths: &Paths) -> PathBuf {
        paths.state.join(RECORD_FILE)
    }

    pub fn read(paths: &Paths) -> Option<Self> {
        let bytes = fs_err::read(Self::path(paths)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Is the process the record names still the daemon that wrote it?
    pub fn alive(&self) -> bool {
        crate::backend::record::process_start_time(self.pid) == Some(self.start_time)
    }

    fn write(&self, paths: &Paths) -> Result<(), Error> {
        let path = Self::path(paths);
        let err = |source| Error::Record {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        write_private(&path, &json).map_err(err)
    }

    fn remove(paths: &Paths) {
        let _ = fs_err::remove_file(Self::path(paths));
    }
}

/// Write a file with mode 0600 from the start, through a temp file and a rename; a failed
/// write leaves no temp file.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = (|| {
        let mut options = fs_err::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        drop(file);
        fs_err::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    written
}

/// The daemon's socket: `<state>/daemon/daemon.sock`, in a directory only the user can
/// enter.
pub fn socket_path(paths: &Paths) -> PathBuf {
    paths.state.join("daemon").join("daemon.sock")
}

/// The daemon's pipe on Windows: one name per home.
pub fn pipe_name(paths: &Paths) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(paths.state.to_string_lossy().as_bytes());
    format!(r"\\.\pipe\beep-host-daemon-{}", &hex::encode(digest)[..16])
}
