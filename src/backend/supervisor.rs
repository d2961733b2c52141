//! The supervisor: starts backends, watches them, and lists, stops and restarts every
//! backend on the machine — its own directly, those of other `beep-host` processes
//! through their records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::Error;
use super::client::{self, BackendClient};
use super::instance::{self, BackendInstance, Control, Snapshot};
use super::log::BackendLog;
use super::process::{self, LaunchPlan};
use super::record::{self, BackendRecord};
use super::spec::{BackendId, BackendSpec, Transport};
use super::stats::StatsSampler;
use super::status::{BackendEvent, BackendState, BackendStatus, LogLine, ProcessStats};
use crate::Paths;
use crate::lock::LockFile;
use crate::venv::EnvName;

/// Longest Unix socket path (`sun_path` is 108 bytes on Linux, 104 on macOS).
const MAX_SOCKET_PATH: usize = 100;

/// How often the stats of the process trees are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Starts and watches backends. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    paths: Paths,
    me: (u32, u64),
    backends: Mutex<BTreeMap<BackendId, Arc<BackendInstance>>>,
    events: broadcast::Sender<BackendEvent>,
    sampler: Mutex<StatsSampler>,
    stats: Mutex<HashMap<u32, ProcessStats>>,
    sampling: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The host API (URL, token) handed to backends started from now on.
    host_api: Mutex<Option<(String, String)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.sampling.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
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

    /// State changes of this supervisor's backends.
    pub fn subscribe(&self) -> broadcast::Receiver<BackendEvent> {
        self.inner.events.subscribe()
    }

    /// Start a backend and wait until it is ready (or failed to start).
    #[tracing::instrument(skip_all, fields(env = %spec.env, transport = %spec.transport))]
    pub async fn start(&self, spec: BackendSpec) -> Result<BackendId, Error> {
        let paths = &self.inner.paths;
        // Held until the backend is ready and recorded, so that a delete of the environment
        // (which takes the same lock, then looks for backends) never races a start.
        let _env_lock = self.env_lock(&spec).await?;
        let env_dir = paths.env_dir(&spec.env);
        let python = process::interpreter(&env_dir);
        if !python.exists() {
            return Err(Error::EnvironmentMissing {
                env: spec.env.to_string(),
                path: env_dir,
            });
        }
        if spec.transport == Transport::Rpc && process::has_grpc(&env_dir) == Some(false) {
            return Err(Error::GrpcMissing {
                env: spec.env.to_string(),
                path: env_dir,
            });
        }
        let python_path = process::python_package_dir()?;
        let id = spec.id.clone().unwrap_or_else(BackendId::random);
        let records = paths.backend_records();
        if record::path(&records, &id).exists() || self.own(&id).is_some() {
            return Err(Error::IdTaken { id });
        }
        let socket = match spec.transport {
            Transport::Pipe => {
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
            env: spec.env.to_string(),
            env_dir,
            transport: spec.transport,
            python_path,
            socket,
            token: process::new_token(),
            ready_timeout: spec.ready_timeout,
            host_api: self.host_api(),
        };
        let (control, requests) = mpsc::unbounded_channel();
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
                restarts: 0,
                last_exit: None,
                running_since: None,
                has_record: false,
            }),
            control,
            events: self.inner.events.clone(),
        });
        self.lock().insert(id.clone(), backend.clone());
        let _ = self.inner.events.send(BackendEvent::State {
            id: id.clone(),
            state: BackendState::Starting,
            pid: None,
            last_exit: None,
        });
        let launched = match process::launch(&backend.plan, &backend.log).await {
            Ok(launched) => launched,
            Err(err) => {
                self.lock().remove(&id);
                if let Some(socket) = &backend.plan.socket {
                    let _ = std::fs::remove_file(socket);
                }
                backend.set_state(BackendState::Crashed);
                return Err(self.explain(err, &backend));
            }
        };
        backend.mark_ready(&launched);
        tokio::spawn(instance::supervise(backend, launched, requests));
        self.ensure_sampling();
        Ok(id)
    }

    /// The environment's lock, waiting at most the ready timeout for another operation.
    async fn env_lock(&self, spec: &BackendSpec) -> Result<LockFile, Error> {
        let path = crate::venv::lock_path(&self.inner.paths, spec.env.as_str());
        let busy = |source| Error::EnvironmentBusy {
            env: spec.env.to_string(),
            source,
        };
        let what = format!("environment `{}`", spec.env);
        match LockFile::try_acquire(&path, &what) {
            Ok(lock) => return Ok(lock),
            Err(crate::lock::Error::Busy { .. }) => {}
            Err(e) => return Err(busy(e)),
        }
        let wait_path = path.clone();
        let waiting = tokio::task::spawn_blocking(move || LockFile::acquire(&wait_path));
        match tokio::time::timeout(spec.ready_timeout, waiting).await {
            Ok(Ok(lock)) => lock.map_err(busy),
            Ok(Err(join)) => Err(busy(crate::lock::Error::Take {
                path,
                source: std::io::Error::other(join),
            })),
            Err(_) => Err(busy(crate::lock::Error::Busy { what, path })),
        }
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
            return Error::GrpcMissing {
                env: backend.spec.env.to_string(),
                path: backend.plan.env_dir.clone(),
            };
        }
        err
    }

    /// Stop a backend: this process's directly, another's through its record.
    #[tracing::instrument(skip_all, fields(id = %id))]
    pub async fn stop(&self, id: &BackendId) -> Result<(), Error> {
        if let Some(backend) = self.own(id) {
            let (reply, done) = oneshot::channel();
            if backend.control.send(Control::Stop(reply)).is_ok() {
                let _ = done.await;
            }
            self.lock().remove(id);
            return Ok(());
        }
        let record = self.foreign(id)?;
        stop_foreign(&self.inner.paths, record).await;
        Ok(())
    }

    /// Stop every backend on the machine; the ids that were stopped.
    pub async fn stop_all(&self) -> Vec<BackendId> {
        let ids: Vec<BackendId> = self.list().into_iter().map(|status| status.id).collect();
        let stops = ids.iter().map(|id| self.stop(id));
        futures_util::future::join_all(stops).await;
        ids
    }

    /// Stop this process's backends only (on exit).
    pub async fn stop_own(&self) {
        let ids: Vec<BackendId> = self.lock().keys().cloned().collect();
        futures_util::future::join_all(ids.iter().map(|id| self.stop(id))).await;
    }

    /// Stop and start again (same id, token and address kind; a new process).
    pub async fn restart(&self, id: &BackendId) -> Result<(), Error> {
        if let Some(backend) = self.own(id) {
            let (reply, done) = oneshot::channel();
            backend
                .control
                .send(Control::Restart(reply))
                .map_err(|_| Error::Ended { id: id.clone() })?;
            return match done.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(Error::Restart {
                    id: id.clone(),
                    message,
                }),
                Err(_) => Err(Error::Ended { id: id.clone() }),
            };
        }
        let record = self.foreign(id)?;
        let dir = self.inner.paths.backend_records();
        if !record.supervisor_alive() {
            return Err(Error::Unsupervised { id: id.clone() });
        }
        let _ = std::fs::write(record::marker(&dir, id, "restart"), b"");
        let began = Instant::now();
        ask_shutdown(&record).await;
        let old = record.pid;
        let pid_alive = || record.backend_alive();
        process::stop_foreign(pid_alive, old, began).await;
        let deadline = Instant::now() + Duration::from_secs(35);
        while Instant::now() < deadline {
            match BackendRecord::read(&record::path(&dir, id)) {
                Ok(now) if now.pid != old && now.state == BackendState::Ready => return Ok(()),
                Ok(now) if now.state.is_final() => break,
                Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(Error::Restart {
            id: id.clone(),
            message: "the backend did not come back ready".into(),
        })
    }

    /// Every backend on the machine: this process's, then the others' (stale records are
    /// removed on the way).
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
        for record in self.foreign_records() {
            let stats = stats.get(&record.pid).copied().unwrap_or_default();
            list.push(status_of_record(&self.inner.paths, record, stats));
        }
        list
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
            .filter(|s| s.env == env.as_str() && !s.state.is_final())
            .collect()
    }

    /// Sample CPU and memory now (twice, 250 ms apart, so CPU has a base): for one-shot
    /// callers such as `beep-host ps`.
    pub async fn refresh_stats(&self) {
        self.sample();
        tokio::time::sleep(Duration::from_millis(250)).await;
        self.sample();
    }

    /// A client of a backend, over its transport, authenticated.
    pub async fn client(&self, id: &BackendId) -> Result<Box<dyn BackendClient>, Error> {
        let (transport, address, token) = match self.own(id) {
            Some(backend) => {
                let address = backend
                    .snapshot()
                    .address
                    .ok_or_else(|| Error::NotReady { id: id.clone() })?;
                (backend.spec.transport, address, backend.plan.token.clone())
            }
            None => {
                let record = self.foreign(id)?;
                (record.transport, record.address, record.token)
            }
        };
        Ok(client::connect(transport, &address, &token).await?)
    }

    /// The captured log lines so far and the lines that follow (this process's backends;
    /// for others read [`BackendStatus::log_file`]).
    pub fn follow_logs(
        &self,
        id: &BackendId,
    ) -> Result<(Vec<LogLine>, broadcast::Receiver<LogLine>), Error> {
        let backend = self
            .own(id)
            .ok_or_else(|| Error::NotFound { id: id.clone() })?;
        Ok(backend.log.follow())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<BackendId, Arc<BackendInstance>>> {
        self.inner
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn own(&self, id: &BackendId) -> Option<Arc<BackendInstance>> {
        self.lock().get(id).cloned()
    }

    fn foreign(&self, id: &BackendId) -> Result<BackendRecord, Error> {
        let path = record::path(&self.inner.paths.backend_records(), id);
        if !path.exists() {
            return Err(Error::NotFound { id: id.clone() });
        }
        let record = BackendRecord::read(&path)?;
        if record.is_stale() {
            record.remove(&self.inner.paths.backend_records());
            return Err(Error::NotFound { id: id.clone() });
        }
        Ok(record)
    }

    /// Records of other processes, without the stale ones (which are removed).
    fn foreign_records(&self) -> Vec<BackendRecord> {
        let dir = self.inner.paths.backend_records();
        let own = self.lock().keys().cloned().collect::<Vec<_>>();
        BackendRecord::list(&dir)
            .into_iter()
            .filter(|r| !own.contains(&r.id))
            .filter(|r| {
                if r.is_stale() {
                    tracing::info!(id = %r.id, pid = r.pid, "removing a stale backend record");
                    r.remove(&dir);
                    false
                } else {
                    true
                }
            })
            .collect()
    }

    fn sample(&self) {
        let mut pids: Vec<u32> = self
            .lock()
            .values()
            .filter_map(|b| {
                let snap = b.snapshot();
                snap.pid.filter(|_| !snap.state.is_final())
            })
            .collect();
        pids.extend(self.foreign_records().iter().map(|r| r.pid));
        let fresh = self
            .inner
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(&pids);
        *self.inner.stats.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Refresh stats about once a second while this supervisor lives.
    fn ensure_sampling(&self) {
        let mut sampling = self
            .inner
            .sampling
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if sampling.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        *sampling = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATS_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Supervisor { inner }.sample();
            }
        }));
    }
}

fn status_of_record(paths: &Paths, record: BackendRecord, stats: ProcessStats) -> BackendStatus {
    let alive = record.backend_alive();
    let stats = if alive {
        stats
    } else {
        ProcessStats::default()
    };
    let uptime = if alive {
        process::unix_now().saturating_sub(record.start_time)
    } else {
        0
    };
    BackendStatus {
        record: record::path(&paths.backend_records(), &record.id),
        id: record.id,
        env: record.env,
        transport: record.transport,
        address: Some(record.address),
        state: record.state,
        pid: alive.then_some(record.pid),
        cpu_percent: stats.cpu_percent,
        rss_bytes: stats.rss_bytes,
        uptime_secs: uptime,
        restarts: record.restarts,
        last_exit: record.last_exit,
        supervisor_pid: record.supervisor_pid,
        log_file: record.log_file,
        started_at: record.started_at,
    }
}

/// Best-effort `shutdown` op to a backend (1 s).
async fn ask_shutdown(record: &BackendRecord) {
    let ask = async {
        let client = client::connect(record.transport, &record.address, &record.token).await?;
        client.shutdown().await
    };
    if let Ok(Err(err)) = tokio::time::timeout(Duration::from_secs(1), ask).await {
        tracing::debug!(id = %record.id, %err, "shutdown op failed; escalating");
    }
}

/// Stop a backend another process supervises: leave a `stop` marker so its supervisor
/// does not restart it, ask it to shut down, escalate to signals, then make sure the
/// record and socket are gone.
async fn stop_foreign(paths: &Paths, record: BackendRecord) {
    let dir = paths.backend_records();
    let _ = std::fs::write(record::marker(&dir, &record.id, "stop"), b"");
    let began = Instant::now();
    if record.backend_alive() {
        ask_shutdown(&record).await;
        let pid_alive = || record.backend_alive();
        process::stop_foreign(pid_alive, record.pid, began).await;
    }
    // Let a live supervisor clean up after itself, then do it for it.
    let path = record::path(&dir, &record.id);
    let deadline = Instant::now() + Duration::from_secs(1);
    while path.exists() && record.supervisor_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    record.remove(&dir);
}
