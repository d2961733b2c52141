//! `up`: bring the machine to what `beep.toml` and `beep.lock` say (the environment part
//! here; the runtime and the lock in `resolution`, the backends in `backends`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::backends::{Action, BackendChange};
use super::lockfile::{self, LOCK_FILE, ProjectLock};
use super::manifest::Manifest;
use super::resolution::run_uv;
use super::{Error, STATE_FILE};
use crate::runtime::{Runtime, RuntimeKind, Runtimes};
use crate::venv::environment::{self, is_executable};
use crate::venv::{CreateOptions, DeleteOptions, Environments};
use crate::{Config, Paths, Progress, Reporter};

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

/// What an `up` created so far, for its undo when it fails.
#[derive(Debug, Default)]
struct Created {
    /// The environment did not exist when `up` began.
    environment: bool,
    /// The runtime `up` installed.
    runtime: Option<String>,
    /// The backend runs `up` started.
    backends: Vec<(String, crate::backend::BackendId)>,
    /// `beep.lock` as it was when `up` began (`None`: there was none).
    lock_before: Option<Vec<u8>>,
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
    /// A verified `uv` wheel: uv is provisioned from it when none is found.
    pub uv_wheel: Option<PathBuf>,
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

    pub(super) fn runtimes(&self) -> Runtimes {
        Runtimes::new(self.paths.clone(), self.config.clone())
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
        let _lock = self.lock_project(&manifest, reporter).await?;
        let env_dir = environment::env_dir(&self.paths, &manifest.env_name);
        let mut created = Created {
            environment: fs_err::symlink_metadata(&env_dir).is_err(),
            lock_before: fs_err::read(manifest.dir.join(LOCK_FILE)).ok(),
            ..Default::default()
        };
        match self
            .converge(&manifest, offline, &mut created, reporter)
            .await
        {
            Ok(report) => Ok(report),
            Err(source) => {
                let undone = self.undo(&manifest, &created, reporter).await;
                if undone.is_empty() {
                    Err(source)
                } else {
                    Err(Error::Undone {
                        dir: manifest.dir.clone(),
                        undone,
                        source: Box::new(source),
                    })
                }
            }
        }
    }

    /// The steps of `up`; what they create is recorded in `created` as they go.
    async fn converge(
        &self,
        manifest: &Manifest,
        offline: Option<&OfflineSource>,
        created: &mut Created,
        reporter: &dyn Reporter,
    ) -> Result<UpReport, Error> {
        let input = lockfile::input_hash(manifest)?;
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
                    (None, None) => self.pin(manifest, None).await?,
                };
                let (runtime, installed) = match offline {
                    Some(offline) => self.offline_runtime(manifest, offline, reporter).await?,
                    None => self.ensure_runtime(manifest, &pin, reporter).await?,
                };
                report.runtime = Some(runtime.key.clone());
                report.runtime_installed = installed;
                if installed {
                    created.runtime = Some(runtime.key.clone());
                }
                let lock = match current {
                    Some(lock) => lock,
                    None => {
                        let (lock, written) = self
                            .lock_manifest(manifest, pin, Some(&runtime), reporter)
                            .await?;
                        report.locked = written;
                        lock
                    }
                };
                let created = self
                    .sync_environment(manifest, &runtime, &lock, offline, reporter)
                    .await?;
                report.environment_created = created;
                report.environment_synced = true;
                lock
            }
        };

        report.backends = self
            .converge_backends(manifest, &lock, &mut created.backends, reporter)
            .await?;
        Ok(report)
    }

    /// Undo what a failed `up` created, newest first: the backends it started, the
    /// environment it created, the runtime it installed (when nothing else uses it).
    /// What was undone, in words; what could not be is reported and left.
    async fn undo(
        &self,
        manifest: &Manifest,
        created: &Created,
        reporter: &dyn Reporter,
    ) -> Vec<String> {
        let mut undone = Vec::new();
        if !created.backends.is_empty() {
            match self.stop_started(manifest, &created.backends).await {
                Ok(()) => undone.extend(
                    created
                        .backends
                        .iter()
                        .map(|(name, id)| format!("stopped backend `{name}` ({id})")),
                ),
                Err(err) => reporter.report(Progress::Output {
                    line: format!("Could not stop the backends this `up` started: {err}"),
                }),
            }
        }
        let name = &manifest.env_name;
        let env_dir = environment::env_dir(&self.paths, name);
        let envs = Environments::new(self.paths.clone(), self.config.clone());
        if created.environment && fs_err::symlink_metadata(&env_dir).is_ok() {
            let deleted = match crate::daemon::DaemonBackends::ask(&self.paths).await {
                Ok(backends) => envs
                    .delete(name, DeleteOptions { force: false }, &backends, reporter)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match deleted {
                Ok(()) => undone.push(format!("deleted environment `{name}`")),
                Err(err) => reporter.report(Progress::Output {
                    line: format!("Could not delete environment `{name}`: {err}"),
                }),
            }
        }
        if let Some(key) = &created.runtime {
            let removed = match crate::daemon::DaemonBackends::ask(&self.paths).await {
                Ok(backends) => envs
                    .remove_runtime(key, false, &backends)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match removed {
                Ok(_) => undone.push(format!("removed runtime `{key}`")),
                Err(err) => reporter.report(Progress::Output {
                    line: format!("Kept runtime `{key}`: {err}"),
                }),
            }
        }
        let lock_file = manifest.dir.join(LOCK_FILE);
        let now = fs_err::read(&lock_file).ok();
        if now != created.lock_before {
            let restored = match &created.lock_before {
                Some(bytes) => fs_err::write(&lock_file, bytes).map(|()| "restored `beep.lock`"),
                None => fs_err::remove_file(&lock_file).map(|()| "removed the new `beep.lock`"),
            };
            match restored {
                Ok(done) => undone.push(done.to_string()),
                Err(err) => reporter.report(Progress::Output {
                    line: format!("Could not put `beep.lock` back: {err}"),
                }),
            }
        }
        undone
    }

    /// One `up` or `down` of a project at a time (a second one waits, and says so).
    pub(super) async fn lock_project(
        &self,
        manifest: &Manifest,
        reporter: &dyn Reporter,
    ) -> Result<crate::lock::LockFile, Error> {
        let digest = lockfile::sha256_hex(manifest.dir.to_string_lossy().as_bytes());
        let path = self
            .paths
            .locks()
            .join(format!("project-{}.lock", &digest[..16]));
        let what = format!("project `{}`", manifest.dir.display());
        let on_wait = || {
            reporter.report(Progress::Output {
                line: format!("Waiting for another `up` or `down` of {what} to finish"),
            })
        };
        let wait = crate::lock::Wait {
            on_wait: Some(&on_wait),
            ..Default::default()
        };
        crate::lock::LockFile::acquire(&path, &what, wait)
            .await
            .map_err(|source| Error::Busy {
                dir: manifest.dir.clone(),
                source,
            })
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
            // (An embedded runtime cannot hold an environment: creating one says so.)
            RuntimeKind::Managed | RuntimeKind::Embedded => runtime.key.clone(),
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
        if let Some(wheel) = offline.and_then(|o| o.uv_wheel.as_deref()) {
            crate::venv::installer::ensure_uv_from_wheel(&self.paths, wheel, reporter)
                .await
                .map_err(|source| Error::Sync {
                    name: name.to_string(),
                    lock: lock.path.clone(),
                    source,
                })?;
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
}
