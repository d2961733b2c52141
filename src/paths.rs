//! Where Beep Python Host keeps its data, configuration, cache and state.
//!
//! `BEEP_HOST_HOME=<dir>` puts all four under one directory (every test uses it);
//! otherwise the platform's directories from `directories::ProjectDirs`.

use std::path::{Path, PathBuf};

/// The environment variable that roots every directory under one place.
pub const HOME_ENV: &str = "BEEP_HOST_HOME";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to find a home directory for Beep Python Host; set `{HOME_ENV}`")]
    NoHome,
    #[error("Failed to create directory `{}`", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::NoHome | Self::Create { .. } => C::Internal,
        }
    }
}

/// The directory roots. Subdirectories are named by methods so every caller agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub data: PathBuf,
    pub config: PathBuf,
    pub cache: PathBuf,
    pub state: PathBuf,
}

impl Paths {
    /// Read `BEEP_HOST_HOME`, else the platform directories.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var_os(HOME_ENV) {
            Some(home) if !home.is_empty() => Ok(Self::under(PathBuf::from(home))),
            _ => {
                let dirs = directories::ProjectDirs::from("dev", "Beep", "beep-host")
                    .ok_or(Error::NoHome)?;
                let state = dirs
                    .state_dir()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dirs.data_local_dir().join("state"));
                Ok(Self {
                    data: dirs.data_dir().to_path_buf(),
                    config: dirs.config_dir().to_path_buf(),
                    cache: dirs.cache_dir().to_path_buf(),
                    state,
                })
            }
        }
    }

    /// Every root under one directory.
    pub fn under(home: PathBuf) -> Self {
        Self {
            data: home.join("data"),
            config: home.join("config"),
            cache: home.join("cache"),
            state: home.join("state"),
        }
    }

    /// Installed managed runtimes, one directory each.
    pub fn runtimes(&self) -> PathBuf {
        self.data.join("runtimes")
    }
    /// Virtual environments, one directory each.
    pub fn envs(&self) -> PathBuf {
        self.data.join("envs")
    }
    /// Tools provisioned by the host (uv).
    pub fn tools(&self) -> PathBuf {
        self.data.join("tools")
    }
    /// Downloaded archives (`<file>.partial` while downloading).
    pub fn downloads(&self) -> PathBuf {
        self.cache.join("downloads")
    }
    /// uv's package cache (`UV_CACHE_DIR` for every uv the host runs).
    pub fn uv_cache(&self) -> PathBuf {
        self.cache.join("uv")
    }
    /// The TOML configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }
    /// One JSON record per running backend.
    pub fn backend_records(&self) -> PathBuf {
        self.state.join("backends")
    }
    /// Backend log files.
    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }
    /// Sockets of pipe backends (mode 0700).
    pub fn sockets(&self) -> PathBuf {
        self.state.join("run")
    }
    /// Lock files.
    pub fn locks(&self) -> PathBuf {
        self.state.join("locks")
    }

    /// Create `dir` (and parents) if missing.
    pub fn ensure(dir: &Path) -> Result<(), Error> {
        fs_err::create_dir_all(dir).map_err(|source| Error::Create {
            path: dir.to_path_buf(),
            source,
        })
    }
}

/// Overrides where the shipped `python/` directory (the `beep_backend` package) is.
pub const PYTHONPATH_ENV: &str = "BEEP_BACKEND_PYTHONPATH";

/// Where the shipped `python/` directory is for the executable `exe`: `$BEEP_BACKEND_PYTHONPATH`,
/// else upward from the executable (a cargo build: `<repo>/python`), else
/// `<exe dir>/../share/beep-host/python`.
pub fn python_package_dir(exe: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(PYTHONPATH_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let has_package = |dir: &Path| dir.join("beep_backend").join("__init__.py").is_file();
    if let Some(found) = exe
        .ancestors()
        .skip(1)
        .map(|a| a.join("python"))
        .find(|c| has_package(c))
    {
        return Some(found);
    }
    let shared = exe
        .parent()?
        .join("..")
        .join("share")
        .join("beep-host")
        .join("python");
    has_package(&shared).then_some(shared)
}
