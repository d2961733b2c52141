//! The install half of `up --bundle`: from a verified, staged bundle, install the runtime
//! through the runtime installer's verified path (a `file://` archive with the catalog
//! hash), create the environment from the bundle's wheels only (`--no-index
//! --find-links`), and start the declared backends. Nothing here uses the network.

use std::path::{Path, PathBuf};

use super::Error;
use super::project::{Declaration, LOCK_FILE, Lock, PROJECT_FILE};
use super::read::Staged;
use crate::backend::{BackendOptions, BackendStatus, ProjectTag, RestartPolicy, Transport};
use crate::daemon::{DaemonClient, StartSpec};
use crate::runtime::catalog::CatalogEntry;
use crate::runtime::{InstallOptions, Runtime};
use crate::venv::{CreateOptions, EnvName, Environment, Environments, PackageRequest};
use crate::{Config, Paths, Reporter};

/// Where `up` takes its runtime and packages from instead of the network: the runtime
/// archive (with the catalog entry it came from) and a folder of wheels.
#[derive(Debug, Clone)]
pub struct OfflineSource {
    pub runtime: CatalogEntry,
    pub archive: PathBuf,
    pub wheels: PathBuf,
}

impl OfflineSource {
    /// The source a staged bundle offers.
    pub fn of(staged: &Staged) -> Self {
        Self {
            runtime: staged.contents().runtime.clone(),
            archive: staged.runtime_archive(),
            wheels: staged.wheels_dir(),
        }
    }

    /// The catalog entry with its URL pointing at the local archive (the hash stays the
    /// catalog's, so the installer checks the bytes as it would a download).
    pub fn local_entry(&self) -> CatalogEntry {
        CatalogEntry {
            url: format!("file://{}", self.archive.display()).replace('+', "%2B"),
            ..self.runtime.clone()
        }
    }

    /// Install the runtime from the archive.
    pub async fn install_runtime(
        &self,
        paths: &Paths,
        reporter: &dyn Reporter,
    ) -> Result<Runtime, Error> {
        let entry = self.local_entry();
        crate::runtime::install::install_entry(paths, &entry, reporter, &InstallOptions::default())
            .await
            .map(|(runtime, _)| runtime)
            .map_err(|source| Error::Runtime {
                key: entry.key(),
                source: Box::new(source),
            })
    }

    /// A requirements file (next to the wheels) that installs `requirements` from the
    /// wheel folder only.
    pub fn requirements_file(&self, requirements: &[String]) -> Result<PathBuf, Error> {
        let path = self
            .wheels
            .parent()
            .unwrap_or(&self.wheels)
            .join("offline-requirements.txt");
        let mut text = format!("--no-index\n--find-links {}\n", self.wheels.display());
        for requirement in requirements {
            text.push_str(requirement);
            text.push('\n');
        }
        fs_err::write(&path, text).map_err(Error::write(&path))?;
        Ok(path)
    }
}

/// What `up --bundle` brought up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prepared {
    pub runtime: Runtime,
    pub environment: Environment,
    /// Whether the environment existed (its packages were synced from the wheels).
    pub environment_existed: bool,
    pub backends: Vec<BackendStatus>,
}

/// Bring the project in `dir` up from a staged bundle: write its `beep.toml` and
/// `beep.lock` into `dir` when they are not there, install the runtime, create (or
/// install into) the environment, start the declared backends that are not running.
pub async fn up(
    paths: &Paths,
    config: &Config,
    staged: &Staged,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<Prepared, Error> {
    let project = &staged.manifest.project;
    for (name, text) in [
        (PROJECT_FILE, &project.beep_toml),
        (LOCK_FILE, &project.beep_lock),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            fs_err::create_dir_all(dir).map_err(Error::write(dir))?;
            fs_err::write(&path, text).map_err(Error::write(&path))?;
        }
    }
    let declaration = Declaration::parse(&dir.join(PROJECT_FILE), &project.beep_toml)?;
    let lock = Lock::parse(&dir.join(LOCK_FILE), &project.beep_lock)?;
    let source = OfflineSource::of(staged);
    let runtime = source.install_runtime(paths, reporter).await?;

    let env_name = declaration.env_name(dir);
    let name = EnvName::parse(&env_name).map_err(|source| Error::EnvName {
        name: env_name.clone(),
        source,
    })?;
    let requirements: Vec<String> = lock
        .packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect();
    let file = source.requirements_file(&requirements)?;
    let packages = PackageRequest::new(Vec::new(), vec![file]);
    let envs = Environments::new(paths.clone(), config.clone());
    let env_err = |source| Error::Environment {
        name: env_name.clone(),
        source: Box::new(source),
    };
    let existed = envs.get(&name).is_ok();
    let environment = if existed {
        if !packages.is_empty() {
            envs.install(&name, &packages, reporter)
                .await
                .map_err(env_err)?;
        }
        envs.get(&name).map_err(env_err)?
    } else {
        let options = CreateOptions {
            runtime: Some(runtime.key.clone()),
            packages,
            ..Default::default()
        };
        envs.create(&name, &options, reporter)
            .await
            .map_err(env_err)?
    };
    let backends = start_backends(paths, &declaration, dir, name.as_str()).await?;
    Ok(Prepared {
        runtime,
        environment,
        environment_existed: existed,
        backends,
    })
}

/// Start each declared backend not already running for this project.
async fn start_backends(
    paths: &Paths,
    declaration: &Declaration,
    dir: &Path,
    env: &str,
) -> Result<Vec<BackendStatus>, Error> {
    if declaration.backend.is_empty() {
        return Ok(Vec::new());
    }
    let project_dir = fs_err::canonicalize(dir).map_err(Error::read(dir))?;
    let daemon_err = |source| Error::Daemon {
        source: Box::new(source),
    };
    let client = DaemonClient::connect(paths).await.map_err(daemon_err)?;
    let listing = client.list().await.map_err(daemon_err)?;
    let mut started = Vec::new();
    for backend in &declaration.backend {
        let invalid = |message: String| Error::Parse {
            path: dir.join(PROJECT_FILE),
            message: format!("backend `{}`: {message}", backend.name),
        };
        let transport: Transport = backend.transport.parse().map_err(invalid)?;
        let restart: RestartPolicy = match &backend.restart {
            Some(r) => r.parse().map_err(invalid)?,
            None => RestartPolicy::default(),
        };
        let running = listing.running_in(env).any(|s| {
            s.options
                .project
                .as_ref()
                .is_some_and(|p| p.dir == project_dir && p.name == backend.name)
        });
        if running {
            continue;
        }
        let spec = StartSpec {
            env: env.to_string(),
            transport,
            restart,
            ready_timeout_ms: 30_000,
            options: BackendOptions {
                project: Some(ProjectTag {
                    dir: project_dir.clone(),
                    name: backend.name.clone(),
                    fingerprint: String::new(),
                }),
                cwd: Some(project_dir.clone()),
                ..Default::default()
            },
        };
        started.push(client.start(spec).await.map_err(daemon_err)?);
    }
    Ok(started)
}
