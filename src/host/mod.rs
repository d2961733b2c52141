//! The host API: the core served on loopback over HTTP (axum) and gRPC (tonic), token
//! protected, so other programs — and Python code inside a backend — manage
//! environments, runtimes and backends (the seed's "Option 3").
//!
//! `serve` binds the addresses (port 0 by default), writes `<state>/host.json` (mode
//! 0600: pid, addresses, token) and answers until shut down. Backends started through
//! the host receive `BEEP_HOST_URL` and `BEEP_HOST_TOKEN`.

pub mod error;
pub mod grpc;
pub mod http;
pub mod openapi;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::backend::{
    BackendId, BackendSpec, BackendStatus, Place, RestartPolicy, Supervisor, Transport,
};
use crate::runtime::{Runtime, Runtimes};
use crate::venv::{
    CreateOptions, DeleteOptions, EnvName, Environment, EnvironmentStatus, Environments,
    PackageRequest,
};
use crate::{Config, Paths, Progress, Reporter};

pub use error::{ApiCode, ApiError};

/// The file that tells clients where the host API is and how to authenticate.
pub const RECORD_FILE: &str = "host.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to bind `{addr}`: the host API serves on loopback addresses only")]
    NotLoopback { addr: SocketAddr },
    #[error("Failed to bind `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to write `{}`", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to generate a token")]
    Token(#[source] std::io::Error),
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::NotLoopback { .. } => C::Invalid,
            Self::Bind { .. } => C::Failed,
            Self::Record { .. } | Self::Token(_) => C::Internal,
        }
    }
}

/// What `<state>/host.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub pid: u32,
    /// `http://127.0.0.1:PORT` when HTTP is served.
    pub http: Option<String>,
    /// `127.0.0.1:PORT` when gRPC is served.
    pub grpc: Option<String>,
    pub token: String,
    /// Unix seconds.
    pub started_at: u64,
}

/// A request to create an environment (the seed's shape, plus `runtime` and `packages`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub provider_name: Option<String>,
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub packages: Vec<String>,
}

/// A request to start a backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Environment name; `admin` when absent (and no `runtime`).
    #[serde(default)]
    pub env: Option<String>,
    /// Run on this runtime (a key, a version or an interpreter path) instead of an
    /// environment; not with `env`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// `http`, `pipe` or `rpc`.
    pub transport: String,
    /// `never` (default) or `on-failure`.
    #[serde(default)]
    pub restart: Option<String>,
}

/// A project folder (`POST /projects/up`, `POST /projects/down`, `GET /projects/status?dir=`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRequest {
    /// The folder holding `beep.toml` (absolute).
    pub dir: String,
}

/// `POST /projects/up`: a project folder, brought up from a bundle when `bundle` is given
/// (verified before anything is written; nothing is fetched).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpRequest {
    /// The folder holding `beep.toml` (absolute).
    pub dir: String,
    /// An offline bundle (absolute) to bring the project up from.
    #[serde(default)]
    pub bundle: Option<String>,
}

/// `POST /bundles`: write an offline bundle of a project folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRequest {
    /// The folder holding `beep.toml` and `beep.lock` (absolute).
    pub dir: String,
    /// The zip to write (absolute; replaced when it exists).
    pub output: String,
    /// Platforms to carry (`linux-x86_64-gnu`, `windows-x86_64`, `macos-aarch64`);
    /// empty is this one.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// An absolute path from a request, or a 400 naming `what`.
fn absolute(what: &str, given: &str) -> Result<PathBuf, ApiError> {
    let path = PathBuf::from(given);
    if !path.is_absolute() {
        return Err(ApiError::new(
            ApiCode::Invalid,
            format!("Invalid {what} `{given}`: give an absolute path"),
        ));
    }
    Ok(path)
}

/// The services behind the API. Cheap to share.
#[derive(Debug)]
pub struct Host {
    paths: Paths,
    config: Config,
    supervisor: Supervisor,
    token: String,
}

/// Collects installer output lines (for answers that return them).
#[derive(Default)]
struct Lines(std::sync::Mutex<Vec<String>>);

impl Reporter for Lines {
    fn report(&self, progress: Progress) {
        if let Progress::Output { line } = progress
            && let Ok(mut lines) = self.0.lock()
        {
            lines.push(line);
        }
    }
}

fn env_name(name: &str) -> Result<EnvName, ApiError> {
    Ok(EnvName::parse(name)?)
}

impl Host {
    /// A host with a fresh 256-bit token.
    pub fn new(paths: Paths, config: Config, supervisor: Supervisor) -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Token(std::io::Error::other(e.to_string())))?;
        Ok(Self {
            paths,
            config,
            supervisor,
            token: hex::encode(bytes),
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    fn environments(&self) -> Environments {
        Environments::new(self.paths.clone(), self.config.clone())
    }

    pub async fn create_env(&self, request: CreateRequest) -> Result<Environment, ApiError> {
        let name = env_name(&request.name)?;
        let options = CreateOptions {
            runtime: request.runtime.filter(|r| !r.is_empty()),
            provider: request.provider_name.filter(|p| !p.is_empty()),
            model_id: request.model_id.filter(|m| !m.is_empty()),
            profile: None,
            packages: PackageRequest::new(request.packages, Vec::new()),
        };
        Ok(self
            .environments()
            .create(&name, &options, &Lines::default())
            .await?)
    }

    pub fn list_envs(&self) -> Result<Vec<Environment>, ApiError> {
        Ok(self.environments().list()?)
    }

    pub fn get_env(&self, name: &str) -> Result<EnvironmentStatus, ApiError> {
        let name = env_name(name)?;
        Ok(self.environments().status(&name, &self.supervisor)?)
    }

    pub async fn delete_env(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let name = env_name(name)?;
        self.environments()
            .delete(
                &name,
                DeleteOptions { force },
                &self.supervisor,
                &Lines::default(),
            )
            .await?;
        Ok(())
    }

    /// Install into an environment; the installer's output lines.
    pub async fn install_packages(
        &self,
        name: &str,
        requirements: Vec<String>,
    ) -> Result<Vec<String>, ApiError> {
        let name = env_name(name)?;
        if requirements.is_empty() {
            return Err(ApiError::new(
                ApiCode::Invalid,
                "No requirements given: `requirements` is empty",
            ));
        }
        let lines = Lines::default();
        self.environments()
            .install(
                &name,
                &PackageRequest::new(requirements, Vec::new()),
                &lines,
            )
            .await?;
        Ok(lines.0.into_inner().unwrap_or_default())
    }

    fn projects(
        &self,
        request: &ProjectRequest,
    ) -> Result<(crate::project::Projects, std::path::PathBuf), ApiError> {
        let dir = absolute("project folder", &request.dir)?;
        Ok((
            crate::project::Projects::new(self.paths.clone(), self.config.clone()),
            dir,
        ))
    }

    /// `beep-host up` for a folder; `up --bundle` when the request names a bundle.
    pub async fn project_up(
        &self,
        request: ProjectUpRequest,
    ) -> Result<crate::project::UpReport, ApiError> {
        let (projects, dir) = self.projects(&ProjectRequest {
            dir: request.dir.clone(),
        })?;
        let Some(bundle) = &request.bundle else {
            return Ok(projects.up(&dir, &Lines::default()).await?);
        };
        let bundle = absolute("bundle", bundle)?;
        Ok(crate::bundle::offline::up_from_file(
            &self.paths,
            &self.config,
            &bundle,
            &dir,
            &Lines::default(),
        )
        .await?)
    }

    /// `beep-host bundle` for a folder: the bundle written (path, size, manifest).
    pub async fn write_bundle(
        &self,
        request: BundleRequest,
    ) -> Result<crate::bundle::Written, ApiError> {
        let dir = absolute("project folder", &request.dir)?;
        let output = absolute("bundle output", &request.output)?;
        let platforms = request
            .platforms
            .iter()
            .map(|p| crate::bundle::BundlePlatform::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let catalog = Runtimes::new(self.paths.clone(), self.config.clone())
            .catalog()
            .await?;
        let options = crate::bundle::BundleOptions {
            dir,
            output,
            platforms,
        };
        Ok(
            crate::bundle::write::bundle(&self.paths, &catalog, &options, &Lines::default())
                .await?,
        )
    }

    /// `beep-host down` for a folder: the backends stopped.
    pub async fn project_down(
        &self,
        request: ProjectRequest,
    ) -> Result<Vec<crate::project::BackendChange>, ApiError> {
        let (projects, dir) = self.projects(&request)?;
        Ok(projects.down(&dir, &Lines::default()).await?)
    }

    /// `beep-host status` for a folder.
    pub async fn project_status(
        &self,
        request: ProjectRequest,
    ) -> Result<crate::project::ProjectStatus, ApiError> {
        let (projects, dir) = self.projects(&request)?;
        Ok(projects.status(&dir).await?)
    }

    pub fn runtimes(&self) -> Result<Vec<Runtime>, ApiError> {
        Ok(Runtimes::new(self.paths.clone(), self.config.clone()).list()?)
    }

    pub fn runtime_service(&self) -> Runtimes {
        Runtimes::new(self.paths.clone(), self.config.clone())
    }

    pub async fn start_backend(&self, request: StartRequest) -> Result<BackendStatus, ApiError> {
        let place = match (&request.runtime, &request.env) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    ApiCode::Invalid,
                    "Failed to start a backend: give `env` or `runtime`, not both".to_string(),
                ));
            }
            (Some(runtime), None) => self.supervisor.runtime_place(runtime).await?,
            (None, env) => {
                let env = env_name(env.as_deref().unwrap_or(crate::venv::ADMIN_ENV))?;
                // The environment must be a finished one.
                self.environments().get(&env)?;
                Place::Environment(env)
            }
        };
        let transport: Transport = request
            .transport
            .parse()
            .map_err(|e: String| ApiError::new(ApiCode::Invalid, e))?;
        let restart: RestartPolicy = match request.restart.as_deref() {
            None | Some("") => RestartPolicy::Never,
            Some(r) => r
                .parse()
                .map_err(|e: String| ApiError::new(ApiCode::Invalid, e))?,
        };
        let id = self
            .supervisor
            .start(BackendSpec::on(place, transport).restart(restart))
            .await?;
        Ok(self.supervisor.status(&id)?)
    }

    pub fn backends(&self) -> Vec<BackendStatus> {
        self.supervisor.list()
    }

    pub async fn stop_backend(&self, id: &str) -> Result<(), ApiError> {
        let id = BackendId::parse(id).map_err(|e| ApiError::new(ApiCode::Invalid, e))?;
        // DELETE removes the resource: stop it, then forget it.
        self.supervisor.stop(&id).await?;
        Ok(self.supervisor.remove(&id).await?)
    }
}

/// Where the API is served.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub http: Option<SocketAddr>,
    pub grpc: Option<SocketAddr>,
    pub record: PathBuf,
}

/// Bind what is asked (loopback only), write the record, and serve until `shutdown`.
/// Returns once both listeners are bound; the servers run on spawned tasks.
pub async fn serve(
    host: Arc<Host>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> Result<(Served, tokio::task::JoinHandle<()>), Error> {
    for addr in [http_addr, grpc_addr].into_iter().flatten() {
        if !addr.ip().is_loopback() {
            return Err(Error::NotLoopback { addr });
        }
    }
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })
    };
    let http_listener = match http_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let grpc_listener = match grpc_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let local = |l: &tokio::net::TcpListener, a: SocketAddr| {
        l.local_addr()
            .map_err(|source| Error::Bind { addr: a, source })
    };
    let http_bound = match (&http_listener, http_addr) {
        (Some(l), Some(a)) => Some(local(l, a)?),
        _ => None,
    };
    let grpc_bound = match (&grpc_listener, grpc_addr) {
        (Some(l), Some(a)) => Some(local(l, a)?),
        _ => None,
    };
    let record = HostRecord {
        pid: std::process::id(),
        http: http_bound.map(|a| format!("http://{a}")),
        grpc: grpc_bound.map(|a| a.to_string()),
        token: host.token.clone(),
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    host.supervisor
        .set_host_api(record.http.clone(), Some(record.token.clone()));
    let record_path = write_record(&host.paths, &record)?;

    let mut tasks = Vec::new();
    if let (Some(listener), Some(addr)) = (http_listener, http_bound) {
        let router = http::router(host.clone(), addr.port());
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        }));
    }
    if let Some(listener) = grpc_listener {
        let stop = shutdown.clone();
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let incoming = tokio_stream_listener(listener);
            let _ = grpc::server(host)
                .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
                .await;
        }));
    }
    let path = record_path.clone();
    let joined = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
        let _ = fs_err::remove_file(&path);
    });
    Ok((
        Served {
            http: http_bound,
            grpc: grpc_bound,
            record: record_path,
        },
        joined,
    ))
}

/// Accepted connections of a listener as a stream, for tonic.
fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((next, listener))
    })
}

/// Write `<state>/host.json` with mode 0600 from the start (never readable by others).
fn write_record(paths: &Paths, record: &HostRecord) -> Result<PathBuf, Error> {
    let path = paths.state.join(RECORD_FILE);
    let write = || -> std::io::Result<()> {
        fs_err::create_dir_all(&paths.state)?;
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let mut options = fs_err::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use fs_err::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(
            &mut file,
            &serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?,
        )?;
        drop(file);
        fs_err::rename(&tmp, &path)
    };
    write().map_err(|source| Error::Record {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Read the record of a running host, if any.
pub fn read_record(paths: &Paths) -> Option<HostRecord> {
    let bytes = fs_err::read(paths.state.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
