//! The environment service: list, inspect, create, delete, install and remove packages,
//! each operation on one environment under its lock file.

use std::path::{Path, PathBuf};

use crate::lock::LockFile;
use crate::runtime::{Runtime, Runtimes};
use crate::{Config, Paths, Progress, Reporter};

use super::environment::{self, Environment, EnvironmentSize, EnvironmentStatus, Metadata};
use super::installer::{self, Tool};
use super::package::{self, Package, PackageRequest};
use super::{EnvName, Error, RunningBackends, env_dir, python_in, trash};

/// What `create` records and installs besides the environment itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// A runtime key, version or interpreter path; `None` is the default runtime.
    pub runtime: Option<String>,
    pub provider: Option<String>,
    pub model_id: Option<String>,
    pub profile: Option<String>,
    /// Installed before the environment becomes visible; a failure removes it.
    pub packages: PackageRequest,
}

/// How `delete` treats backends running in the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Stop running backends first instead of refusing.
    pub force: bool,
}

/// The environment service: list, inspect, create, delete, install and remove packages.
#[derive(Debug, Clone)]
pub struct Environments {
    pub(super) paths: Paths,
    pub(super) config: Config,
}

impl Environments {
    pub fn new(paths: Paths, config: Config) -> Self {
        Self { paths, config }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The directory of environment `name` (it may not exist).
    pub fn dir(&self, name: &EnvName) -> PathBuf {
        env_dir(&self.paths, name)
    }

    /// Every finished environment, sorted by name. Starts no process; leftover trash
    /// from an interrupted delete is removed on the way.
    pub fn list(&self) -> Result<Vec<Environment>, Error> {
        let envs = self.paths.envs();
        let entries = match fs_err::read_dir(&envs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Read { path: envs, source }),
        };
        let mut found = Vec::new();
        let mut trash = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: envs.clone(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with(trash::PREFIX) {
                trash.push(entry.path());
                continue;
            }
            if EnvName::parse(file_name).is_err() {
                continue;
            }
            // One unreadable environment does not hide the others.
            match environment::read(file_name, &entry.path()) {
                Ok(Some(env)) => found.push(env),
                Ok(None) => {}
                Err(e) => tracing::warn!("Failed to read environment `{file_name}`: {e}"),
            }
        }
        if !trash.is_empty() {
            trash::sweep(&trash, |name| self.lock_path(name));
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// One finished environment.
    pub fn get(&self, name: &EnvName) -> Result<Environment, Error> {
        let dir = self.dir(name);
        environment::read(name.as_str(), &dir)
            .map_err(|source| Error::Read {
                path: dir.clone(),
                source,
            })?
            .ok_or_else(|| Error::NotFound {
                name: name.to_string(),
            })
    }

    /// The interpreter of a finished environment (what a backend runs).
    pub fn python(&self, name: &EnvName) -> Result<PathBuf, Error> {
        Ok(self.get(name)?.python)
    }

    /// Installed packages with versions, from dist-info METADATA.
    pub fn packages(&self, name: &EnvName) -> Result<Vec<Package>, Error> {
        let env = self.get(name)?;
        package::list(&env.path).map_err(|source| Error::Read {
            path: env.path,
            source,
        })
    }

    /// Everything `list` shows plus packages, disk size, `pyvenv.cfg` and backends.
    pub fn status(
        &self,
        name: &EnvName,
        backends: &dyn RunningBackends,
    ) -> Result<EnvironmentStatus, Error> {
        let environment = self.get(name)?;
        let installed = package::list(&environment.path).map_err(|source| Error::Read {
            path: environment.path.clone(),
            source,
        })?;
        Ok(EnvironmentStatus {
            size_bytes: environment::disk_size(&environment.path),
            pyvenv_cfg: environment::read_pyvenv_cfg(&environment.path),
            backends: backends.running_in(name),
            installed,
            environment,
        })
    }

    /// The disk size of every finished environment, sorted by name. This walks each tree
    /// (links are counted as links, never followed), so it is kept out of [`list`](Self::list):
    /// callers show the list first and the sizes when they arrive.
    pub fn sizes(&self) -> Result<Vec<EnvironmentSize>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .map(|env| EnvironmentSize {
                size_bytes: environment::disk_size(&env.path),
                name: env.name,
            })
            .collect())
    }

    /// Create environment `name`; with packages, they are installed before it is listed.
    /// On any failure nothing is left behind and the error carries the tool's output.
    #[tracing::instrument(skip_all, fields(name = %name))]
    pub async fn create(
        &self,
        name: &EnvName,
        options: &CreateOptions,
        reporter: &dyn Reporter,
    ) -> Result<Environment, Error> {
        check_request(&options.packages)?;
        let dir = self.dir(name);
        if environment::is_complete(&dir) {
            return Err(Error::Exists {
                name: name.to_string(),
                path: dir,
            });
        }
        self.check_case(name)?;
        let runtime = self.runtime_for_create(name, options.runtime.as_deref(), reporter)?;
        if let Some(warning) = runtime.backend_warning() {
            tracing::debug!("{warning}");
            reporter.report(Progress::Output {
                line: format!("warning: {warning}"),
            });
        }
        let tool = self.tool(name, Some(&runtime.python), reporter).await?;
        let _lock = self.lock(name, reporter).await?;
        self.create_locked(name, &runtime, &tool, options, reporter)
            .await
    }

    /// Delete environment `name`: refuse (or, forced, stop them first) while backends
    /// run in it; rename to trash, then remove without following links.
    #[tracing::instrument(skip_all, fields(name = %name))]
    pub async fn delete(
        &self,
        name: &EnvName,
        options: DeleteOptions,
        backends: &dyn RunningBackends,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let dir = self.dir(name);
        if fs_err::symlink_metadata(&dir).is_err() {
            return Err(Error::NotFound {
                name: name.to_string(),
            });
        }
        // Under the lock: a backend start holds it until its backend is recorded.
        let _lock = self.lock(name, reporter).await?;
        if fs_err::symlink_metadata(&dir).is_err() {
            // Another delete won the race while we waited.
            return Err(Error::NotFound {
                name: name.to_string(),
            });
        }
        let running = backends.running_in(name);
        if !running.is_empty() {
            if !options.force {
                return Err(Error::InUse {
                    name: name.to_string(),
                    backends: running
                        .iter()
                        .map(|b| b.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            backends
                .stop_in(name)
                .await
                .map_err(|source| Error::StopBackends {
                    name: name.to_string(),
                    source,
                })?;
        }
        self.delete_locked(name)?;
        self.sweep_trash();
        Ok(())
    }

    /// Install packages into a finished environment.
    #[tracing::instrument(skip_all, fields(name = %name))]
    pub async fn install(
        &self,
        name: &EnvName,
        request: &PackageRequest,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        check_request(request)?;
        let env = self.get(name)?;
        let tool = self.tool(name, Some(&env.python), reporter).await?;
        let _lock = self.lock(name, reporter).await?;
        let env = self.get(name)?; // it may have been deleted while we waited
        self.install_locked(&env, &tool, request, reporter).await
    }

    /// Remove distributions from a finished environment.
    #[tracing::instrument(skip_all, fields(name = %name))]
    pub async fn uninstall(
        &self,
        name: &EnvName,
        names: &[String],
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        if let Some(bad) = names.iter().find(|n| n.starts_with('-') || n.is_empty()) {
            return Err(Error::Requirement {
                requirement: bad.clone(),
            });
        }
        let env = self.get(name)?;
        let tool = self.tool(name, Some(&env.python), reporter).await?;
        let _lock = self.lock(name, reporter).await?;
        let env = self.get(name)?;
        self.ensure_pip(&env, &tool, reporter).await?;
        tool.uninstall(&env.python, names, reporter)
            .await
            .map_err(|source| Error::Uninstall {
                name: env.name.clone(),
                what: names.join(" "),
                source,
            })
    }

    pub(super) async fn create_locked(
        &self,
        name: &EnvName,
        runtime: &Runtime,
        tool: &Tool,
        options: &CreateOptions,
        reporter: &dyn Reporter,
    ) -> Result<Environment, Error> {
        let dir = self.dir(name);
        if fs_err::symlink_metadata(&dir).is_ok() {
            if environment::is_complete(&dir) {
                return Err(Error::Exists {
                    name: name.to_string(),
                    path: dir,
                });
            }
            // We hold the lock, so no create is running: this is an interrupted one.
            reporter.report(Progress::Output {
                line: format!("Removing the remains of an interrupted create of `{name}`"),
            });
            self.delete_locked(name)?;
        }
        self.check_case(name)?;
        let envs = self.paths.envs();
        fs_err::create_dir_all(&envs).map_err(|source| Error::Write {
            path: envs.clone(),
            source,
        })?;
        let mut guard = trash::RemoveOnDrop::new(envs, dir.clone(), name.clone());
        let created = match tool {
            // uv's venv is written in-process (no `uv venv` subprocess); pip's path keeps
            // `python -m venv`, which also puts pip in.
            Tool::Uv { .. } => super::layout::create(
                &super::layout::BaseInterpreter {
                    python: &runtime.python,
                    prefix: &runtime.path,
                    version: &runtime.version,
                },
                &dir,
            )
            .map_err(|e| installer::Error::Layout(Box::new(e))),
            Tool::Pip => tool.create_venv(&runtime.python, &dir, reporter).await,
        };
        created.map_err(|source| Error::Create {
            name: name.to_string(),
            path: dir.clone(),
            source,
        })?;
        if !options.packages.is_empty() {
            let python = python_in(&dir);
            tool.install(&python, &options.packages, reporter)
                .await
                .map_err(|source| Error::Install {
                    name: name.to_string(),
                    what: options.packages.describe(),
                    source,
                })?;
        }
        let metadata = Metadata {
            runtime: Some(runtime.key.clone()),
            runtime_python: Some(runtime.python.clone()),
            installer: Some(tool.name().to_string()),
            provider: options.provider.clone(),
            model_id: options.model_id.clone(),
            profile: options.profile.clone(),
            created: Some(environment::now_rfc3339()),
        };
        environment::write_metadata(&dir, &metadata).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        guard.disarm();
        self.get(name)
    }

    pub(super) async fn install_locked(
        &self,
        env: &Environment,
        tool: &Tool,
        request: &PackageRequest,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        self.ensure_pip(env, tool, reporter).await?;
        tool.install(&env.python, request, reporter)
            .await
            .map_err(|source| Error::Install {
                name: env.name.clone(),
                what: request.describe(),
                source,
            })
    }

    /// The pip path needs pip inside the environment; one created by uv has none.
    async fn ensure_pip(
        &self,
        env: &Environment,
        tool: &Tool,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        if *tool != Tool::Pip {
            return Ok(());
        }
        let installed = package::list(&env.path).unwrap_or_default();
        if package::MinimumRequirement::parse("pip").is_met_by(&installed) {
            return Ok(());
        }
        tool.bootstrap_pip(&env.python, reporter)
            .await
            .map_err(|source| Error::Install {
                name: env.name.clone(),
                what: "pip".to_string(),
                source,
            })
    }

    /// Refuse a name that differs only in case from an environment already on disk.
    fn check_case(&self, name: &EnvName) -> Result<(), Error> {
        let Ok(entries) = fs_err::read_dir(self.paths.envs()) else {
            return Ok(());
        };
        let existing = entries.filter_map(Result::ok).find_map(|entry| {
            let other = entry.file_name().into_string().ok()?;
            (other != name.as_str()
                && other.eq_ignore_ascii_case(name.as_str())
                && EnvName::parse(&other).is_ok())
            .then_some(other)
        });
        match existing {
            Some(existing) => Err(Error::CaseCollision {
                name: name.to_string(),
                existing,
            }),
            None => Ok(()),
        }
    }

    pub(super) fn delete_locked(&self, name: &EnvName) -> Result<(), Error> {
        let dir = self.dir(name);
        trash::remove(&self.paths.envs(), &dir, name).map_err(|source| Error::Delete {
            name: name.to_string(),
            path: dir,
            source,
        })
    }

    fn sweep_trash(&self) {
        let Ok(entries) = fs_err::read_dir(self.paths.envs()) else {
            return;
        };
        let trash: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(trash::PREFIX))
            .map(|e| e.path())
            .collect();
        trash::sweep(&trash, |name| self.lock_path(name));
    }

    pub(super) fn runtime(&self, name: &EnvName, request: Option<&str>) -> Result<Runtime, Error> {
        Runtimes::new(self.paths.clone(), self.config.clone())
            .resolve(request)
            .map_err(|source| Error::Runtime {
                name: name.to_string(),
                source: Box::new(source),
            })
    }

    /// [`runtime`](Self::runtime), except that with no default set and exactly one
    /// runtime on the machine (managed or adopted), that one is used, and said so.
    fn runtime_for_create(
        &self,
        name: &EnvName,
        request: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<Runtime, Error> {
        let runtimes = Runtimes::new(self.paths.clone(), self.config.clone());
        let wrap = |source| Error::Runtime {
            name: name.to_string(),
            source: Box::new(source),
        };
        match runtimes.resolve(request) {
            Err(crate::runtime::Error::NoDefault) if request.is_none() => {
                let mut usable: Vec<Runtime> = runtimes
                    .list()
                    .map_err(wrap)?
                    .into_iter()
                    .filter(|r| r.problem.is_none())
                    .collect();
                if usable.len() != 1 {
                    return Err(wrap(crate::runtime::Error::NoDefault));
                }
                let only = usable.remove(0);
                reporter.report(Progress::Output {
                    line: format!(
                        "No default runtime is set; using `{}` ({}), the only runtime installed (`beep-host runtime default <key>` chooses another)",
                        only.key,
                        only.python.display()
                    ),
                });
                Ok(only)
            }
            result => result.map_err(wrap),
        }
    }

    pub(super) async fn tool(
        &self,
        name: &EnvName,
        fallback_python: Option<&Path>,
        reporter: &dyn Reporter,
    ) -> Result<Tool, Error> {
        let runtimes = Runtimes::new(self.paths.clone(), self.config.clone());
        let fallback = fallback_python.map(Path::to_path_buf);
        let provision_python = move || match runtimes.default_runtime() {
            Ok(runtime) => Ok(runtime.python),
            Err(e) => fallback.ok_or(e),
        };
        installer::select(
            &self.paths,
            self.config.installer,
            provision_python,
            reporter,
        )
        .await
        .map_err(|source| Error::Installer {
            name: name.to_string(),
            source,
        })
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        lock_path(&self.paths, name)
    }

    /// Take the environment's lock, waiting (and saying so) while another process holds it.
    pub(super) async fn lock(
        &self,
        name: &EnvName,
        reporter: &dyn Reporter,
    ) -> Result<LockFile, Error> {
        let path = self.lock_path(name.as_str());
        let what = format!("environment `{name}`");
        let on_wait = || {
            reporter.report(Progress::Output {
                line: format!("Waiting for another operation on {what} to finish"),
            })
        };
        let wait = crate::lock::Wait {
            on_wait: Some(&on_wait),
            ..Default::default()
        };
        LockFile::acquire(&path, &what, wait)
            .await
            .map_err(|source| Error::Lock {
                name: name.to_string(),
                source,
            })
    }
}

/// The lock file every operation on environment `name` takes (backend starts too).
pub(crate) fn lock_path(paths: &Paths, name: &str) -> PathBuf {
    paths.locks().join(format!("venv-{name}.lock"))
}

/// Refuse option-like requirements (no `--index-url` smuggled in) and missing files,
/// before any file is touched.
fn check_request(request: &PackageRequest) -> Result<(), Error> {
    if let Some(bad) = request
        .requirements
        .iter()
        .find(|r| r.trim().is_empty() || r.starts_with('-'))
    {
        return Err(Error::Requirement {
            requirement: bad.clone(),
        });
    }
    for file in &request.files {
        fs_err::File::open(file).map_err(|source| Error::RequirementsFile {
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}
