//! The backends of a project: started, restarted, stopped through the daemon (`up`, `down`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::converge::Projects;
use super::lockfile::{self, ProjectLock};
use super::manifest::{BackendDecl, Manifest};
use crate::backend::{BackendId, BackendOptions, BackendStatus, ProjectTag};
use crate::daemon::{DaemonClient, StartSpec};
use crate::{Progress, Reporter};

/// How long `up` waits for a backend's ready line.
const READY_TIMEOUT_MS: u64 = 60_000;

/// What happened to one declared (or no longer declared) backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Running as declared: left alone.
    Unchanged,
    Started,
    /// Its declaration (or the lock) changed: a new run was started, then the old one
    /// stopped.
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

impl Projects {
    /// Start what is declared and not running, restart what changed, stop what is no
    /// longer declared, leave the rest. A changed backend is replaced, not restarted in
    /// place: the new run starts beside the old one, and the old runs are stopped only
    /// once every new run is ready. When one fails to start, the runs this call started
    /// are stopped (and named in `started`, for the caller's undo) and the old ones keep
    /// running untouched.
    pub(super) async fn converge_backends(
        &self,
        manifest: &Manifest,
        lock: &ProjectLock,
        started: &mut Vec<(String, BackendId)>,
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
        // Old runs to stop once all the new ones are ready.
        let mut replaced: Vec<(String, BackendId)> = Vec::new();
        for decl in &manifest.backends {
            let fingerprint = fingerprint(manifest, decl, &lock.hash);
            let live: Vec<&BackendStatus> = ours
                .iter()
                .filter(|(name, b)| *name == decl.name && !b.state.is_final())
                .map(|(_, b)| *b)
                .collect();
            if let Some(current) = live
                .iter()
                .find(|b| tag_of(b).is_some_and(|t| t.fingerprint == fingerprint))
            {
                // Another run beside it (left by an `up` that was cut short) is an extra.
                replaced.extend(
                    live.iter()
                        .filter(|b| b.id != current.id)
                        .map(|b| (decl.name.clone(), b.id.clone())),
                );
                changes.push(BackendChange {
                    name: decl.name.clone(),
                    action: Action::Unchanged,
                    id: Some(current.id.clone()),
                    pid: current.pid,
                    address: current.address.clone(),
                });
                continue;
            }
            let action = if live.is_empty() {
                Action::Started
            } else {
                for b in &live {
                    reporter.report(Progress::Output {
                        line: format!(
                            "Replacing backend `{}` ({}): its declaration or the lock changed; it runs until the new one is ready",
                            decl.name, b.id
                        ),
                    });
                }
                Action::Restarted
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
            match client
                .start(start_spec(manifest, decl, fingerprint.clone()))
                .await
            {
                Ok(status) => {
                    started.push((decl.name.clone(), status.id.clone()));
                    replaced.extend(live.iter().map(|b| (decl.name.clone(), b.id.clone())));
                    changes.push(BackendChange {
                        name: decl.name.clone(),
                        action,
                        id: Some(status.id),
                        pid: status.pid,
                        address: status.address,
                    });
                }
                Err(source) => {
                    self.forget_failed(&client, manifest, &decl.name, &fingerprint, &live)
                        .await;
                    for b in &live {
                        reporter.report(Progress::Output {
                            line: format!(
                                "Backend `{}` ({}) keeps running as it was",
                                decl.name, b.id
                            ),
                        });
                    }
                    return Err(Error::Start {
                        dir: manifest.dir.clone(),
                        name: decl.name.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        for (name, id) in &replaced {
            reporter.report(Progress::Output {
                line: format!("Stopping backend `{name}` ({id}): replaced"),
            });
            self.stop_one(&client, manifest, name, id).await?;
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

    /// A start that failed may leave its run recorded (ended, or still going after a
    /// timeout): stop and forget every run of `name` with the new `fingerprint` that is
    /// not one of the `live` runs from before.
    async fn forget_failed(
        &self,
        client: &DaemonClient,
        manifest: &Manifest,
        name: &str,
        fingerprint: &str,
        live: &[&BackendStatus],
    ) {
        let Ok(listing) = client.list().await else {
            return;
        };
        for (n, b) in project_backends(&listing.backends, &manifest.dir) {
            let new = tag_of(b).is_some_and(|t| t.fingerprint == fingerprint);
            if n == name && new && !live.iter().any(|l| l.id == b.id) {
                if !b.state.is_final() {
                    let _ = client.stop(&b.id).await;
                }
                let _ = client.remove(&b.id).await;
            }
        }
    }

    /// Stop (and forget) the runs `up` started, when it fails after starting them.
    pub(super) async fn stop_started(
        &self,
        manifest: &Manifest,
        started: &[(String, BackendId)],
    ) -> Result<(), Error> {
        if started.is_empty() {
            return Ok(());
        }
        let Some(client) = DaemonClient::connect_existing(&self.paths).await? else {
            return Ok(());
        };
        for (name, id) in started {
            self.stop_one(&client, manifest, name, id).await?;
        }
        Ok(())
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
            source: Box::new(source),
        };
        client.stop(id).await.map_err(wrap)?;
        // A stopped run is not kept: `up` and `down` leave only the live ones.
        let _ = client.remove(id).await;
        Ok(())
    }

    pub(super) async fn stop_project_backends(
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
        let _lock = self.lock_project(&manifest, reporter).await?;
        self.stop_project_backends(&manifest, reporter).await
    }
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

pub(super) fn tag_of(b: &BackendStatus) -> Option<&ProjectTag> {
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
        runtime: None,
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
