use serde::{Deserialize, Serialize};

use beep_host::venv::{EnvBackend, Environment, EnvironmentSize, EnvironmentStatus, Package};

/// One environment in the list.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct EnvRow {
    pub name: String,
    pub path: String,
    pub python_version: Option<String>,
    pub runtime: Option<String>,
    pub installer: Option<String>,
    pub packages: u32,
    pub healthy: bool,
    /// What is broken (which file, what) when it is not healthy.
    pub problem: Option<String>,
    pub created: Option<String>,
    /// Backends running in it now.
    pub backends_running: u32,
    /// The special environment the backends' tools live in.
    pub admin: bool,
}

impl EnvRow {
    pub fn new(e: Environment, backends_running: usize) -> Self {
        Self {
            admin: e.name == "admin",
            name: e.name,
            path: e.path.display().to_string(),
            python_version: e.python_version,
            runtime: e.runtime,
            installer: e.installer,
            packages: e.packages as u32,
            healthy: e.healthy,
            problem: e.problem,
            created: e.created,
            backends_running: backends_running as u32,
        }
    }
}

/// How much disk an environment takes (bytes, links counted as links).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct EnvSize {
    pub name: String,
    pub size_bytes: u64,
}

impl From<EnvironmentSize> for EnvSize {
    fn from(s: EnvironmentSize) -> Self {
        Self {
            name: s.name,
            size_bytes: s.size_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct PackageRow {
    pub name: String,
    pub version: String,
}

impl From<Package> for PackageRow {
    fn from(p: Package) -> Self {
        Self {
            name: p.name,
            version: p.version,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct EnvBackendRow {
    pub id: String,
    pub pid: Option<u32>,
    pub transport: Option<String>,
    pub state: String,
}

impl From<EnvBackend> for EnvBackendRow {
    fn from(b: EnvBackend) -> Self {
        Self {
            id: b.id,
            pid: b.pid,
            transport: b.transport,
            state: b.state,
        }
    }
}

/// One environment in detail.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct EnvDetails {
    pub env: EnvRow,
    pub size_bytes: u64,
    pub packages: Vec<PackageRow>,
    pub backends: Vec<EnvBackendRow>,
}

impl From<EnvironmentStatus> for EnvDetails {
    fn from(s: EnvironmentStatus) -> Self {
        Self {
            env: EnvRow::new(s.environment, s.backends.len()),
            size_bytes: s.size_bytes,
            packages: s.installed.into_iter().map(Into::into).collect(),
            backends: s.backends.into_iter().map(Into::into).collect(),
        }
    }
}

/// What the create form sends.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct CreateEnv {
    pub name: String,
    /// A runtime key or version; the default runtime when absent.
    pub runtime: Option<String>,
    pub packages: Vec<String>,
    /// A requirements file path.
    pub requirements: Option<String>,
}
