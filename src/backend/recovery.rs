//! Recovery: what a new daemon makes of the table its predecessor left (the records).

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::instance::{BackendInstance, Snapshot};
use super::log::BackendLog;
use super::process::{self, LaunchPlan};
use super::record::BackendRecord;
use super::spec::{BackendId, BackendSpec, Place};
use super::status::{BackendState, LastExit};
use super::supervisor::Supervisor;
use super::termination;

impl Supervisor {
    /// Read the table a previous owner left (the records). Ended backends are shown as they
    /// ended; those it was running were lost with it (their processes die with their
    /// owner; one that survived is stopped now). A lost backend whose policy is
    /// `on-failure` is started again with the same id. Unreadable records are reported.
    pub async fn recover(&self) -> Vec<BackendId> {
        let dir = self.inner.paths.backend_records();
        let (records, unreadable) = BackendRecord::scan(&dir);
        for bad in &unreadable {
            tracing::warn!(path = %bad.path.display(), error = %bad.error, "unreadable backend record");
            if bad.process_alive()
                && let Some(pid) = bad.pid
            {
                termination::stop_foreign(|| bad.process_alive(), pid, std::time::Instant::now())
                    .await;
            }
        }
        *self.unreadable() = unreadable;
        let mut restarted = Vec::new();
        for mut rec in records {
            if self.own(&rec.id).is_some() {
                continue;
            }
            let newly_lost = !rec.state.is_final();
            if newly_lost {
                if rec.backend_alive() {
                    termination::stop_foreign(
                        || rec.backend_alive(),
                        rec.pid,
                        std::time::Instant::now(),
                    )
                    .await;
                }
                let reason = if rec.supervisor_pid == self.inner.me.0 {
                    "lost: its owner ended".to_string()
                } else {
                    format!(
                        "lost: the daemon that owned it (pid {}) ended",
                        rec.supervisor_pid
                    )
                };
                rec.state = BackendState::Lost;
                rec.last_exit = Some(LastExit {
                    code: None,
                    signal: None,
                    at: process::unix_now(),
                    last_lines: rec
                        .last_exit
                        .take()
                        .map(|e| e.last_lines)
                        .unwrap_or_default(),
                    reason: Some(reason),
                });
                if let Some(socket) = &rec.socket {
                    let _ = fs_err::remove_file(socket);
                }
                if let Err(err) = rec.write(&dir) {
                    tracing::warn!(%err, "cannot mark a lost backend");
                }
            }
            let lost_to_restart =
                rec.state == BackendState::Lost && rec.restart == super::RestartPolicy::OnFailure;
            let Ok(place) = Place::from_fields(&rec.env, rec.runtime.as_ref()) else {
                continue;
            };
            let mut spec = BackendSpec::on(place, rec.transport).restart(rec.restart);
            spec.id = Some(rec.id.clone());
            // The declaration travels with the backend: a restart here keeps it.
            spec.options = rec.options.clone();
            let ended = self.ended_instance(spec.clone(), &rec);
            if newly_lost && let Some(exit) = &rec.last_exit {
                ended.log.note(&exit.describe());
            }
            self.lock().insert(rec.id.clone(), ended);
            if lost_to_restart {
                match self.start(spec).await {
                    Ok(id) => restarted.push(id),
                    Err(err) => {
                        tracing::warn!(id = %rec.id, %err, "cannot restart a lost backend")
                    }
                }
            }
        }
        restarted
    }

    /// An ended backend, rebuilt from its record.
    fn ended_instance(&self, spec: BackendSpec, rec: &BackendRecord) -> Arc<BackendInstance> {
        let (control, _) = mpsc::unbounded_channel();
        let (python, env_dir) = match &spec.place {
            Place::Environment(env) => {
                let env_dir = crate::venv::env_dir(&self.inner.paths, env);
                (crate::venv::python_in(&env_dir), env_dir)
            }
            Place::Runtime(runtime) => (
                runtime.python.clone(),
                runtime.python.parent().map(Into::into).unwrap_or_default(),
            ),
        };
        Arc::new(BackendInstance {
            id: rec.id.clone(),
            plan: LaunchPlan {
                id: rec.id.clone(),
                env: rec.env.clone(),
                python,
                env_dir,
                transport: rec.transport,
                python_path: Default::default(),
                socket: rec.socket.clone(),
                token: rec.token.clone(),
                ready_timeout: spec.ready_timeout,
                host_api: None,
                options: spec.options.clone(),
            },
            spec,
            log: Arc::new(BackendLog::open(rec.log_file.clone())),
            started_at: rec.started_at,
            records: self.inner.paths.backend_records(),
            supervisor: self.inner.me,
            snapshot: Mutex::new(Snapshot {
                state: rec.state,
                pid: None,
                start_time: 0,
                address: Some(rec.address.clone()).filter(|a| !a.is_empty()),
                restarts: rec.restarts,
                last_exit: rec.last_exit.clone(),
                running_since: None,
                has_record: true,
            }),
            control,
            events: self.inner.events.clone(),
        })
    }
}
