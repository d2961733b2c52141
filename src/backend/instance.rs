//! One backend the daemon supervises: its state and the task that watches its process,
//! restarts it by policy, and stops it. Ended backends stay (with their last exit) until
//! removed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::Error;
use super::client;
use super::health::watch_health;
use super::log::BackendLog;
use super::process::{self, LaunchPlan, Launched};
use super::record::{self, BackendRecord};
use super::spec::{self, BackendId, BackendSpec, RestartPolicy};
use super::status::{BackendEvent, BackendState, BackendStatus, LastExit, ProcessStats};
use super::termination;

/// Requests to the supervising task.
#[derive(Debug)]
pub(crate) enum Control {
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<Result<(), String>>),
    /// The stats sampler saw process `pid`'s tree use `rss` bytes, over the memory limit.
    OverMemory {
        pid: u32,
        rss: u64,
    },
}

/// What changes while the backend runs.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub state: BackendState,
    pub pid: Option<u32>,
    pub start_time: u64,
    pub address: Option<String>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub running_since: Option<Instant>,
    pub has_record: bool,
}

/// A backend supervised by this process.
#[derive(Debug)]
pub(crate) struct BackendInstance {
    pub id: BackendId,
    pub spec: BackendSpec,
    pub plan: LaunchPlan,
    pub log: Arc<BackendLog>,
    pub started_at: u64,
    pub records: PathBuf,
    pub supervisor: (u32, u64),
    pub snapshot: Mutex<Snapshot>,
    pub control: mpsc::UnboundedSender<Control>,
    pub events: broadcast::Sender<BackendEvent>,
}

impl BackendInstance {
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        if let Err(err) = self.try_update(change) {
            tracing::warn!(id = %self.id, %err, "cannot update the backend record");
        }
    }

    /// Change the snapshot, announce it, and write the record (when it has one).
    fn try_update(&self, change: impl FnOnce(&mut Snapshot)) -> Result<(), record::Error> {
        let (event, record) = {
            let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            let before = (snap.state, snap.pid);
            change(&mut snap);
            let event = ((snap.state, snap.pid) != before).then(|| BackendEvent::State {
                id: self.id.clone(),
                state: snap.state,
                pid: snap.pid,
                last_exit: snap.last_exit.clone(),
            });
            let record = snap.has_record.then(|| self.record_of(&snap));
            (event, record)
        };
        let written = record.map(|r| r.write(&self.records)).transpose();
        if let Some(event) = event {
            tracing::debug!(?event, "backend state");
            let _ = self.events.send(event);
        }
        written.map(|_| ())
    }

    pub fn set_state(&self, state: BackendState) {
        self.update(|snap| snap.state = state);
    }

    fn record_of(&self, snap: &Snapshot) -> BackendRecord {
        BackendRecord {
            id: self.id.clone(),
            pid: snap.pid.unwrap_or(0),
            start_time: snap.start_time,
            transport: self.spec.transport,
            address: snap.address.clone().unwrap_or_default(),
            token: self.plan.token.clone(),
            env: self.spec.place.env_field(),
            runtime: self.spec.place.runtime_field(),
            started_at: self.started_at,
            options: self.spec.options.clone(),
            supervisor_pid: self.supervisor.0,
            supervisor_start_time: self.supervisor.1,
            state: snap.state,
            restarts: snap.restarts,
            last_exit: snap.last_exit.clone(),
            log_file: self.log.path().to_path_buf(),
            socket: self.plan.socket.clone(),
            restart: self.spec.restart,
        }
    }

    pub fn status(&self, stats: Option<ProcessStats>) -> BackendStatus {
        let snap = self.snapshot();
        let live = !snap.state.is_final() && snap.state != BackendState::Restarting;
        let stats = stats.filter(|_| live).unwrap_or_default();
        BackendStatus {
            id: self.id.clone(),
            env: self.spec.place.env_field(),
            runtime: self.spec.place.runtime_field(),
            transport: self.spec.transport,
            address: snap.address.clone(),
            state: snap.state,
            busy: false,
            pid: snap.pid.filter(|_| live),
            cpu_percent: stats.cpu_percent,
            rss_bytes: stats.rss_bytes,
            uptime_secs: snap
                .running_since
                .filter(|_| live)
                .map(|t| t.elapsed().as_secs())
                .unwrap_or(0),
            restarts: snap.restarts,
            last_exit: snap.last_exit.clone(),
            supervisor_pid: self.supervisor.0,
            record: record::path(&self.records, &self.id),
            log_file: self.log.path().to_path_buf(),
            started_at: self.started_at,
            options: self.spec.options.clone(),
        }
    }

    /// A process is ready: remember it and write the record. Never ready without a
    /// record: when it cannot be written (a full disk), the caller stops the process.
    pub fn mark_ready(&self, launched: &Launched) -> Result<(), record::Error> {
        let start_time = record::process_start_time(launched.pid).unwrap_or(0);
        let written = self.try_update(|snap| {
            snap.state = BackendState::Ready;
            snap.pid = Some(launched.pid);
            snap.start_time = start_time;
            snap.address = Some(launched.address.clone());
            snap.running_since = Some(Instant::now());
            snap.has_record = true;
        });
        if written.is_err() {
            self.snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .has_record = false;
        }
        written
    }

    /// Final: the record keeps the end (until removed); the socket goes.
    pub(crate) fn finish(&self, state: BackendState) {
        self.update(|snap| {
            snap.state = state;
            snap.running_since = None;
        });
        if let Some(socket) = &self.plan.socket {
            let _ = fs_err::remove_file(socket);
        }
        let last_exit = self.snapshot().last_exit;
        let _ = self.events.send(BackendEvent::Ended {
            id: self.id.clone(),
            state,
            last_exit,
        });
    }

    /// Ask a ready process to shut down, then escalate to signals.
    async fn stop_process(&self, launched: &mut Launched) -> Option<std::process::ExitStatus> {
        let began = Instant::now();
        let address = launched.address.clone();
        let transport = self.spec.transport;
        let token = self.plan.token.clone();
        let ask = async move {
            let client = client::connect(transport, &address, &token).await?;
            client.shutdown().await
        };
        if let Ok(Err(err)) = tokio::time::timeout(Duration::from_secs(1), ask).await {
            tracing::debug!(id = %self.id, %err, "shutdown op failed; escalating");
        }
        let status = termination::stop_child(launched, began).await;
        finish_readers(launched).await;
        status
    }

    async fn relaunch(&self) -> Result<Launched, Error> {
        if let Some(socket) = &self.plan.socket {
            let _ = fs_err::remove_file(socket);
        }
        let mut launched = process::launch(&self.plan, &self.log).await?;
        if let Err(err) = self.mark_ready(&launched) {
            self.stop_process(&mut launched).await;
            return Err(err.into());
        }
        Ok(launched)
    }
}

/// Give the log readers a moment to drain the pipes of an ended process.
async fn finish_readers(launched: &mut Launched) {
    for reader in launched.readers.drain(..) {
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_millis(500), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

fn last_lines(log: &BackendLog) -> Vec<String> {
    log.tail(20).into_iter().map(|l| l.text).collect()
}

/// The task that owns the process: wait for its exit, a request, a failed health probe
/// or a memory limit exceeded; restart by policy.
pub(crate) async fn supervise(
    backend: Arc<BackendInstance>,
    first: Launched,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let limits = backend.spec.limits;
    let health = backend.spec.options.health;
    let mut attempts = 0u32;
    let mut current = Some(first);
    loop {
        let Some(mut launched) = current.take() else {
            break;
        };
        let running_since = Instant::now();
        let address = launched.address.clone();
        let happened = tokio::select! {
            status = launched.child.wait() => Happened::Exited(status.ok()),
            request = control.recv() => Happened::Control(request),
            missed = watch_health(&backend, health, &address) => Happened::Unhealthy(missed),
        };
        // How the process ended on its own (or was ended for a reason), to be handled by
        // the restart policy.
        let (status, reason) = match happened {
            Happened::Control(Some(Control::Stop(reply))) => {
                backend.set_state(BackendState::Stopping);
                backend.stop_process(&mut launched).await;
                backend.finish(BackendState::Stopped);
                let _ = reply.send(());
                break;
            }
            Happened::Control(Some(Control::Restart(reply))) => {
                backend.set_state(BackendState::Stopping);
                backend.stop_process(&mut launched).await;
                backend.set_state(BackendState::Restarting);
                match backend.relaunch().await {
                    Ok(next) => {
                        let _ = reply.send(Ok(()));
                        current = Some(next);
                        continue;
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.to_string()));
                        backend.update(|snap| {
                            snap.last_exit = Some(LastExit {
                                code: None,
                                signal: None,
                                at: process::unix_now(),
                                last_lines: last_lines(&backend.log),
                                reason: None,
                            });
                        });
                        backend.finish(BackendState::Crashed);
                        break;
                    }
                }
            }
            Happened::Control(Some(Control::OverMemory { pid, rss })) => {
                let Some(limit) = backend.spec.options.memory_limit else {
                    current = Some(launched);
                    continue;
                };
                if pid != launched.pid || rss <= limit {
                    // About a process that has already been replaced.
                    current = Some(launched);
                    continue;
                }
                let reason = format!(
                    "memory limit {} exceeded ({})",
                    spec::format_bytes(limit),
                    spec::format_bytes(rss)
                );
                tracing::warn!(id = %backend.id, %reason, "stopping the backend");
                backend.log.note(&format!("stopping: {reason}"));
                backend.set_state(BackendState::Stopping);
                let status = termination::kill_child(&mut launched).await;
                finish_readers(&mut launched).await;
                (status, Some(reason))
            }
            Happened::Control(None) => {
                // The supervisor is gone: stop quietly.
                backend.stop_process(&mut launched).await;
                backend.finish(BackendState::Stopped);
                break;
            }
            Happened::Unhealthy(missed) => {
                let reason = format!("unhealthy: no answer to {missed} health probes");
                tracing::warn!(id = %backend.id, %reason, "stopping the backend");
                backend.log.note(&format!("{reason}; stopping it"));
                backend.set_state(BackendState::Unhealthy);
                let status = termination::kill_child(&mut launched).await;
                finish_readers(&mut launched).await;
                (status, Some(reason))
            }
            Happened::Exited(status) => {
                finish_readers(&mut launched).await;
                (status, None)
            }
        };
        let mut exit = match status {
            Some(status) => process::exit_of(status, last_lines(&backend.log)),
            None => LastExit {
                code: None,
                signal: None,
                at: process::unix_now(),
                last_lines: last_lines(&backend.log),
                reason: None,
            },
        };
        let clean = reason.is_none() && exit.is_success();
        exit.reason = reason;
        tracing::info!(id = %backend.id, exit = %exit.describe(), "backend process ended");
        backend
            .log
            .note(&format!("backend process ended ({})", exit.describe()));
        backend.update(|snap| snap.last_exit = Some(exit));
        if clean {
            backend.finish(BackendState::Stopped);
            break;
        }
        backend.set_state(BackendState::Crashed);
        if backend.spec.restart == RestartPolicy::Never {
            backend.finish(BackendState::Crashed);
            break;
        }
        if running_since.elapsed() >= limits.stable_after {
            attempts = 0;
        }
        if attempts >= limits.max_restarts {
            tracing::warn!(id = %backend.id, "restart limit reached");
            backend.finish(BackendState::Crashed);
            break;
        }
        let delay = limits.delay(attempts);
        attempts += 1;
        backend.update(|snap| {
            snap.state = BackendState::Restarting;
            snap.restarts += 1;
        });
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        let stop = loop {
            tokio::select! {
                _ = &mut sleep => break None,
                request = control.recv() => match request {
                    // About the process that just ended.
                    Some(Control::OverMemory { .. }) => continue,
                    other => break Some(other),
                },
            }
        };
        if let Some(request) = stop {
            backend.finish(BackendState::Stopped);
            if let Some(Control::Stop(reply)) = request {
                let _ = reply.send(());
            }
            break;
        }
        backend.log.note("restarting (policy on-failure)");
        // Start again; a failed start counts as another crash.
        loop {
            match backend.relaunch().await {
                Ok(next) => {
                    current = Some(next);
                    break;
                }
                Err(err) => {
                    tracing::warn!(id = %backend.id, %err, "restart failed");
                    backend.update(|snap| {
                        snap.state = BackendState::Crashed;
                        snap.last_exit = Some(LastExit {
                            code: None,
                            signal: None,
                            at: process::unix_now(),
                            last_lines: last_lines(&backend.log),
                            reason: None,
                        });
                    });
                    if attempts >= limits.max_restarts {
                        break;
                    }
                    tokio::time::sleep(limits.delay(attempts)).await;
                    attempts += 1;
                    backend.update(|snap| {
                        snap.state = BackendState::Restarting;
                        snap.restarts += 1;
                    });
                }
            }
        }
        if current.is_none() {
            backend.finish(BackendState::Crashed);
            break;
        }
    }
    // Answer requests that arrive after the end.
    control.close();
    while let Ok(request) = control.try_recv() {
        match request {
            Control::Stop(reply) => {
                let _ = reply.send(());
            }
            Control::Restart(reply) => {
                let _ = reply.send(Err("the backend has ended".into()));
            }
            Control::OverMemory { .. } => {}
        }
    }
}

/// What ended a wait in [`supervise`].
enum Happened {
    Exited(Option<std::process::ExitStatus>),
    Control(Option<Control>),
    /// This many health probes in a row went unanswered.
    Unhealthy(u32),
}
