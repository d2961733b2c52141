//! The daemon process: one per home. It owns the [`Supervisor`], serves the local protocol
//! and the host API, and exits when it has had nothing to do for a while or its home is
//! gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::protocol::{Answer, Failure, FailureCode, Hello, Listing, PROTOCOL, Request};
use super::{DaemonRecord, Error};
use crate::backend::{self, BackendSpec, Place, Supervisor};
use crate::host::{self, Host};
use crate::lock::LockFile;
use crate::venv::EnvName;
use crate::{Config, Paths};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Exit after this long with no running backend and no client.
    pub idle: Duration,
    /// Ended backends are forgotten after this long.
    pub retention: Duration,
    /// Host API addresses (loopback only); `None` serves none.
    pub http: Option<std::net::SocketAddr>,
    pub grpc: Option<std::net::SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            idle: Duration::from_secs(600),
            retention: Duration::from_secs(7 * 24 * 3600),
            http: Some(loopback),
            grpc: Some(loopback),
        }
    }
}

/// A bound daemon, before it serves.
pub struct Daemon {
    paths: Paths,
    options: Options,
    supervisor: Supervisor,
    record: DaemonRecord,
    listener: Listener,
    shutdown: CancellationToken,
    host_done: tokio::task::JoinHandle<()>,
    _lock: LockFile,
}

impl Daemon {
    /// Take the home's daemon lock (or name the daemon that holds it), read the table the
    /// previous daemon left, serve the host API and bind the local socket.
    pub async fn bind(paths: Paths, config: Config, options: Options) -> Result<Self, Error> {
        let lock_path = paths.locks().join("daemon.lock");
        let lock = match LockFile::try_acquire(&lock_path, "the daemon") {
            Ok(lock) => lock,
            Err(crate::lock::Error::Busy { .. }) => {
                let record = DaemonRecord::read(&paths);
                return Err(Error::Running {
                    pid: record.as_ref().map(|r| r.pid),
                    socket: record.map(|r| r.socket),
                    home: paths.state.clone(),
                });
            }
            Err(source) => return Err(Error::Lock(source)),
        };
        // The lock is ours: whatever the files say, nobody else serves this home.
        DaemonRecord::remove(&paths);
        let supervisor = Supervisor::new(paths.clone());
        let restarted = supervisor.recover().await;
        if !restarted.is_empty() {
            tracing::info!(?restarted, "restarted lost backends (policy on-failure)");
        }
        let shutdown = CancellationToken::new();
        let host = Arc::new(Host::new(paths.clone(), config, supervisor.clone())?);
        let (served, host_done) = if options.http.is_some() || options.grpc.is_some() {
            host::serve(host, options.http, options.grpc, shutdown.clone()).await?
        } else {
            (
                host::Served {
                    http: None,
                    grpc: None,
                    record: paths.state.join(host::RECORD_FILE),
                },
                tokio::spawn(async {}),
            )
        };
        let listener = Listener::bind(&paths)?;
        let me = std::process::id();
        let record = DaemonRecord {
            pid: me,
            start_time: backend::record::process_start_time(me).unwrap_or(0),
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: PROTOCOL,
            socket: listener.name.clone(),
            http: served.http.map(|a| format!("http://{a}")),
            grpc: served.grpc.map(|a| a.to_string()),
            started_at: backend::process::unix_now(),
        };
        record.write(&paths)?;
        Ok(Self {
            paths,
            options,
            supervisor,
            record,
            listener,
            shutdown,
            host_done,
            _lock: lock,
        })
    }

    pub fn record(&self) -> &DaemonRecord {
        &self.record
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Serve until asked to stop, a signal, idleness, or the home's removal; then stop
    /// every backend and remove the daemon's files.
    pub async fn serve(self) -> Result<(), Error> {
        let clients = Arc::new(AtomicUsize::new(0));
        let last_activity = Arc::new(std::sync::Mutex::new(Instant::now()));
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_sweep = Instant::now();
        let why = loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(stream) => {
                        let session = Session {
                            supervisor: self.supervisor.clone(),
                            shutdown: self.shutdown.clone(),
                            clients: clients.clone(),
                            last_activity: last_activity.clone(),
                        };
                        clients.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(session.run(stream));
                    }
                    Err(err) => tracing::warn!(%err, "accept failed"),
                },
                _ = self.shutdown.cancelled() => break "asked to stop",
                _ = terminated() => break "terminated",
                _ = tick.tick() => {
                    if !self.paths.state.exists() {
                        break "its home was removed";
                    }
                    if self.supervisor.running_count() > 0 || clients.load(Ordering::SeqCst) > 0 {
                        *last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    } else if last_activity.lock().unwrap_or_else(|e| e.into_inner()).elapsed() >= self.options.idle {
                        break "idle";
                    }
                    if last_sweep.elapsed() >= Duration::from_secs(60) {
                        last_sweep = Instant::now();
                        self.supervisor.remove_ended_before(self.options.retention);
                    }
                }
            }
        };
        tracing::info!(why, "daemon exiting");
        self.shutdown.cancel();
        self.supervisor.stop_all().await;
        let _ = self.host_done.await;
        self.listener.close();
        if DaemonRecord::read(&self.paths).is_some_and(|r| r.pid == self.record.pid) {
            DaemonRecord::remove(&self.paths);
        }
        Ok(())
    }
}

/// SIGTERM or Ctrl+C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The longest request line a client may send.
const MAX_REQUEST: usize = 1 << 20;

/// One connected client.
struct Session {
    supervisor: Supervisor,
    shutdown: CancellationToken,
    clients: Arc<AtomicUsize>,
    last_activity: Arc<std::sync::Mutex<Instant>>,
}

impl Session {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        let mut greeted = false;
        let mut events: Option<broadcast::Receiver<backend::BackendEvent>> = None;
        loop {
            // At most one byte over the cap is read: a longer line is refused, not buffered.
            let room = (MAX_REQUEST + 1).saturating_sub(line.len()) as u64;
            let mut limited = (&mut reader).take(room);
            let read = tokio::select! {
                read = limited.read_until(b'\n', &mut line) => read,
                event = next_event(&mut events) => {
                    let Some(event) = event else { continue };
                    if write_line(&mut write, &event).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) if line.len() > MAX_REQUEST => {
                    let refused = failure(
                        FailureCode::Invalid,
                        format!("Failed to read the request: longer than {MAX_REQUEST} bytes"),
                    );
                    let _ = write_line(&mut write, &refused).await;
                    break;
                }
                Ok(_) if !line.ends_with(b"\n") => continue,
                Ok(_) => {}
            }
            let request = std::mem::take(&mut line);
            *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            let answer = match serde_json::from_slice::<Request>(&request) {
                Err(err) => failure(
                    FailureCode::Invalid,
                    format!("Failed to parse the request: {err}"),
                ),
                Ok(Request::Hello { protocol, .. }) => {
                    greeted = protocol == PROTOCOL;
                    ok(Hello {
                        protocol: PROTOCOL,
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        pid: std::process::id(),
                    })
                }
                Ok(_) if !greeted => failure(
                    FailureCode::Invalid,
                    format!(
                        "Failed to serve the request: say hello with protocol {PROTOCOL} first"
                    ),
                ),
                Ok(Request::Watch) => {
                    events = Some(self.supervisor.subscribe());
                    ok(())
                }
                Ok(request) => self.answer(request).await,
            };
            if write_line(&mut write, &answer).await.is_err() {
                break;
            }
        }
        self.clients.fetch_sub(1, Ordering::SeqCst);
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    async fn answer(&self, request: Request) -> Answer {
        let s = &self.supervisor;
        let result: Result<serde_json::Value, backend::Error> = match request {
            Request::List { busy } => {
                let backends = if busy {
                    s.list_with_busy(Duration::from_millis(300)).await
                } else {
                    s.list()
                };
                return ok(Listing {
                    backends,
                    unreadable: s.unreadable_records(),
                });
            }
            Request::Start(spec) => {
                let spec = *spec;
                let place = match &spec.runtime {
                    Some(request) => match s.runtime_place(request).await {
                        Ok(place) => place,
                        Err(err) => return Answer::Error(Failure::of(code_of(&err), &err)),
                    },
                    None => match EnvName::parse(&spec.env) {
                        Ok(env) => Place::Environment(env),
                        Err(err) => return failure(FailureCode::Invalid, err.to_string()),
                    },
                };
                let mut full = BackendSpec::on(place, spec.transport).restart(spec.restart);
                full.ready_timeout = Duration::from_millis(spec.ready_timeout_ms.max(100));
                full.options = spec.options;
                match s.start(full).await {
                    Ok(id) => s.status(&id).map(to_value),
                    Err(err) => Err(err),
                }
            }
            Request::Stop { id } => s.stop(&id).await.map(to_value),
            Request::StopAll => Ok(to_value(s.stop_all().await)),
            Request::Restart { id } => match s.restart(&id).await {
                Ok(()) => s.status(&id).map(to_value),
                Err(err) => Err(err),
            },
            Request::Remove { id } => s.remove(&id).await.map(to_value),
            Request::Connection { id } => s.connection(&id).map(to_value),
            Request::LogTail { id, lines } => s.follow_logs(&id).map(|(tail, _)| {
                let skip = tail.len().saturating_sub(lines);
                to_value(tail.into_iter().skip(skip).collect::<Vec<_>>())
            }),
            Request::Shutdown => {
                self.shutdown.cancel();
                Ok(serde_json::Value::Null)
            }
            Request::Hello { .. } | Request::Watch => Ok(serde_json::Value::Null),
        };
        match result {
            Ok(value) => Answer::Ok(value),
            Err(err) => Answer::Error(Failure::of(code_of(&err), &err)),
        }
    }
}

async fn next_event(
    events: &mut Option<broadcast::Receiver<backend::BackendEvent>>,
) -> Option<backend::BackendEvent> {
    match events {
        Some(rx) => match rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => {
                *events = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// The daemon's failure code for a core error: the core's code, in the protocol's terms.
fn code_of(err: &backend::Error) -> FailureCode {
    err.code().into()
}

fn to_value<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn ok<T: serde::Serialize>(value: T) -> Answer {
    Answer::Ok(to_value(value))
}

fn failure(code: FailureCode, message: String) -> Answer {
    Answer::Error(Failure::new(code, message))
}

async fn write_line<W: AsyncWrite + Unpin, T: serde::Serialize>(
    write: &mut W,
    value: &T,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.flush().await
}

/// The local listener: a Unix socket, or a named pipe on Windows.
struct Listener {
    name: String,
    #[cfg(unix)]
    inner: tokio::net::UnixListener,
    #[cfg(windows)]
    inner: tokio::sync::Mutex<tokio::net::windows::named_pipe::NamedPipeServer>,
}

impl Listener {
    #[cfg(unix)]
    fn bind(paths: &Paths) -> Result<Self, Error> {
        let path = super::socket_path(paths);
        let dir = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        crate::backend::record::create_private_dir(&dir).map_err(|source| Error::Bind {
            name: path.display().to_string(),
            source,
        })?;
        let _ = fs_err::remove_file(&path);
        let inner = tokio::net::UnixListener::bind(&path).map_err(|source| Error::Bind {
            name: path.display().to_string(),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt;
        let _ = fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        Ok(Self {
            name: path.display().to_string(),
            inner,
        })
    }

    #[cfg(unix)]
    async fn accept(&self) -> std::io::Result<tokio::net::UnixStream> {
        self.inner.accept().await.map(|(stream, _)| stream)
    }

    #[cfg(unix)]
    fn close(&self) {
        let _ = fs_err::remove_file(&self.name);
    }

    #[cfg(windows)]
    fn bind(paths: &Paths) -> Result<Self, Error> {
        use tokio::net::windows::named_pipe::ServerOptions;
        let name = super::pipe_name(paths);
        let server = ServerOptions::new()
            .first_pipe_instance(true)
            .reject_remote_clients(true)
            .create(&name)
            .map_err(|source| Error::Bind {
                name: name.clone(),
                source,
            })?;
        Ok(Self {
            name,
            inner: tokio::sync::Mutex::new(server),
        })
    }

    #[cfg(windows)]
    async fn accept(&self) -> std::io::Result<tokio::net::windows::named_pipe::NamedPipeServer> {
        use tokio::net::windows::named_pipe::ServerOptions;
        let mut server = self.inner.lock().await;
        server.connect().await?;
        let next = ServerOptions::new()
            .reject_remote_clients(true)
            .create(&self.name)?;
        Ok(std::mem::replace(&mut *server, next))
    }

    #[cfg(windows)]
    fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendId;

    /// The daemon answers with the core's code: it once said Failed where the app said
    /// Invalid (an environment without grpcio for an rpc backend).
    #[test]
    fn failure_codes_follow_the_core() {
        let id = BackendId::parse("b1").unwrap();
        let cases = [
            (
                backend::Error::GrpcMissing {
                    env: "a".into(),
                    path: "/e/a".into(),
                },
                FailureCode::Invalid,
            ),
            (
                backend::Error::Ended { id: id.clone() },
                FailureCode::Conflict,
            ),
            (
                backend::Error::NotFound { id: id.clone() },
                FailureCode::NotFound,
            ),
            (
                backend::Error::CurrentExe {
                    source: std::io::Error::other("x"),
                },
                FailureCode::Failed,
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(code_of(&err), expected, "{err}");
            assert_eq!(FailureCode::from(err.code()), expected);
        }
        // A code that crosses the protocol comes back as the same core code.
        for code in [
            FailureCode::Invalid,
            FailureCode::NotFound,
            FailureCode::Conflict,
        ] {
            assert_eq!(FailureCode::from(crate::ErrorCode::from(code)), code);
        }
    }
}
