use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use beep_host::project::{self, Manifest, ProjectStatus, Requirements, UpReport};

use crate::dto::backends::{BackendState, Transport};

/// A project folder: what its `beep.toml` declares beside what is on the machine.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct ProjectView {
    /// The folder (canonical).
    pub dir: String,
    pub declaration: Declaration,
    pub status: ProjectState,
}

/// `beep.toml`, as the page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct Declaration {
    /// The declared Python: a version, a runtime key or an interpreter path.
    pub python: String,
    pub environment: String,
    /// `requirements = [...]`.
    pub requirements: Vec<String>,
    /// `requirements = "requirements.txt"` (absolute).
    pub requirements_file: Option<String>,
    pub backends: Vec<BackendDecl>,
}

/// One `[[backend]]`.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct BackendDecl {
    pub name: String,
    pub transport: Transport,
    /// `never` or `on-failure`.
    pub restart: String,
    pub preload: Option<String>,
    pub health: Option<Health>,
    /// Bytes.
    pub memory_limit: Option<u64>,
    pub env: BTreeMap<String, String>,
}

/// A health probe: `info` every `every_ms`, answered within `timeout_ms`, `failures` misses
/// in a row make the backend unhealthy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type)]
pub struct Health {
    pub every_ms: u64,
    pub timeout_ms: u64,
    pub failures: u32,
}

/// The core's `ProjectStatus` without the declaration's half.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct ProjectState {
    /// The runtime `beep.lock` pins (a key or a path); none without a lock.
    pub runtime: Option<String>,
    pub runtime_present: bool,
    pub lock_present: bool,
    /// `beep.lock` resolves the current `beep.toml`.
    pub lock_current: bool,
    pub environment_present: bool,
    /// The environment was synced to the current `beep.lock`.
    pub environment_in_sync: bool,
    pub backends: Vec<ProjectBackend>,
    /// Nothing for `up` to do.
    pub up_to_date: bool,
}

/// One declared (or still running, no longer declared) backend, live.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct ProjectBackend {
    pub name: String,
    pub declared: bool,
    pub id: Option<String>,
    /// None: not running and never recorded.
    pub state: Option<BackendState>,
    pub pid: Option<u32>,
    pub address: Option<String>,
    /// With a probe and a live process: whether it answers.
    pub healthy: Option<bool>,
    pub rss_bytes: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Runs the current declaration (false: `up` restarts or starts it).
    pub current: bool,
}

/// What `up` or `down` did to one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Unchanged,
    Started,
    Restarted,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct BackendChange {
    pub name: String,
    pub action: ChangeAction,
    pub id: Option<String>,
    pub address: Option<String>,
}

/// What `up` did.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct UpSummary {
    pub dir: String,
    pub environment: String,
    pub runtime: Option<String>,
    pub runtime_installed: bool,
    pub locked: bool,
    pub environment_created: bool,
    pub environment_synced: bool,
    pub backends: Vec<BackendChange>,
}

/// A bundle written by "Export bundle…".
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct BundleWritten {
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// The platforms it carries (tags such as `linux-x86_64-gnu`).
    pub platforms: Vec<String>,
}

impl From<&Manifest> for Declaration {
    fn from(m: &Manifest) -> Self {
        let (requirements, requirements_file) = match &m.requirements {
            Requirements::List(list) => (list.clone(), None),
            Requirements::File(path) => (Vec::new(), Some(path.display().to_string())),
        };
        Self {
            python: m.python.as_request(),
            environment: m.env_name.to_string(),
            requirements,
            requirements_file,
            backends: m
                .backends
                .iter()
                .map(|b| BackendDecl {
                    name: b.name.clone(),
                    transport: b.transport.into(),
                    restart: match b.restart {
                        beep_host::backend::RestartPolicy::Never => "never",
                        beep_host::backend::RestartPolicy::OnFailure => "on-failure",
                    }
                    .to_string(),
                    preload: b.preload.clone(),
                    health: b.health.map(Into::into),
                    memory_limit: b.memory_limit,
                    env: b.env.clone(),
                })
                .collect(),
        }
    }
}

impl From<beep_host::backend::HealthCheck> for Health {
    fn from(h: beep_host::backend::HealthCheck) -> Self {
        Self {
            every_ms: h.every_ms,
            timeout_ms: h.timeout_ms,
            failures: h.failures,
        }
    }
}

impl From<ProjectStatus> for ProjectState {
    fn from(s: ProjectStatus) -> Self {
        Self {
            runtime: s.runtime,
            runtime_present: s.runtime_present,
            lock_present: s.lock_present,
            lock_current: s.lock_current,
            environment_present: s.environment_present,
            environment_in_sync: s.environment_in_sync,
            up_to_date: s.up_to_date,
            backends: s
                .backends
                .into_iter()
                .map(|b| ProjectBackend {
                    name: b.name,
                    declared: b.declared,
                    id: b.id.map(|id| id.to_string()),
                    state: b.state.map(Into::into),
                    pid: b.pid,
                    address: b.address,
                    healthy: b.healthy,
                    rss_bytes: b.rss_bytes,
                    memory_limit: b.memory_limit,
                    current: b.current,
                })
                .collect(),
        }
    }
}

impl From<project::BackendChange> for BackendChange {
    fn from(c: project::BackendChange) -> Self {
        use project::Action as A;
        Self {
            name: c.name,
            action: match c.action {
                A::Unchanged => ChangeAction::Unchanged,
                A::Started => ChangeAction::Started,
                A::Restarted => ChangeAction::Restarted,
                A::Stopped => ChangeAction::Stopped,
            },
            id: c.id.map(|id| id.to_string()),
            address: c.address,
        }
    }
}

impl From<UpReport> for UpSummary {
    fn from(r: UpReport) -> Self {
        Self {
            dir: r.dir.display().to_string(),
            environment: r.environment,
            runtime: r.runtime,
            runtime_installed: r.runtime_installed,
            locked: r.locked,
            environment_created: r.environment_created,
            environment_synced: r.environment_synced,
            backends: r.backends.into_iter().map(Into::into).collect(),
        }
    }
}
