//! Python runtimes: managed python-build-standalone installs and adopted interpreters.
//!
//! The filesystem is the truth: a managed runtime is a directory under
//! `<data>/runtimes/<key>` with `beep-runtime.json` beside its files; adopted ones are
//! discovered on PATH, in pyenv and in conda each time they are listed.

pub mod catalog;
pub mod discover;
pub mod download;
pub mod embedded;
pub mod extract;
pub mod install;
pub mod platform;
pub mod sysconfig;
pub mod version;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::{Config, Paths, Progress, Reporter};

pub use catalog::{Catalog, CatalogEntry};
pub use install::{InstallOptions, Installed};
pub use version::{
    InstallRequest, VersionRequest, is_version_request, version_matches, version_tuple,
};

/// Where a runtime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Installed by Beep Python Host into its data dir; `remove` deletes it.
    Managed,
    /// Found on the machine; never deleted by Beep Python Host.
    Adopted,
    /// python.org's Windows embeddable package, installed from its zip (`runtime install
    /// <zip>`): runs code and backends itself; no environments can be made from it.
    Embedded,
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
    /// Why this runtime is unusable (a dangling link, an unreadable `beep-runtime.json`);
    /// `None` for a working one. A broken managed runtime is listed so it can be removed.
    #[serde(default)]
    pub problem: Option<String>,
}

/// The oldest Python the backends run on (`beep_backend` needs 3.8).
pub const BACKEND_MIN_VERSION: (u64, u64) = (3, 8);

impl Runtime {
    /// What will not work with this runtime, if anything: backends need Python 3.8 or newer.
    pub fn backend_warning(&self) -> Option<String> {
        let v = version_tuple(&self.version);
        let (major, minor) = (
            v.first().copied().unwrap_or(0),
            v.get(1).copied().unwrap_or(0),
        );
        ((major, minor) < BACKEND_MIN_VERSION).then(|| {
            format!(
                "Python {} is older than {}.{}: environments made from `{}` work, but backends (`beep-host start`) will not run in them (they need Python {}.{} or newer)",
                self.version,
                BACKEND_MIN_VERSION.0,
                BACKEND_MIN_VERSION.1,
                self.key,
                BACKEND_MIN_VERSION.0,
                BACKEND_MIN_VERSION.1,
            )
        })
    }
}

/// What uses a runtime: environments built on it, the backends running in them, and the
/// backends running on it directly (`beep-host start --runtime`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeUsers {
    /// Names of the environments whose base interpreter is this runtime's.
    pub environments: Vec<String>,
    /// `<id> (in <env>)` of each backend running in one of them.
    pub backends: Vec<String>,
    /// Ids of the backends running on the runtime itself.
    #[serde(default)]
    pub runtime_backends: Vec<String>,
}

impl RuntimeUsers {
    pub fn is_empty(&self) -> bool {
        self.environments.is_empty() && self.backends.is_empty() && self.runtime_backends.is_empty()
    }
}

impl std::fmt::Display for RuntimeUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.environments.is_empty() {
            let quoted: Vec<String> = self.environments.iter().map(|e| format!("`{e}`")).collect();
            parts.push(format!("environments {}", quoted.join(", ")));
            if !self.backends.is_empty() {
                parts.push(format!(
                    "backends running in them: {}",
                    self.backends.join(", ")
                ));
            }
        }
        if !self.runtime_backends.is_empty() {
            parts.push(format!(
                "backends running on it: {}",
                self.runtime_backends.join(", ")
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// What `remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub runtime: Runtime,
    /// What used it (empty unless forced): these environments no longer work and these
    /// backends fail on their next import.
    pub broken: RuntimeUsers,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No runtime matches `{request}`; see `beep-host runtime list` (and `--available`)")]
    NotFound { request: String },
    #[error("No default runtime is set; run `beep-host init` or `beep-host runtime default <key>`")]
    NoDefault,
    #[error(
        "The default runtime `{key}` is missing; run `beep-host init` or `beep-host runtime default <key>`"
    )]
    DefaultMissing { key: String },
    #[error("Runtime `{key}` is adopted: its files belong to the machine and are never removed")]
    RemoveAdopted { key: String },
    #[error(
        "Failed to remove runtime `{key}`: it is used by {users}; stop or delete them first, or pass `--force` to remove it anyway (they stop working)"
    )]
    InUse { key: String, users: RuntimeUsers },
    #[error(
        "Runtime `{key}` is broken: {problem}; remove it with `beep-host runtime remove {key}`"
    )]
    Unusable { key: String, problem: String },
    #[error("Failed to use interpreter `{}`: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error(
        "Invalid runtime request `{request}`: expected a version (`3.12`, `3.12.7`), a key or a path"
    )]
    InvalidRequest { request: String },
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
    #[error(
        "Runtime `{key}` is python.org's embeddable package, which cannot make environments (it has no venv module); run code on it directly, or install a full runtime for environments (`beep-host runtime install {version}`)"
    )]
    NoEnvironments { key: String, version: String },
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
    #[error("Failed to use `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to finish the background work of an install")]
    Task {
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("Failed to find what uses runtime `{key}`")]
    Users {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::NotFound { .. } | Self::NoCatalogEntry { .. } => C::NotFound,
            Self::RemoveAdopted { .. } | Self::InUse { .. } | Self::NoEnvironments { .. } => {
                C::Conflict
            }
            Self::Refused { .. } | Self::InvalidRequest { .. } => C::Invalid,
            Self::Cancelled => C::Cancelled,
            Self::NoDefault
            | Self::DefaultMissing { .. }
            | Self::Unusable { .. }
            | Self::Interpreter { .. }
            | Self::Broken { .. } => C::Failed,
            Self::Catalog(e) => e.code(),
            Self::Download(e) => e.code(),
            Self::Extract(e) => e.code(),
            Self::Lock(e) => e.code(),
            Self::Config(e) => e.code(),
            Self::Io { .. } | Self::Task { .. } | Self::Users { .. } => C::Internal,
        }
    }
}

impl Error {
    /// An I/O error on `path`, for `map_err`.
    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        move |source| Self::Io { path, source }
    }

    /// A background task that panicked or was cancelled, for `map_err`.
    pub(crate) fn task(source: tokio::task::JoinError) -> Self {
        Self::Task { source }
    }

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
        let default = self.default_matcher();
        // A default given by path is listed even where discovery does not look.
        if let (DefaultMatcher::Python(Some(python)), false) =
            (&default, all.iter().any(|r| default.matches(r)))
            && let Ok(runtime) = discover::adopt_path(&self.paths, python)
        {
            all.push(runtime);
        }
        for runtime in &mut all {
            runtime.default = default.matches(runtime);
        }
        Ok(all)
    }

    /// What the config's `default_runtime` names: a key, or an interpreter path.
    fn default_matcher(&self) -> DefaultMatcher {
        match self.config.default_runtime.as_deref() {
            None => DefaultMatcher::None,
            Some(value) if looks_like_path(value) => {
                DefaultMatcher::Python(fs_err::canonicalize(value).ok())
            }
            Some(value) => DefaultMatcher::Key(value.to_string()),
        }
    }

    /// Find an installed or adopted runtime by key, version prefix (`3.12`) or interpreter path.
    /// A path is resolved without discovering the machine's other interpreters.
    pub fn find(&self, request: &str) -> Result<Runtime, Error> {
        if request.is_empty() {
            return Err(Error::InvalidRequest {
                request: request.to_string(),
            });
        }
        // A managed key is answered from its directory alone, without discovering interpreters.
        if let Some(mut found) = install::read_managed_key(&self.paths, request) {
            found.default = self.default_matcher().matches(&found);
            return Ok(found);
        }
        if looks_like_path(request) {
            let mut found = self.find_path(Path::new(request))?;
            found.default = self.default_matcher().matches(&found);
            return Ok(found);
        }
        let all = self.list()?;
        if let Some(found) = all.iter().find(|r| r.key == request) {
            return Ok(found.clone());
        }
        if let Some(version) = VersionRequest::parse(request) {
            // Managed first, then adopted; within a kind the list is newest first.
            let mut matches: Vec<&Runtime> = all
                .iter()
                .filter(|r| r.problem.is_none() && version.matches(&r.version))
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
        Err(Error::NotFound {
            request: request.to_string(),
        })
    }

    /// The runtime of one interpreter path: a managed runtime's own interpreter, or the
    /// interpreter adopted as it is (a shim resolved to what it runs).
    fn find_path(&self, path: &Path) -> Result<Runtime, Error> {
        let canonical = fs_err::canonicalize(path).map_err(|_| Error::NotFound {
            request: path.display().to_string(),
        })?;
        if let Ok(root) = fs_err::canonicalize(self.paths.runtimes())
            && let Ok(inside) = canonical.strip_prefix(&root)
            && let Some(key) = inside.components().next()
            && let Some(found) =
                install::read_managed_key(&self.paths, &key.as_os_str().to_string_lossy())
        {
            return Ok(found);
        }
        discover::adopt_path(&self.paths, path).map_err(|reason| Error::Refused {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// The configured default runtime.
    pub fn default_runtime(&self) -> Result<Runtime, Error> {
        let key = self
            .config
            .default_runtime
            .as_deref()
            .ok_or(Error::NoDefault)?;
        match self.find(key).and_then(usable) {
            Ok(mut runtime) => {
                runtime.default = true;
                Ok(runtime)
            }
            Err(Error::NotFound { .. }) => Err(Error::DefaultMissing {
                key: key.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// A runtime by request, or the default when `request` is `None`.
    pub fn resolve(&self, request: Option<&str>) -> Result<Runtime, Error> {
        match request {
            Some(r) => self.find(r).and_then(usable),
            None => self.default_runtime(),
        }
    }

    /// Make the runtime named by `request` the default and save the config file. A
    /// managed runtime is recorded by key; an adopted one by its interpreter's path, so
    /// it stays the default wherever it lives (discovery need not find it again).
    pub fn set_default(&mut self, request: &str) -> Result<Runtime, Error> {
        let mut runtime = self.find(request).and_then(usable)?;
        let value = match runtime.kind {
            RuntimeKind::Managed | RuntimeKind::Embedded => runtime.key.clone(),
            RuntimeKind::Adopted => runtime.python.to_string_lossy().into_owned(),
        };
        let mut file = Config::load_file(&self.paths)?;
        file.default_runtime = Some(value.clone());
        file.save(&self.paths)?;
        self.config.default_runtime = Some(value);
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

    /// Delete a managed runtime. Refused while `users` names users of it (environments
    /// built on it, backends running in them), naming them; with `force`, removed anyway
    /// and the result names what it broke. Adopted runtimes are refused; a broken managed
    /// runtime (a dangling link) is removed like any other. The environments layer
    /// answers `users` (`Environments::remove_runtime`): runtimes sit below it.
    pub fn remove_with(
        &self,
        request: &str,
        force: bool,
        users: &dyn Fn(&Runtime) -> Result<RuntimeUsers, Error>,
    ) -> Result<Removed, Error> {
        let runtime = self.find(request)?;
        if runtime.kind == RuntimeKind::Adopted {
            return Err(Error::RemoveAdopted { key: runtime.key });
        }
        let users = users(&runtime)?;
        if !users.is_empty() && !force {
            return Err(Error::InUse {
                key: runtime.key,
                users,
            });
        }
        install::remove_managed(&self.paths, &runtime)?;
        Ok(Removed {
            runtime,
            broken: users,
        })
    }

    /// Install the newest catalog entry matching `request` (`3.12`, `3.12.7` or a key).
    pub async fn install(
        &self,
        request: &str,
        reporter: &dyn Reporter,
        options: &InstallOptions,
    ) -> Result<Installed, Error> {
        reporter.report(Progress::Resolve {
            what: request.to_string(),
        });
        if embedded::is_zip_request(request) {
            return embedded::install_zip(self.paths(), Path::new(request), reporter)
                .await
                .map(|(runtime, already_installed)| Installed {
                    runtime,
                    already_installed,
                });
        }
        let parsed = InstallRequest::parse(request)?;
        let catalog = self.catalog().await?;
        let platform = platform::Platform::current();
        let entry = catalog
            .resolve(&parsed, &platform)
            .cloned()
            .ok_or_else(|| Error::NoCatalogEntry {
                request: request.to_string(),
                platform: platform.tag(),
            })?;
        install::install_entry(self.paths(), &entry, reporter, options)
            .await
            .map(|(mut runtime, already_installed)| {
                runtime.default =
                    self.config().default_runtime.as_deref() == Some(runtime.key.as_str());
                Installed {
                    runtime,
                    already_installed,
                }
            })
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

/// How the configured default is recognised in a list.
enum DefaultMatcher {
    None,
    Key(String),
    /// The canonical interpreter path (`None` when it no longer exists).
    Python(Option<PathBuf>),
}

impl DefaultMatcher {
    fn matches(&self, runtime: &Runtime) -> bool {
        match self {
            Self::None => false,
            Self::Key(key) => *key == runtime.key,
            Self::Python(python) => python.as_ref().is_some_and(|p| {
                *p == runtime.python || fs_err::canonicalize(&runtime.python).is_ok_and(|r| r == *p)
            }),
        }
    }
}

/// A runtime that can run, or why it cannot.
fn usable(runtime: Runtime) -> Result<Runtime, Error> {
    match runtime.problem {
        Some(problem) => Err(Error::Unusable {
            key: runtime.key,
            problem,
        }),
        None => Ok(runtime),
    }
}

pub(crate) fn looks_like_path(request: &str) -> bool {
    request.contains('/') || request.contains('\\')
}
