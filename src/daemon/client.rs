//! A client of the daemon: connects (starting the daemon when there is none), says hello,
//! and sends requests.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};
use tokio::sync::Mutex;

use super::protocol::{Answer, Hello, Listing, PROTOCOL, Request, StartSpec};
use super::{DaemonRecord, EXE_ENV, Error};
use crate::Paths;
use crate::backend::{
    self, BackendClient, BackendEvent, BackendId, BackendStatus, Connection, LogLine,
};

type Reader = Lines<BufReader<Box<dyn AsyncRead + Send + Unpin>>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// How long a client waits for a daemon it started to answer.
const START_WAIT: Duration = Duration::from_secs(15);

/// A connection to the home's daemon.
pub struct DaemonClient {
    paths: Paths,
    name: String,
    hello: Hello,
    conn: Mutex<(Reader, Writer)>,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("name", &self.name)
            .field("pid", &self.hello.pid)
            .finish()
    }
}

impl DaemonClient {
    /// Connect to the home's daemon, starting one when none runs.
    pub async fn connect(paths: &Paths) -> Result<Self, Error> {
        if let Ok(client) = Self::open(paths).await {
            return client.greet().await;
        }
        let mut child = spawn_daemon(paths)?;
        let began = Instant::now();
        loop {
            if let Ok(client) = Self::open(paths).await {
                // Reap the daemon when it ends (it lives in its own session).
                std::thread::spawn(move || child.wait());
                return client.greet().await;
            }
            let exited = child.try_wait().ok().flatten();
            // Lost a race with another client's daemon: that one will answer.
            let other_alive = DaemonRecord::read(paths).is_some_and(|r| r.alive());
            if began.elapsed() > START_WAIT
                || (exited.is_some() && !other_alive && began.elapsed() > Duration::from_secs(2))
            {
                let log = paths.logs().join("daemon.log");
                let text = fs_err::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                let last_lines = if tail.is_empty() {
                    String::new()
                } else {
                    let lines: Vec<&str> = tail.into_iter().rev().collect();
                    format!(". Last lines:\n{}", lines.join("\n"))
                };
                return Err(Error::NoAnswer {
                    secs: began.elapsed().as_secs(),
                    log,
                    last_lines,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Connect to a running daemon; `None` when there is none (nothing is started).
    pub async fn connect_existing(paths: &Paths) -> Result<Option<Self>, Error> {
        match Self::open(paths).await {
            Ok(client) => client.greet().await.map(Some),
            Err(_) => Ok(None),
        }
    }

    async fn open(paths: &Paths) -> std::io::Result<Self> {
        let (name, read, write) = open_stream(paths).await?;
        Ok(Self {
            paths: paths.clone(),
            name,
            hello: Hello {
                protocol: 0,
                version: String::new(),
                pid: 0,
            },
            conn: Mutex::new((BufReader::new(read).lines(), write)),
        })
    }

    async fn greet(mut self) -> Result<Self, Error> {
        let hello: Hello = self
            .request(Request::Hello {
                protocol: PROTOCOL,
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .await?;
        if hello.protocol != PROTOCOL {
            return Err(Error::Version {
                pid: hello.pid,
                theirs: hello.version,
                their_protocol: hello.protocol,
                ours: env!("CARGO_PKG_VERSION").to_string(),
            });
        }
        self.hello = hello;
        Ok(self)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.hello.pid
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    async fn request<T: DeserializeOwned>(&self, request: Request) -> Result<T, Error> {
        let io = |source| Error::Io {
            name: self.name.clone(),
            source,
        };
        let mut conn = self.conn.lock().await;
        let mut bytes = serde_json::to_vec(&request).map_err(Error::BadAnswer)?;
        bytes.push(b'\n');
        conn.1.write_all(&bytes).await.map_err(io)?;
        conn.1.flush().await.map_err(io)?;
        let line = conn.0.next_line().await.map_err(io)?.ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ))
        })?;
        match serde_json::from_str::<Answer>(&line).map_err(Error::BadAnswer)? {
            Answer::Ok(value) => serde_json::from_value(value).map_err(Error::BadAnswer),
            Answer::Error(failure) => Err(Error::Remote {
                code: failure.code,
                message: failure.message,
                plain: failure.plain,
                hint: failure.hint,
            }),
        }
    }

    /// Every backend (running and ended) and the records that could not be read.
    pub async fn list(&self) -> Result<Listing, Error> {
        self.request(Request::List { busy: false }).await
    }

    /// The same, each ready backend asked whether a call runs in it (`busy`).
    pub async fn list_with_busy(&self) -> Result<Listing, Error> {
        self.request(Request::List { busy: true }).await
    }

    /// One backend's status.
    pub async fn status(&self, id: &BackendId) -> Result<BackendStatus, Error> {
        self.list()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Start a backend; its status once ready.
    pub async fn start(&self, spec: StartSpec) -> Result<BackendStatus, Error> {
        self.request(Request::Start(Box::new(spec))).await
    }

    pub async fn stop(&self, id: &BackendId) -> Result<(), Error> {
        self.request(Request::Stop { id: id.clone() }).await
    }

    /// Stop every backend; the ids stopped.
    pub async fn stop_all(&self) -> Result<Vec<BackendId>, Error> {
        self.request(Request::StopAll).await
    }

    /// Restart a running backend or start an ended one again.
    pub async fn restart(&self, id: &BackendId) -> Result<BackendStatus, Error> {
        self.request(Request::Restart { id: id.clone() }).await
    }

    /// Forget an ended backend.
    pub async fn remove(&self, id: &BackendId) -> Result<(), Error> {
        self.request(Request::Remove { id: id.clone() }).await
    }

    pub async fn connection(&self, id: &BackendId) -> Result<Connection, Error> {
        self.request(Request::Connection { id: id.clone() }).await
    }

    /// The last `lines` log lines the daemon holds in memory (with its own notes).
    pub async fn log_tail(&self, id: &BackendId, lines: usize) -> Result<Vec<LogLine>, Error> {
        self.request(Request::LogTail {
            id: id.clone(),
            lines,
        })
        .await
    }

    /// Stop every backend and the daemon.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.request(Request::Shutdown).await
    }

    /// An authenticated client of a backend, over its transport.
    pub async fn backend_client(
        &self,
        id: &BackendId,
    ) -> Result<Box<dyn BackendClient>, backend::Error> {
        let c = self.connection(id).await.map_err(|e| match e {
            super::Error::Remote {
                code: super::protocol::FailureCode::NotFound,
                ..
            } => backend::Error::NotFound { id: id.clone() },
            _ => backend::Error::Restart {
                id: id.clone(),
                message: e.to_string(),
            },
        })?;
        Ok(backend::client::connect(c.transport, &c.address, &c.token).await?)
    }

    /// Every backend event from now on (the connection is given to the stream).
    pub async fn watch(self) -> Result<Pin<Box<dyn Stream<Item = BackendEvent> + Send>>, Error> {
        self.request::<()>(Request::Watch).await?;
        let (lines, writer) = self.conn.into_inner();
        Ok(Box::pin(futures_util::stream::unfold(
            (lines, writer),
            |(mut lines, writer)| async move {
                loop {
                    let line = lines.next_line().await.ok()??;
                    if let Ok(event) = serde_json::from_str::<BackendEvent>(&line) {
                        return Some((event, (lines, writer)));
                    }
                }
            },
        )))
    }
}

fn not_found(id: &BackendId) -> Error {
    Error::Remote {
        code: super::protocol::FailureCode::NotFound,
        message: backend::Error::NotFound { id: id.clone() }.to_string(),
        plain: None,
        hint: None,
    }
}

#[cfg(unix)]
async fn open_stream(
    paths: &Paths,
) -> std::io::Result<(String, Box<dyn AsyncRead + Send + Unpin>, Writer)> {
    let path = super::socket_path(paths);
    let stream = tokio::net::UnixStream::connect(&path).await?;
    let (read, write) = stream.into_split();
    Ok((path.display().to_string(), Box::new(read), Box::new(write)))
}

#[cfg(windows)]
async fn open_stream(
    paths: &Paths,
) -> std::io::Result<(String, Box<dyn AsyncRead + Send + Unpin>, Writer)> {
    use tokio::net::windows::named_pipe::ClientOptions;
    const ERROR_PIPE_BUSY: i32 = 231;
    let name = super::pipe_name(paths);
    let began = Instant::now();
    let pipe = loop {
        match ClientOptions::new().open(&name) {
            Ok(pipe) => break pipe,
            Err(e)
                if e.raw_os_error() == Some(ERROR_PIPE_BUSY)
                    && began.elapsed() < Duration::from_secs(5) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let (read, write) = tokio::io::split(pipe);
    Ok((name, Box::new(read), Box::new(write)))
}

/// Set by a program that runs `daemon` itself (the CLI), whatever its file is called.
static RUNS_THE_DAEMON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// This program serves `beep-host daemon` itself: clients it makes start the daemon from
/// its own executable.
pub fn runs_the_daemon() {
    RUNS_THE_DAEMON.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The executable to run as the daemon: `$BEEP_HOST_DAEMON_EXE`, else this program when it
/// is the CLI, else `beep-host` beside it (the app's neighbour).
fn daemon_exe() -> Result<PathBuf, Error> {
    if let Some(exe) = std::env::var_os(EXE_ENV).filter(|e| !e.is_empty()) {
        return Ok(PathBuf::from(exe));
    }
    let me = std::env::current_exe().map_err(|source| Error::Spawn {
        exe: PathBuf::from("beep-host"),
        source,
    })?;
    let name = format!("beep-host{}", std::env::consts::EXE_SUFFIX);
    if RUNS_THE_DAEMON.load(std::sync::atomic::Ordering::Relaxed)
        || me.file_name().is_some_and(|n| n == name.as_str())
    {
        return Ok(me);
    }
    let beside = me.with_file_name(&name);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(Error::ExeMissing { looked: beside })
}

/// A Windows child inherits every inheritable handle of its parent, whatever its own stdio
/// is: the daemon would keep open the pipes of whoever reads this command's output (a
/// script's `capture_output`, a test), who then waits for the daemon to exit. Our std handles
/// stop being inheritable (a child given `Stdio::inherit` still gets a duplicate of them).
#[cfg(windows)]
fn std_handles_not_inherited() {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
    let handles = [
        std::io::stdin().as_raw_handle(),
        std::io::stdout().as_raw_handle(),
        std::io::stderr().as_raw_handle(),
    ];
    for handle in handles {
        if !handle.is_null() {
            // SAFETY: a flag change on a handle of this process; an invalid one only fails.
            unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) };
        }
    }
}

/// Start `beep-host daemon` in its own session, its stderr in `<state>/logs/daemon.log`.
fn spawn_daemon(paths: &Paths) -> Result<std::process::Child, Error> {
    let exe = daemon_exe()?;
    let spawn_err = |source| Error::Spawn {
        exe: exe.clone(),
        source,
    };
    let log_path = paths.logs().join("daemon.log");
    crate::backend::record::create_private_dir(&paths.logs()).map_err(spawn_err)?;
    let mut options = fs_err::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    fs_err::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let log = options.open(&log_path).map_err(spawn_err)?;
    let mut command = std::process::Command::new(&exe);
    command
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.into_file());
    if let Some(home) = std::env::var_os(crate::paths::HOME_ENV) {
        command.env(crate::paths::HOME_ENV, home);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        command.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
        std_handles_not_inherited();
    }
    let child = command.spawn().map_err(spawn_err)?;
    Ok(child)
}
