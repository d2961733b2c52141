//! Python runtimes: managed python-build-standalone installs and adopted interpreters.
//!
//! The filesystem is the truth: a managed runtime is a directory under
//! `<data>/runtimes/<key>` with `beep-runtime.json` beside its files; adopted ones are
//! discovered on PATH, in pyenv and in conda each time they are listed.

pub mod catalog;
pub mod discover;
pub mod download;
pub mod extract;
pub mod install;
pub mod platform;
pub mod sysconfig;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::{Config, Paths};

pub use catalog::{Catalog, CatalogEntry};
pub use install::InstallOptions;

/// Where a runtime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Installed by Beep Python Host into its data dir; `remove` deletes it.
    Managed,
    /// Found on the machine; never deleted by Beep Python Host.
    Adopted,
}

/// A Python interpreter the host can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    /// Stable name: `cpython-3.12.7-linux-x86_64-gnu` (managed) or `adopted-3.11.7-1a2b3c` (adopted).
    pub key: String,
    /// Full version, e.g. `3.12.7`.
    pub version: String,
    /// The installation prefix (managed: its directory).
    pub path: PathBuf,
    /// The interpreter executable.
    pub python: PathBuf,
    pub kind: RuntimeKind,
    /// Whether this is the configured default runtime.
    pub default: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No runtime matches `{0}`; see `beep-host runtime list` (and `--available`)")]
    NotFound(String),
    #[error("No default runtime is set; run `beep-host init` or `beep-host runtime default <key>`")]
    NoDefault,
    #[error(
        "The default runtime `{0}` is missing; run `beep-host init` or `beep-host runtime default <key>`"
    )]
    DefaultMissing(String),
    #[error("Runtime `{0}` is adopted: its files belong to the machine and are never removed")]
    RemoveAdopted(String),
    #[error(
        "Invalid runtime request `{0}`: expected a version (`3.12`, `3.12.7`), a key or a path"
    )]
    InvalidRequest(String),
    #[error("No catalog entry for Python `{request}` on {platform}")]
    NoCatalogEntry { request: String, platform: String },
    #[error("Failed to run interpreter `{}`", path.display())]
    Interpreter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Interpreter `{}` does not work: {message}", path.display())]
    Broken { path: PathBuf, message: String },
    #[error("Installation cancelled")]
    Cancelled,
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error(transparent)]
    Download(#[from] download::Error),
    #[error(transparent)]
    Extract(#[from] extract::Error),
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A network failure whose partial download a later run can resume.
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            Self::Download(
                download::Error::GaveUp { .. }
                    | download::Error::Request { .. }
                    | download::Error::Status { .. }
            )
        )
    }
}

/// The runtime service: list, resolve, install, remove and choose the default.
#[derive(Debug, Clone)]
pub struct Runtimes {
    paths: Paths,
    config: Config,
}

impl Runtimes {
    pub fn new(paths: Paths, config: Config) -> Self {
        Self { paths, config }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Managed runtimes (sorted newest version first), then adopted ones.
    pub fn list(&self) -> Result<Vec<Runtime>, Error> {
        let mut all = install::list_managed(&self.paths)?;
        all.extend(discover::adopted(&self.paths));
        let default = self.config.default_runtime.as_deref();
        for runtime in &mut all {
            runtime.default = Some(runtime.key.as_str()) == default;
        }
        Ok(all)
    }

    /// Find an installed or adopted runtime by key, version prefix (`3.12`) or interpreter path.
    pub fn find(&self, request: &str) -> Result<Runtime, Error> {
        if request.is_empty() {
            return Err(Error::InvalidRequest(request.to_string()));
        }
        // A managed key is answered from its directory alone, without discovering interpreters.
        if let Some(mut found) = install::read_managed_key(&self.paths, request) {
            found.default = self.config.default_runtime.as_deref() == Some(found.key.as_str());
            return Ok(found);
        }
        let all = self.list()?;
        if let Some(found) = all.iter().find(|r| r.key == request) {
            return Ok(found.clone());
        }
        if looks_like_path(request) {
            let path = Path::new(request);
            let canonical =
                fs_err::canonicalize(path).map_err(|_| Error::NotFound(request.to_string()))?;
            if let Some(found) = all
                .iter()
                .find(|r| fs_err::canonicalize(&r.python).is_ok_and(|p| p == canonical))
            {
                return Ok(found.clone());
            }
            return discover::adopt_path(&self.paths, path)
                .map(|mut r| {
                    r.default = self.config.default_runtime.as_deref() == Some(r.key.as_str());
                    r
                })
                .ok_or_else(|| Error::NotFound(request.to_string()));
        }
        if is_version_request(request) {
            // Managed first, then adopted; within a kind the list is newest first.
            let mut matches: Vec<&Runtime> = all
                .iter()
                .filter(|r| version_matches(&r.version, request))
                .collect();
            matches.sort_by_key(|r| {
                (
                    r.kind != RuntimeKind::Managed,
                    std::cmp::Reverse(version_tuple(&r.version)),
                )
            });
            if let Some(found) = matches.first() {
                return Ok((*found).clone());
            }
        }
        Err(Error::NotFound(request.to_string()))
    }

    /// The configured default runtime.
    pub fn default_runtime(&self) -> Result<Runtime, Error> {
        let key = self
            .config
            .default_runtime
            .as_deref()
            .ok_or(Error::NoDefault)?;
        match self.find(key) {
            Ok(mut runtime) => {
                runtime.default = true;
                Ok(runtime)
            }
            Err(Error::NotFound(_)) => Err(Error::DefaultMissing(key.to_string())),
            Err(e) => Err(e),
        }
    }

    /// A runtime by request, or the default when `request` is `None`.
    pub fn resolve(&self, request: Option<&str>) -> Result<Runtime, Error> {
        match request {
            Some(r) => self.find(r),
            None => self.default_runtime(),
        }
    }

    /// Make the runtime named by `request` the default and save the config file.
    pub fn set_default(&mut self, request: &str) -> Result<Runtime, Error> {
        let mut runtime = self.find(request)?;
        let mut file = Config::load_file(&self.paths)?;
        file.default_runtime = Some(runtime.key.clone());
        file.save(&self.paths)?;
        self.config.default_runtime = Some(runtime.key.clone());
        runtime.default = true;
        Ok(runtime)
    }

    /// Forget the default runtime (after it was removed).
    pub fn clear_default(&mut self) -> Result<(), Error> {
        let mut file = Config::load_file(&self.paths)?;
        file.default_runtime = None;
        file.save(&self.paths)?;
        self.config.default_runtime = None;
        Ok(())
    }

    /// Delete a managed runtime. Adopted runtimes are refused.
    pub fn remove(&self, request: &str) -> Result<Runtime, Error> {
        let runtime = self.find(request)?;
        if runtime.kind == RuntimeKind::Adopted {
            return Err(Error::RemoveAdopted(runtime.key));
        }
        install::remove_managed(&self.paths, &runtime)?;
        Ok(runtime)
    }

    /// The catalog in force (built in, or replaced by config / `BEEP_PYTHON_CATALOG`).
    pub async fn catalog(&self) -> Result<Catalog, Error> {
        Ok(Catalog::load(
            self.config.catalog.as_deref(),
            self.config.mirror.as_deref(),
        )
        .await?)
    }
}

fn looks_like_path(request: &str) -> bool {
    request.contains('/') || request.contains('\\')
}

/// `3`, `3.12`, `3.12.7`.
pub fn is_version_request(request: &str) -> bool {
    let parts: Vec<&str> = request.split('.').collect();
    !parts.is_empty()
        && parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `version` (`3.12.7`) is matched by the request prefix (`3.12`).
pub fn version_matches(version: &str, request: &str) -> bool {
    let v: Vec<&str> = version.split('.').collect();
    let r: Vec<&str> = request.split('.').collect();
    r.len() <= v.len() && r.iter().zip(&v).all(|(a, b)| a == b)
}

/// Numeric parts of a version for ordering; non-numeric tails count as 0.
pub fn version_tuple(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        })
        .collect()
}
