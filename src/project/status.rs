//! `beep-host status`: the declaration beside what is on the machine and what runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use super::backends::{fingerprint, project_backends, tag_of};
use super::converge::{Projects, SyncState};
use super::lockfile::{self, ProjectLock};
use super::manifest::Manifest;
use crate::backend::{BackendId, BackendState, HealthCheck};
use crate::daemon::DaemonClient;
use crate::venv::environment;

/// One declared (or still running, no longer declared) backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRow {
    pub name: String,
    pub declared: bool,
    /// `None` when not running and not recorded.
    pub id: Option<BackendId>,
    /// `None` when it does not run.
    pub state: Option<BackendState>,
    pub pid: Option<u32>,
    pub address: Option<String>,
    /// The declared probe.
    pub health: Option<HealthCheck>,
    /// With a probe and a live process: whether it answers (`unhealthy` is the state of
    /// one that stopped answering).
    pub healthy: Option<bool>,
    pub rss_bytes: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Runs the current declaration (false: `up` restarts it).
    pub current: bool,
}

/// What `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub dir: PathBuf,
    /// The declared Python (`3.12`, a key or a path).
    pub python: String,
    /// The runtime `beep.lock` pins (its key, or its path).
    pub runtime: Option<String>,
    /// That runtime is on the machine.
    pub runtime_present: bool,
    pub lock_present: bool,
    /// `beep.lock` resolves the current `beep.toml`.
    pub lock_current: bool,
    pub environment: String,
    pub environment_present: bool,
    /// The environment was synced to the current `beep.lock`.
    pub environment_in_sync: bool,
    pub backends: Vec<BackendRow>,
    /// Nothing for `up` to do.
    pub up_to_date: bool,
}

impl Projects {
    /// Declared vs actual. Starts nothing (not even the daemon).
    pub async fn status(&self, dir: &Path) -> Result<ProjectStatus, Error> {
        let manifest = Manifest::load(dir)?;
        let input = lockfile::input_hash(&manifest)?;
        let lock = ProjectLock::read(&manifest.dir)?;
        let lock_current = lock.as_ref().is_some_and(|l| l.beep.input == input);
        let runtime = lock.as_ref().map(|l| l.beep.runtime.request());
        let runtime_present = match lock.as_ref().map(|l| &l.beep.runtime) {
            Some(super::RuntimePin::Managed { key, .. }) => {
                crate::runtime::install::read_managed_key(&self.paths, key)
                    .is_some_and(|r| r.problem.is_none())
            }
            Some(super::RuntimePin::Adopted { path, .. }) => environment::is_executable(path),
            None => false,
        };
        let env_dir = environment::env_dir(&self.paths, &manifest.env_name);
        let environment_present = environment::is_complete(&env_dir);
        let environment_in_sync = environment_present
            && lock_current
            && SyncState::read(&env_dir).is_some_and(|s| {
                Some(&s.lock) == lock.as_ref().map(|l| &l.hash) && s.project == manifest.dir
            });
        let listing = match DaemonClient::connect_existing(&self.paths).await? {
            Some(client) => client.list().await?.backends,
            None => Vec::new(),
        };
        let ours = project_backends(&listing, &manifest.dir);
        let lock_hash = lock.as_ref().map(|l| l.hash.clone()).unwrap_or_default();
        let mut rows = Vec::new();
        for decl in &manifest.backends {
            let fp = fingerprint(&manifest, decl, &lock_hash);
            // The live run, else the last one recorded. While `up` replaces a run, two
            // are live for a moment: the ready one, and of two ready ones the new one
            // (its fingerprint is the declaration's).
            let run = ours
                .iter()
                .filter(|(name, _)| *name == decl.name)
                .min_by_key(|(_, b)| {
                    (
                        b.state.is_final(),
                        b.state != BackendState::Ready,
                        tag_of(b).is_none_or(|t| t.fingerprint != fp),
                    )
                })
                .map(|(_, b)| *b);
            rows.push(BackendRow {
                name: decl.name.clone(),
                declared: true,
                id: run.map(|b| b.id.clone()),
                state: run.map(|b| b.state),
                pid: run.and_then(|b| b.pid),
                address: run.and_then(|b| b.address.clone()),
                health: decl.health,
                healthy: run
                    .filter(|b| decl.health.is_some() && !b.state.is_final())
                    .map(|b| b.state != BackendState::Unhealthy),
                rss_bytes: run.filter(|b| !b.state.is_final()).map(|b| b.rss_bytes),
                memory_limit: decl.memory_limit,
                current: run.is_some_and(|b| {
                    !b.state.is_final()
                        && b.options
                            .project
                            .as_ref()
                            .is_some_and(|t| t.fingerprint == fp)
                }),
            });
        }
        for (name, b) in &ours {
            if manifest.backends.iter().any(|d| d.name == *name) || b.state.is_final() {
                continue;
            }
            rows.push(BackendRow {
                name: name.clone(),
                declared: false,
                id: Some(b.id.clone()),
                state: Some(b.state),
                pid: b.pid,
                address: b.address.clone(),
                health: b.options.health,
                healthy: b.options.health.map(|_| b.state != BackendState::Unhealthy),
                rss_bytes: Some(b.rss_bytes),
                memory_limit: b.options.memory_limit,
                current: false,
            });
        }
        let up_to_date = lock_current
            && runtime_present
            && environment_in_sync
            && rows.iter().all(|r| r.declared && r.current);
        Ok(ProjectStatus {
            dir: manifest.dir.clone(),
            python: manifest.python.as_request(),
            runtime,
            runtime_present,
            lock_present: lock.is_some(),
            lock_current,
            environment: manifest.env_name.to_string(),
            environment_present,
            environment_in_sync,
            backends: rows,
            up_to_date,
        })
    }
}
