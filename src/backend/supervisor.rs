//! The supervisor: starts backends, watches them, restarts them by policy, samples their
//! CPU and memory, and keeps the ended ones (with their last exit) until they are removed.
//!
//! One process owns the supervisor of a home: the daemon (`crate::daemon`). Every other
//! program (the CLI, the app, the host API's clients) asks it. Its table is persisted as
//! the backend records (`<state>/backends/<id>.json`), so the next daemon can tell what its
//! predecessor was running ([`Supervisor::recover`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::Error;
use super::client::{self, BackendClient};
use super::instance::{self, BackendInstance, Control, Snapshot};
use super::log::BackendLog;
use super::place;
use super::process::{self, LaunchPlan};
use super::record::{self, Unreadable};
use super::spec::{BackendId, BackendSpec, Place, Transport};
use super::stats::StatsSampler;
use super::status::{BackendEvent, BackendState, BackendStatus, LogLine, ProcessStats};
use super::termination;
use crate::Paths;
use crate::venv::EnvName;

/// Longest Unix socket path (`sun_path` is 108 bytes on Linux, 104 on macOS).
const MAX_SOCKET_PATH: usize = 100;

/// Starts and watches backends. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) paths: Paths,
    pub(super) me: (u32, u64),
    pub(super) backends: Mutex<BTreeMap<BackendId, Arc<BackendInstance>>>,
    /// Records that could not be read (reported by `ps`, removable with `rm`).
    pub(super) unreadable: Mutex<Vec<Unreadable>>,
    pub(super) events: broadcast::Sender<BackendEvent>,
    pub(super) sampler: Mutex<StatsSampler>,
    pub(super) stats: Mutex<HashMap<u32, ProcessStats>>,
    pub(super) sampling: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The host API (URL, token) handed to backends started from now on.
    pub(super) host_api: Mutex<Option<(String, String)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.sampling.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// How a client reaches a backend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    pub transport: Transport,
    pub address: String,
    pub token: String,
}

impl Supervisor {
    pub fn new(paths: Paths) -> Self {
        let me = std::process::id();
        let (events, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(Inner {
                paths,
                me: (me, record::process_start_time(me).unwrap_or(0)),
                backends: Mutex::new(BTreeMap::new()),
                unreadable: Mutex::new(Vec::new()),
                events,
                sampler: Mutex::new(StatsSampler::new()),
                stats: Mutex::new(HashMap::new()),
                sampling: Mutex::new(None),
                host_api: Mutex::new(None),
            }),
        }
    }

    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    /// Hand backends started from now on the host API's URL and token
    /// (`BEEP_HOST_URL`, `BEEP_HOST_TOKEN`), so Python inside them can reach it.
    pub fn set_host_api(&self, url: Option<String>, token: Option<String>) {
        if let Ok(mut host) = self.inner.host_api.lock() {
            *host = url.zip(token);
        }
    }

    fn host_api(&self) -> Option<(String, String)> {
        self.inner.host_api.lock().ok().and_then(|h| h.clone())
    }

    /// State changes of the backends.
    pub fn subscribe(&self) -> broadcast::Receiver<BackendEvent> {
        self.inner.events.subscribe()
    }

    /// Start a backend and wait until it is ready (or failed to start). A spec with the id
    /// of an ended backend starts it again (same id, place, transport and policy).
    #[tracing::instrument(skip_all, fields(place = %spec.place, transport = %spec.transport))]
    pub async fn start(&self, spec: BackendSpec) -> Result<BackendId, Error> {
        let paths = &self.inner.paths;
        // Held until the backend is ready and recorded, so that a delete of the environment
        // (or a remove of the runtime), which takes the same lock and then looks for
        // backends, never races a start.
        let _place_lock = place::lock(&self.inner.paths, &spec).await?;
        let (python, home) = match &spec.place {
            Place::Environment(env) => {
                let env_dir = crate::venv::env_dir(paths, env);
                let python = crate::venv::python_in(&env_dir);
                if !python.exists() {
                    return Err(Error::EnvironmentMissing {
                        env: env.to_string(),
                        path: env_dir,
                    });
                }
                if spec.transport == Transport::Rpc
                    && crate::venv::has_grpc(&env_dir) == Some(false)
                {
                    return Err(Error::GrpcMissing {
                        env: env.to_string(),
                        path: env_dir,
                    });
                }
                (python, env_dir)
            }
            Place::Runtime(runtime) => {
                if !runtime.python.is_file() {
                    return Err(Error::RuntimeMissing {
                        key: runtime.key.clone(),
                        python: runtime.python.clone(),
                    });
                }
                let package = process::python_package_dir()?;
                crate::runtime::embedded::prepare_backend(&runtime.python, &package).map_err(
                    |problem| Error::EmbeddedPath {
                        key: runtime.key.clone(),
                        pth: runtime
                            .python
                            .parent()
                            .map(crate::runtime::embedded::backend_pth)
                            .unwrap_or_default(),
                        problem,
                    },
                )?;
                let home = runtime
                    .python
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                (runtime.python.clone(), home)
            }
        };
        let python_path = process::python_package_dir()?;
        let id = spec.id.clone().unwrap_or_else(BackendId::random);
        let records = paths.backend_records();
        let previous = self.own(&id);
        match &previous {
            Some(b) if !b.snapshot().state.is_final() => return Err(Error::IdTaken { id }),
            None if record::path(&records, &id).exists() => return Err(Error::IdTaken { id }),
            _ => {}
        }
        let socket = match spec.transport {
            Transport::Pipe if cfg!(unix) => {
                let dir = paths.sockets();
                record::create_private_dir(&dir).map_err(|source| Error::CreateDir {
                    path: dir.clone(),
                    source,
                })?;
                let socket = dir.join(format!("{id}.sock"));
                if socket.as_os_str().len() > MAX_SOCKET_PATH {
                    return Err(Error::SocketPathTooLong { path: socket });
                }
                Some(socket)
            }
            _ => None,
        };
        record::create_private_dir(&records).map_err(|source| Error::CreateDir {
            path: records.clone(),
            source,
        })?;
        let log = Arc::new(BackendLog::open(paths.logs().join(format!("{id}.log"))));
        let plan = LaunchPlan {
            id: id.clone(),
            env: spec.place.env_field(),
            python,
            env_dir: home,
            transport: spec.transport,
            python_path,
            socket,
            token: process::new_token(),
            ready_timeout: spec.ready_timeout,
            host_api: self.host_api(),
            options: spec.options.clone(),
        };
        let (control, requests) = mpsc::unbounded_channel();
        let restarts = previous.as_ref().map_or(0, |p| p.snapshot().restarts);
        let backend = Arc::new(BackendInstance {
            id: id.clone(),
            spec,
            plan,
            log,
            started_at: process::unix_now(),
            records,
            supervisor: self.inner.me,
            snapshot: Mutex::new(Snapshot {
                state: BackendState::Starting,
                pid: None,
                start_time: 0,
                address: None,
                restarts,
                last_exit: None,
                running_since: None,
                has_record: false,
            }),
            control,
            events: self.inner.events.clone(),
        });
        self.lock().insert(id.clone(), backend.clone());
        let at = match &backend.spec.place {
            Place::Environment(_) => "in",
            Place::Runtime(_) => "on",
        };
        backend.log.note(&format!(
            "starting: {} {at} {}",
            backend.spec.transport, backend.spec.place
        ));
        let _ = self.inner.events.send(BackendEvent::State {
            id: id.clone(),
            state: BackendState::Starting,
            pid: None,
            last_exit: None,
        });
        let failed = |backend: &Arc<BackendInstance>, err: Error| {
            match &previous {
                Some(previous) => self.lock().insert(id.clone(), previous.clone()),
                None => self.lock().remove(&id),
            };
            if let Some(socket) = &backend.plan.socket {
                let _ = fs_err::remove_file(socket);
            }
            backend.log.note(&format!("failed to start: {err}"));
            backend.set_state(BackendState::Crashed);
            self.explain(err, backend)
        };
        let mut launched = match process::launch(&backend.plan, &backend.log).await {
            Ok(launched) => launched,
            Err(err) => return Err(failed(&backend, err)),
        };
        if let Err(err) = backend.mark_ready(&launched) {
            // Never report ready without a record (a full disk): stop the process.
            let _ = termination::stop_child(&mut launched, std::time::Instant::now()).await;
            return Err(failed(&backend, err.into()));
        }
        backend.log.note(&format!("ready: pid {}", launched.pid));
        tokio::spawn(instance::supervise(backend, launched, requests));
        self.ensure_sampling();
        Ok(id)
    }

    /// The runtime `request` names (a key, a version such as `3.12`, or an interpreter
    /// path), as a place to run a backend on.
    pub async fn runtime_place(&self, request: &str) -> Result<Place, Error> {
        place::resolve_runtime(&self.inner.paths, request).await
    }

    /// An `rpc` start that failed because grpc is missing gets the advice.
    fn explain(&self, err: Error, backend: &BackendInstance) -> Error {
        let grpc_missing = match &err {
            Error::Reported { message, kind, .. } => {
                kind == "missing_dependency" || message.contains("No module named 'grpc")
            }
            Error::ExitedBeforeReady { last_lines, .. } => {
                last_lines.contains("No module named 'grpc")
            }
            _ => false,
        };
        if backend.spec.transport == Transport::Rpc && grpc_missing {
            return match &backend.spec.place {
                Place::Environment(env) => Error::GrpcMissing {
                    env: env.to_string(),
                    path: backend.plan.env_dir.clone(),
                },
                Place::Runtime(runtime) => Error::RuntimeGrpcMissing {
                    key: runtime.key.clone(),
                    python: runtime.python.clone(),
                },
            };
        }
        err
    }

    /// Stop a backend (an ended one stays ended). A damaged record's process is stopped
    /// through the pid still readable in it, and the record removed.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn stop(&self, id: &BackendId) -> Result<(), Error> {
        if let Some(backend) = self.own(id) {
            if backend.snapshot().state.is_final() {
                return Ok(());
            }
            backend.log.note("stopping (asked)");
            let (reply, done) = oneshot::channel();
            if backend.control.send(Control::Stop(reply)).is_ok() {
                let _ = done.await;
            }
            return Ok(());
        }
        if self.remove_unreadable(id).await {
            return Ok(());
        }
        Err(Error::NotFound { id: id.clone() })
    }

    /// Stop every running backend; the ids that were stopped.
    pub async fn stop_all(&self) -> Vec<BackendId> {
        let ids: Vec<BackendId> = self
            .list()
            .into_iter()
            .filter(|s| !s.state.is_final())
            .map(|status| status.id)
            .collect();
        let stops = ids.iter().map(|id| self.stop(id));
        futures_util::future::join_all(stops).await;
        let damaged: Vec<BackendId> = self
            .unreadable()
            .iter()
            .filter_map(|u| u.id.clone())
            .collect();
        for id in damaged {
            self.remove_unreadable(&id).await;
        }
        ids
    }

    /// Forget an ended backend (its record goes; its log file stays). A running one must
    /// be stopped first.
    pub async fn remove(&self, id: &BackendId) -> Result<(), Error> {
        if let Some(backend) = self.own(id) {
            if !backend.snapshot().state.is_final() {
                return Err(Error::StillRunning { id: id.clone() });
            }
            self.forget(id);
            return Ok(());
        }
        if self.remove_unreadable(id).await {
            return Ok(());
        }
        Err(Error::NotFound { id: id.clone() })
    }

    /// Forget backends that ended more than `age` ago; the ids removed.
    pub fn remove_ended_before(&self, age: Duration) -> Vec<BackendId> {
        let now = process::unix_now();
        let old: Vec<BackendId> = self
            .lock()
            .values()
            .filter(|b| {
                let snap = b.snapshot();
                let ended_at = snap.last_exit.as_ref().map_or(b.started_at, |e| e.at);
                snap.state.is_final() && now.saturating_sub(ended_at) >= age.as_secs()
            })
            .map(|b| b.id.clone())
            .collect();
        for id in &old {
            self.forget(id);
        }
        old
    }

    /// Take an ended backend out of the table and remove its record.
    fn forget(&self, id: &BackendId) {
        self.lock().remove(id);
        record::remove_files(&self.inner.paths.backend_records(), id, None);
        let _ = self
            .inner
            .events
            .send(BackendEvent::Removed { id: id.clone() });
    }

    async fn remove_unreadable(&self, id: &BackendId) -> bool {
        let bad = {
            let mut list = self.unreadable();
            let at = list.iter().position(|u| u.id.as_ref() == Some(id));
            at.map(|at| list.remove(at))
        };
        let Some(bad) = bad else { return false };
        if bad.process_alive()
            && let Some(pid) = bad.pid
        {
            termination::stop_foreign(|| bad.process_alive(), pid, std::time::Instant::now()).await;
        }
        let _ = fs_err::remove_file(&bad.path);
        true
    }

    /// Stop every running backend (the daemon's exit).
    pub async fn stop_own(&self) {
        self.stop_all().await;
    }

    /// Stop and start again (same id and address kind; a new process). An ended backend
    /// is started again.
    pub async fn restart(&self, id: &BackendId) -> Result<(), Error> {
        let backend = self
            .own(id)
            .ok_or_else(|| Error::NotFound { id: id.clone() })?;
        if backend.snapshot().state.is_final() {
            let mut spec = backend.spec.clone();
            spec.id = Some(id.clone());
            self.start(spec).await?;
            return Ok(());
        }
        backend.log.note("restarting (asked)");
        let (reply, done) = oneshot::channel();
        backend
            .control
            .send(Control::Restart(reply))
            .map_err(|_| Error::Ended { id: id.clone() })?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Error::Restart {
                id: id.clone(),
                message,
            }),
            Err(_) => Err(Error::Ended { id: id.clone() }),
        }
    }

    /// Every backend, running or ended, in the order they were started.
    pub fn list(&self) -> Vec<BackendStatus> {
        let own: Vec<Arc<BackendInstance>> = self.lock().values().cloned().collect();
        let stats = self
            .inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut list: Vec<BackendStatus> = own
            .iter()
            .map(|b| {
                let pid = b.snapshot().pid;
                b.status(pid.and_then(|p| stats.get(&p).copied()))
            })
            .collect();
        list.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        list
    }

    /// Every backend, each ready one asked (at most `wait`) whether a call runs in it.
    pub async fn list_with_busy(&self, wait: Duration) -> Vec<BackendStatus> {
        let mut list = self.list();
        let asks = list.iter().map(|s| async move {
            if s.state != BackendState::Ready {
                return false;
            }
            let ask = async {
                let client = self.client(&s.id).await.ok()?;
                let info = client.info().await.ok()?;
                info.get("busy").and_then(serde_json::Value::as_bool)
            };
            tokio::time::timeout(wait, ask)
                .await
                .ok()
                .flatten()
                .unwrap_or(false)
        });
        let busy = futures_util::future::join_all(asks).await;
        for (status, busy) in list.iter_mut().zip(busy) {
            status.busy = busy;
        }
        list
    }

    /// Records that could not be read, with what is wrong.
    pub fn unreadable_records(&self) -> Vec<Unreadable> {
        self.unreadable().clone()
    }

    /// The status of one backend.
    pub fn status(&self, id: &BackendId) -> Result<BackendStatus, Error> {
        self.list()
            .into_iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| Error::NotFound { id: id.clone() })
    }

    /// The running backends of one environment (environment delete refuses while any runs).
    pub fn backends_in_env(&self, env: &EnvName) -> Vec<BackendStatus> {
        self.list()
            .into_iter()
            .filter(|s| s.runtime.is_none() && s.env == env.as_str() && !s.state.is_final())
            .collect()
    }

    /// The running backends on one runtime itself (runtime remove refuses while any runs).
    pub fn backends_on_runtime(&self, key: &str) -> Vec<BackendStatus> {
        self.list()
            .into_iter()
            .filter(|s| s.runtime.as_ref().is_some_and(|r| r.key == key) && !s.state.is_final())
            .collect()
    }

    /// Sample CPU and memory now (twice, 250 ms apart, so CPU has a base).
    pub async fn refresh_stats(&self) {
        self.sample();
        tokio::time::sleep(Duration::from_millis(250)).await;
        self.sample();
    }

    /// How to reach a ready backend: transport, address and token.
    pub fn connection(&self, id: &BackendId) -> Result<Connection, Error> {
        let backend = self
            .own(id)
            .ok_or_else(|| Error::NotFound { id: id.clone() })?;
        let snap = backend.snapshot();
        if snap.state.is_final() {
            return Err(Error::Ended { id: id.clone() });
        }
        let address = snap
            .address
            .ok_or_else(|| Error::NotReady { id: id.clone() })?;
        Ok(Connection {
            transport: backend.spec.transport,
            address,
            token: backend.plan.token.clone(),
        })
    }

    /// A client of a backend, over its transport, authenticated.
    pub async fn client(&self, id: &BackendId) -> Result<Box<dyn BackendClient>, Error> {
        let c = self.connection(id)?;
        Ok(client::connect(c.transport, &c.address, &c.token).await?)
    }

    /// The captured log lines so far and the lines that follow.
    pub fn follow_logs(
        &self,
        id: &BackendId,
    ) -> Result<(Vec<LogLine>, broadcast::Receiver<LogLine>), Error> {
        let backend = self
            .own(id)
            .ok_or_else(|| Error::NotFound { id: id.clone() })?;
        Ok(backend.log.follow())
    }

    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<BackendId, Arc<BackendInstance>>> {
        self.inner
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn unreadable(&self) -> std::sync::MutexGuard<'_, Vec<Unreadable>> {
        self.inner
            .unreadable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn own(&self, id: &BackendId) -> Option<Arc<BackendInstance>> {
        self.lock().get(id).cloned()
    }

    /// Backends whose process runs (or is being started again).
    pub fn running_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|b| !b.snapshot().state.is_final())
            .count()
    }
}
