//! `lock`, `up` and `down`: bring the machine to what `beep.toml` and `beep.lock` say.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lockfile::{self, BeepTool, LOCK_FILE, ProjectLock, RuntimePin};
use super::manifest::{BackendDecl, Manifest, PythonRequest, Requirements};
use super::{Error, STATE_FILE};
use crate::backend::{BackendId, BackendOptions, BackendStatus, ProjectTag};
use crate::daemon::{DaemonClient, StartSpec};
use crate::runtime::{Catalog, InstallRequest, Runtime, RuntimeKind, Runtimes};
use crate::venv::environment::{self, is_executable};
use crate::venv::{CreateOptions, DeleteOptions, Environments, Tool, installer};
use crate::{Config, Paths, Progress, Reporter};

/// How long `up` waits for a backend's ready line.
const READY_TIMEOUT_MS: u64 = 60_000;

/// What happened to one declared (or no longer declared) backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Running as declared: left alone.
    Unchanged,
    Started,
    /// Its declaration (or the lock) changed: stopped and started again.
    Restarted,
    /// No longer declared (or `down`).
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendChange {
    pub name: String,
    pub action: Action,
    pub id: Option<BackendId>,
    pub pid: Option<u32>,
    pub address: Option<String>,
}

/// What `up` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpReport {
    pub dir: PathBuf,
    pub environment: String,
    /// The runtime's key (`None` when the environment was in sync and not asked).
    pub runtime: Option<String>,
    pub runtime_installed: bool,
    /// `beep.lock` was (re)written.
    pub locked: bool,
    pub environment_created: bool,
    pub environment_synced: bool,
    pub backends: Vec<BackendChange>,
}

impl UpReport {
    /// Did anything change?
    pub fn changed(&self) -> bool {
        self.runtime_installed
            || self.locked
            || self.environment_created
            || self.environment_synced
            || self.backends.iter().any(|b| b.action != Action::Unchanged)
    }
}

/// What a project's environment records about its last sync (`<env>/beep-project.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SyncState {
    /// The project folder.
    pub project: PathBuf,
    /// sha256 of the `beep.lock` the environment was synced to.
    pub lock: String,
    pub runtime: String,
    pub runtime_python: PathBuf,
}

impl SyncState {
    pub(super) fn read(env_dir: &Path) -> Option<Self> {
        let bytes = fs_err::read(env_dir.join(STATE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, env_dir: &Path) -> Result<(), Error> {
        let path = env_dir.join(STATE_FILE);
        let tmp = env_dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).expect("plain data serializes");
        fs_err::write(&tmp, text)
            .and_then(|()| fs_err::rename(&tmp, &path))
            .map_err(|source| Error::Write { path, source })
    }
}

/// Where an offline `up` (`up --bundle`) takes the runtime and the packages from instead
/// of the network: a catalog entry whose URL is a local archive (checked against the
/// entry's sha256 like any download), and a wheel folder that a requirements file is
/// installed from with `--no-index`.
#[derive(Debug, Clone)]
pub struct OfflineSource {
    pub runtime: crate::runtime::CatalogEntry,
    pub wheels: PathBuf,
    pub requirements: PathBuf,
}

/// The project service: lock, up, down, status.
#[derive(Debug, Clone)]
pub struct Projects {
    pub(super) paths: Paths,
    pub(super) config: Config,
}

impl Projects {
    pub fn new(paths: Paths, config: Config) -> Self {
        Self { paths, config }
    }

    fn runtimes(&self) -> Runtimes {
        Runtimes::new(self.paths.clone(), self.config.clone())
    }

    /// `beep-host lock`: resolve `<dir>/beep.toml` into `<dir>/beep.lock`. The file is
    /// rewritten only when its bytes change.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub async fn lock(&self, dir: &Path, reporter: &dyn Reporter) -> Result<ProjectLock, Error> {
        let manifest = Manifest::load(dir)?;
        let pin = self.pin(&manifest, None).await?;
        // The declared runtime's interpreter, when it is here, gives the exact markers.
        let runtime = self.runtimes().find(&pin.request()).ok();
        Ok(self
            .lock_manifest(&manifest, pin, runtime.as_ref(), reporter)
            .await?
            .0)
    }

    /// The runtime a lock pins: the catalog entry for a version or key (the catalog's own
    /// URL, not a mirror's), else a runtime on the machine.
    async fn pin(
        &self,
        manifest: &Manifest,
        runtime: Option<&Runtime>,
    ) -> Result<RuntimePin, Error> {
        let request = manifest.python.as_request();
        let wrap = |source| Error::Runtime {
            dir: manifest.dir.clone(),
            request: request.clone(),
            source: Box::new(source),
        };
        if !matches!(manifest.python, PythonRequest::Path(_)) {
            let catalog = Catalog::load(self.config.catalog.as_deref(), None)
                .await
                .map_err(|e| wrap(e.into()))?;
            let parsed = InstallRequest::parse(&request).map_err(wrap)?;
            let platform = crate::runtime::platform::Platform::current();
            if let Some(entry) = catalog.resolve(&parsed, &platform) {
                return Ok(RuntimePin::Managed {
                    key: entry.key(),
                    version: entry.version.clone(),
                    url: entry.url.clone(),
                    sha256: entry.sha256.clone(),
                });
            }
        }
        let runtime = match runtime {
            Some(r) => r.clone(),
            None => self.runtimes().find(&request).map_err(wrap)?,
        };
        Ok(match runtime.kind {
            RuntimeKind::Managed => {
                let catalog = Catalog::load(self.config.catalog.as_deref(), None)
                    .await
                    .map_err(|e| wrap(e.into()))?;
                match catalog.entries.iter().find(|e| e.key() == runtime.key) {
                    Some(entry) => RuntimePin::Managed {
                        key: entry.key(),
                        version: entry.version.clone(),
                        url: entry.url.clone(),
                        sha256: entry.sha256.clone(),
                    },
                    None => RuntimePin::Adopted {
                        path: runtime.python,
                        version: runtime.version,
                    },
                }
            }
            RuntimeKind::Adopted => RuntimePin::Adopted {
                path: runtime.python,
                version: runtime.version,
            },
        })
    }

    /// Resolve with uv and write `beep.lock` when its bytes change; `true` when written.
    async fn lock_manifest(
        &self,
        manifest: &Manifest,
        pin: RuntimePin,
        runtime: Option<&Runtime>,
        reporter: &dyn Reporter,
    ) -> Result<(ProjectLock, bool), Error> {
        reporter.report(Progress::Resolve {
            what: format!("{} ({})", LOCK_FILE, manifest.dir.display()),
        });
        let input = lockfile::input_hash(manifest)?;
        let tool = self.tool(manifest, runtime, reporter).await?;
        let tmp = tempfile::tempdir().map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
        let requirements = match &manifest.requirements {
            Requirements::File(path) => path.clone(),
            Requirements::List(list) => {
                let path = tmp.path().join("requirements.in");
                let mut text = list.join("\n");
                text.push('\n');
                fs_err::write(&path, text).map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
                path
            }
        };
        let out = tmp.path().join("pylock.toml");
        let version = pin.version().to_string();
        let mut args: Vec<&OsStr> = [
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--no-header",
            "--format",
            "pylock.toml",
            "-o",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        args.push(out.as_os_str());
        args.push(requirements.as_os_str());
        match runtime {
            Some(runtime) => {
                args.push(OsStr::new("--python"));
                args.push(runtime.python.as_os_str());
            }
            None => {
                args.push(OsStr::new("--python-version"));
                args.push(OsStr::new(&version));
            }
        }
        run_uv(&tool, &args, reporter, &manifest.dir)
            .await
            .map_err(|source| Error::Resolve {
                dir: manifest.dir.clone(),
                source,
            })?;
        let pylock = fs_err::read_to_string(&out).map_err(|source| {
            Error::LockFile(lockfile::Error::Read {
                path: out.clone(),
                source,
            })
        })?;
        let text = lockfile::compose(
            &pylock,
            &BeepTool {
                input,
                runtime: pin,
            },
        );
        let path = manifest.dir.join(LOCK_FILE);
        let written = fs_err::read(&path).ok().as_deref() != Some(text.as_bytes());
        if written {
            let staging = manifest.dir.join(format!(".{LOCK_FILE}.tmp"));
            fs_err::write(&staging, &text)
                .and_then(|()| fs_err::rename(&staging, &path))
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok((ProjectLock::parse(path, text.as_bytes())?, written))
    }

    async fn tool(
        &self,
        manifest: &Manifest,
        runtime: Option<&Runtime>,
        reporter: &dyn Reporter,
    ) -> Result<Tool, Error> {
        let runtimes = self.runtimes();
        let fallback = runtime.map(|r| r.python.clone());
        let provision = move || match runtimes.default_runtime() {
            Ok(runtime) => Ok(runtime.python),
            Err(e) => fallback.ok_or(e),
        };
        let tool = installer::select(&self.paths, self.config.installer, provision, reporter)
            .await
            .map_err(|source| Error::Resolve {
                dir: manifest.dir.clone(),
                source,
            })?;
        match tool {
            Tool::Pip => Err(Error::NeedsUv {
                dir: manifest.dir.clone(),
            }),
            uv => Ok(uv),
        }
    }

    /// The pinned runtime, installed from the catalog when it is missing; `true` when
    /// it was installed now.
    async fn ensure_runtime(
        &self,
        manifest: &Manifest,
        pin: &RuntimePin,
        reporter: &dyn Reporter,
    ) -> Result<(Runtime, bool), Error> {
        let request = pin.request();
        let wrap = |source| Error::Runtime {
            dir: manifest.dir.clone(),
            request: request.clone(),
            source: Box::new(source),
        };
        if let RuntimePin::Managed { key, .. } = pin {
            match crate::runtime::install::read_managed_key(&self.paths, key) {
                Some(runtime) if runtime.problem.is_none() => return Ok((runtime, false)),
                _ => {
                    let installed = self
                        .runtimes()
                        .install(key, reporter, &Default::default())
                        .await
                        .map_err(wrap)?;
                    return Ok((installed.runtime, !installed.already_installed));
                }
            }
        }
        Ok((self.runtimes().find(&request).map_err(wrap)?, false))
    }

    /// The offline source's runtime, installed from its archive when it is missing.
    async fn offline_runtime(
        &self,
        manifest: &Manifest,
        offline: &OfflineSource,
        reporter: &dyn Reporter,
    ) -> Result<(Runtime, bool), Error> {
        let key = offline.runtime.key();
        if let Some(runtime) = crate::runtime::install::read_managed_key(&self.paths, &key)
            && runtime.problem.is_none()
        {
            return Ok((runtime, false));
        }
        crate::runtime::install::install_entry(
            &self.paths,
            &offline.runtime,
            reporter,
            &Default::default(),
        )
        .await
        .map(|(runtime, existed)| (runtime, !existed))
        .map_err(|source| Error::Runtime {
            dir: manifest.dir.clone(),
            request: key,
            source: Box::new(source),
        })
    }

    /// `beep-host up`: runtime, lock, environment, backends, in that order; each step
    /// only when it is not already as declared. A bad `beep.toml` changes nothing.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub async fn up(&self, dir: &Path, reporter: &dyn Reporter) -> Result<UpReport, Error> {
        self.up_from(dir, None, reporter).await
    }

    /// `up`, with the runtime and packages from `offline` when given (nothing is fetched;
    /// a lock that does not match `beep.toml` is an error, since locking needs an index).
    pub async fn up_from(
        &self,
        dir: &Path,
        offline: Option<&OfflineSource>,
        reporter: &dyn Reporter,
    ) -> Result<UpReport, Error> {
        let manifest = Manifest::load(dir)?;
        let input = lockfile::input_hash(&manifest)?;
        let current = ProjectLock::read(&manifest.dir)?.filter(|l| l.beep.input == input);
        let env_dir = environment::env_dir(&self.paths, &manifest.env_name);
        let mut report = UpReport {
            dir: manifest.dir.clone(),
            environment: manifest.env_name.to_string(),
            runtime: None,
            runtime_installed: false,
            locked: false,
            environment_created: false,
            environment_synced: false,
            backends: Vec::new(),
        };

        // The environment is in sync when it records this lock and its runtime is there:
        // then no installer runs and no runtime is looked up.
        let in_sync = current.as_ref().and_then(|lock| {
            let state = SyncState::read(&env_dir)?;
            (state.lock == lock.hash
                && state.project == manifest.dir
                && environment::is_complete(&env_dir)
                && is_executable(&environment::python_in(&env_dir))
                && is_executable(&state.runtime_python))
            .then_some(state)
        });
        let lock = match (in_sync, current) {
            (Some(state), Some(lock)) => {
                report.runtime = Some(state.runtime);
                lock
            }
            (_, current) => {
                let pin = match (&current, offline) {
                    (Some(lock), _) => lock.beep.runtime.clone(),
                    (None, Some(_)) => {
                        return Err(Error::OfflineStale {
                            dir: manifest.dir.clone(),
                        });
                    }
                    (None, None) => self.pin(&manifest, None).await?,
                };
                let (runtime, installed) = match offline {
                    Some(offline) => self.offline_runtime(&manifest, offline, reporter).await?,
                    None => self.ensure_runtime(&manifest, &pin, reporter).await?,
                };
                report.runtime = Some(runtime.key.clone());
                report.runtime_installed = installed;
                let lock = match current {
                    Some(lock) => lock,
                    None => {
                        let (lock, written) = self
                            .lock_manifest(&manifest, pin, Some(&runtime), reporter)
                            .await?;
                        report.locked = written;
                        lock
                    }
                };
                let created = self
                    .sync_environment(&manifest, &runtime, &lock, offline, reporter)
                    .await?;
                report.environment_created = created;
                report.environment_synced = true;
                lock
            }
        };

        report.backends = self.converge_backends(&manifest, &lock, reporter).await?;
        Ok(report)
    }

    /// Create the environment when it is missing (or made from another runtime), then
    /// `uv pip sync` it to the lock: extra packages are removed. `true` when created.
    async fn sync_environment(
        &self,
        manifest: &Manifest,
        runtime: &Runtime,
        lock: &ProjectLock,
        offline: Option<&OfflineSource>,
        reporter: &dyn Reporter,
    ) -> Result<bool, Error> {
        let name = &manifest.env_name;
        let envs = Environments::new(self.paths.clone(), self.config.clone());
        let env_dir = environment::env_dir(&self.paths, name);
        let mut created = false;
        let existing = envs.get(name).ok();
        let runtime_request = match runtime.kind {
            RuntimeKind::Managed => runtime.key.clone(),
            RuntimeKind::Adopted => runtime.python.to_string_lossy().into_owned(),
        };
        if let Some(env) = &existing
            && (env.runtime.as_deref() != Some(runtime.key.as_str()) || !env.healthy)
        {
            reporter.report(Progress::Output {
                line: format!(
                    "Environment `{name}` was made from another runtime ({}); making it again from `{}`",
                    env.runtime.as_deref().unwrap_or("?"),
                    runtime.key
                ),
            });
            self.stop_project_backends(manifest, reporter).await?;
            let backends = crate::daemon::DaemonBackends::ask(&self.paths).await?;
            envs.delete(name, DeleteOptions { force: true }, &backends, reporter)
                .await?;
        }
        if existing.is_none() || !environment::is_complete(&env_dir) {
            reporter.report(Progress::Output {
                line: format!("Creating environment `{name}` from `{}`", runtime.key),
            });
            let options = CreateOptions {
                runtime: Some(runtime_request),
                ..Default::default()
            };
            envs.create(name, &options, reporter).await?;
            created = true;
        }
        let tool = self.tool(manifest, Some(runtime), reporter).await?;
        let _guard = crate::lock::LockFile::acquire(
            &crate::venv::lock_path(&self.paths, name.as_str()),
            &format!("environment `{name}`"),
            Default::default(),
        )
        .await
        .map_err(|source| crate::venv::Error::Lock {
            name: name.to_string(),
            source,
        })?;
        // uv knows a pylock file by its name.
        let tmp = tempfile::tempdir().map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
        let pylock = tmp.path().join("pylock.toml");
        fs_err::copy(&lock.path, &pylock).map_err(|source| Error::Write {
            path: pylock.clone(),
            source,
        })?;
        let python = environment::python_in(&env_dir);
        reporter.report(Progress::Output {
            line: format!("Syncing environment `{name}` to {LOCK_FILE}"),
        });
        let args: Vec<&OsStr> = match offline {
            // The same packages from the wheel folder only.
            Some(offline) => vec![
                OsStr::new("pip"),
                OsStr::new("sync"),
                OsStr::new("--no-config"),
                OsStr::new("--no-index"),
                OsStr::new("--find-links"),
                offline.wheels.as_os_str(),
                OsStr::new("--python"),
                python.as_os_str(),
                offline.requirements.as_os_str(),
            ],
            None => vec![
                OsStr::new("pip"),
                OsStr::new("sync"),
                OsStr::new("--no-config"),
                OsStr::new("--preview-features"),
                OsStr::new("pylock"),
                OsStr::new("--python"),
                python.as_os_str(),
                pylock.as_os_str(),
            ],
        };
        run_uv(&tool, &args, reporter, &manifest.dir)
            .await
            .map_err(|source| Error::Sync {
                name: name.to_string(),
                lock: lock.path.clone(),
                source,
            })?;
        SyncState {
            project: manifest.dir.clone(),
            lock: lock.hash.clone(),
            runtime: runtime.key.clone(),
            runtime_python: runtime.python.clone(),
        }
        .write(&env_dir)?;
        Ok(created)
    }

    /// Start what is declared and not running, restart what changed, stop what is no
    /// longer declared, leave the rest.
    async fn converge_backends(
        &self,
        manifest: &Manifest,
        lock: &ProjectLock,
        reporter: &dyn Reporter,
    ) -> Result<Vec<BackendChange>, Error> {
        let client = if manifest.backends.is_empty() {
            match DaemonClient::connect_existing(&self.paths).await? {
                Some(client) => client,
                None => return Ok(Vec::new()),
            }
        } else {
            DaemonClient::connect(&self.paths).await?
        };
        let listing = client.list().await?;
        let ours = project_backends(&listing.backends, &manifest.dir);
        let mut changes = Vec::new();
        for decl in &manifest.backends {
            let fingerprint = fingerprint(manifest, decl, &lock.hash);
            let live = ours
                .iter()
                .find(|(name, b)| *name == decl.name && !b.state.is_final());
            let action = match live {
                Some((_, b)) if tag_of(b).is_some_and(|t| t.fingerprint == fingerprint) => {
                    changes.push(BackendChange {
                        name: decl.name.clone(),
                        action: Action::Unchanged,
                        id: Some(b.id.clone()),
                        pid: b.pid,
                        address: b.address.clone(),
                    });
                    continue;
                }
                Some((_, b)) => {
                    reporter.report(Progress::Output {
                        line: format!(
                            "Restarting backend `{}` ({}): its declaration changed",
                            decl.name, b.id
                        ),
                    });
                    self.stop_one(&client, manifest, &decl.name, &b.id).await?;
                    Action::Restarted
                }
                None => Action::Started,
            };
            // Ended runs of this backend are forgotten: the new one replaces them.
            for (_, ended) in ours
                .iter()
                .filter(|(name, b)| *name == decl.name && b.state.is_final())
            {
                let _ = client.remove(&ended.id).await;
            }
            reporter.report(Progress::Output {
                line: format!("Starting backend `{}` ({})", decl.name, decl.transport),
            });
            let status = client
                .start(start_spec(manifest, decl, fingerprint))
                .await
                .map_err(|source| Error::Start {
                    dir: manifest.dir.clone(),
                    name: decl.name.clone(),
                    source,
                })?;
            changes.push(BackendChange {
                name: decl.name.clone(),
                action,
                id: Some(status.id),
                pid: status.pid,
                address: status.address,
            });
        }
        for (name, b) in &ours {
            if manifest.backends.iter().any(|d| d.name == *name) {
                continue;
            }
            if !b.state.is_final() {
                reporter.report(Progress::Output {
                    line: format!("Stopping backend `{name}` ({}): no longer declared", b.id),
                });
                self.stop_one(&client, manifest, name, &b.id).await?;
                changes.push(BackendChange {
                    name: name.clone(),
                    action: Action::Stopped,
                    id: Some(b.id.clone()),
                    pid: None,
                    address: None,
                });
            } else {
                let _ = client.remove(&b.id).await;
            }
        }
        Ok(changes)
    }

    async fn stop_one(
        &self,
        client: &DaemonClient,
        manifest: &Manifest,
        name: &str,
        id: &BackendId,
    ) -> Result<(), Error> {
        let wrap = |source| Error::Stop {
            dir: manifest.dir.clone(),
            name: name.to_string(),
            id: id.to_string(),
            source,
        };
        client.stop(id).await.map_err(wrap)?;
        // A stopped run is not kept: `up` and `down` leave only the live ones.
        let _ = client.remove(id).await;
        Ok(())
    }

    async fn stop_project_backends(
        &self,
        manifest: &Manifest,
        reporter: &dyn Reporter,
    ) -> Result<Vec<BackendChange>, Error> {
        let Some(client) = DaemonClient::connect_existing(&self.paths).await? else {
            return Ok(Vec::new());
        };
        let listing = client.list().await?;
        let mut changes = Vec::new();
        for (name, b) in project_backends(&listing.backends, &manifest.dir) {
            if b.state.is_final() {
                let _ = client.remove(&b.id).await;
                continue;
            }
            reporter.report(Progress::Output {
                line: format!("Stopping backend `{name}` ({})", b.id),
            });
            self.stop_one(&client, manifest, &name, &b.id).await?;
            changes.push(BackendChange {
                name,
                action: Action::Stopped,
                id: Some(b.id.clone()),
                pid: None,
                address: None,
            });
        }
        Ok(changes)
    }

    /// `beep-host down`: stop the project's backends (the environment stays).
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub async fn down(
        &self,
        dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Vec<BackendChange>, Error> {
        let manifest = Manifest::load(dir)?;
        self.stop_project_backends(&manifest, reporter).await
    }
}

/// Run uv in the project folder (so relative paths in requirements resolve there).
async fn run_uv(
    tool: &Tool,
    args: &[&OsStr],
    reporter: &dyn Reporter,
    _dir: &Path,
) -> Result<(), installer::Error> {
    tool.run_uv(args, reporter)
        .await
        .expect("the tool was checked to be uv")
}

/// The project's backends in a listing, with their names in `beep.toml`.
pub(super) fn project_backends<'a>(
    backends: &'a [BackendStatus],
    dir: &Path,
) -> Vec<(String, &'a BackendStatus)> {
    backends
        .iter()
        .filter_map(|b| {
            let tag = tag_of(b)?;
            (tag.dir == dir).then(|| (tag.name.clone(), b))
        })
        .collect()
}

fn tag_of(b: &BackendStatus) -> Option<&ProjectTag> {
    b.options.project.as_ref()
}

/// A hash of everything that makes a backend what it is: its declaration, its
/// environment and the lock the environment was synced to.
pub(super) fn fingerprint(manifest: &Manifest, decl: &BackendDecl, lock_hash: &str) -> String {
    let text = serde_json::json!({
        "dir": manifest.dir,
        "env": manifest.env_name.as_str(),
        "backend": decl,
        "lock": lock_hash,
    });
    lockfile::sha256_hex(text.to_string().as_bytes())[..16].to_string()
}

fn start_spec(manifest: &Manifest, decl: &BackendDecl, fingerprint: String) -> StartSpec {
    StartSpec {
        env: manifest.env_name.to_string(),
        transport: decl.transport,
        restart: decl.restart,
        ready_timeout_ms: READY_TIMEOUT_MS,
        options: BackendOptions {
            project: Some(ProjectTag {
                dir: manifest.dir.clone(),
                name: decl.name.clone(),
                fingerprint,
            }),
            env_vars: decl.env.clone(),
            cwd: Some(manifest.dir.clone()),
            preload: decl.preload.clone(),
            health: decl.health,
            memory_limit: decl.memory_limit,
        },
    }
}
