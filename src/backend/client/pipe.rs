//! The pipe transport: a Unix domain socket (a named pipe on Windows, see [`stream`])
//! carrying frames of a 4-byte big-endian length and a JSON object. Requests carry ids; answers may come back in any order and are
//! matched to their callers by id, so one connection serves many concurrent calls.
//!
//! Writes go straight to the socket from the caller (a non-blocking `try_write` under a
//! short lock); only what the socket does not take is queued for a writer task. Reading is
//! leader/follower: one waiting caller at a time reads the socket, completes the callers
//! whose answers it finds, and hands the reading over when its own answer is in, so a lone
//! caller is woken by the socket itself, with no task in between.
//!
//! A lone call (the only pipe call in flight in the process) first spins on the socket for
//! up to `SPIN` before parking: a parked caller is woken through the runtime's I/O driver,
//! which from `block_on` (or `#[tokio::main]`) is a wake-up on another thread and costs
//! ~25 us per call, about as long as the backend takes to answer `eval 1+1`. The spin
//! yields the CPU between reads, and when it runs out (a real call, a loaded machine) the
//! client spins again only every `SPIN_RETRY`-th lone call until a spin pays again. With
//! several calls in flight nobody spins, so concurrent callers keep the runtime to themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::value::ReplyError;
use super::{BackendClient, CallEvent, CallStream, Error, Op, Reply};
use crate::backend::spec::Transport;
use frame::dispatch_frames;
use stream::Stream;

mod frame;
mod stream;

/// How long a lone call polls the socket before it parks (see the module comment).
const SPIN: Duration = Duration::from_micros(120);
/// After a spin that ran out (the backend was slower, e.g. a real call or a loaded machine),
/// only every this many-th lone call spins, until a spin catches its answer again.
const SPIN_RETRY: u32 = 32;

/// Pipe calls in flight in this process, over all clients.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one call in `IN_FLIGHT` while alive (also when the call is cancelled).
struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

type Answer = Result<Map<String, Value>, Error>;

#[derive(Debug)]
struct Shared {
    address: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    /// Streamed requests: every frame with their id (events, then the final answer).
    streams: Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>,
    queue: Mutex<Vec<u8>>,
    wake_writer: Notify,
    /// The read buffer; whoever takes it out is the reader (the leader).
    read_buf: Mutex<Option<Vec<u8>>>,
    /// Wakes a waiting caller to take over reading.
    wake_reader: Notify,
    closed: AtomicBool,
    /// Lone calls to make before spinning again; 0 = spin.
    spin_skip: std::sync::atomic::AtomicU32,
}

/// A client of a pipe backend.
#[derive(Debug)]
pub struct PipeClient {
    shared: Arc<Shared>,
    stream: Arc<Stream>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for PipeClient {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PipeClient {
    /// Connect to the socket (the pipe name on Windows) at `address` and authenticate with
    /// `token`.
    pub async fn connect(address: &str, token: &str) -> Result<Self, Error> {
        let stream = stream::connect(address)
            .await
            .map_err(|source| Error::Connect {
                address: address.to_string(),
                source: Box::new(source),
            })?;
        let stream = Arc::new(stream);
        let shared = Arc::new(Shared {
            address: address.to_string(),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            queue: Mutex::new(Vec::new()),
            wake_writer: Notify::new(),
            read_buf: Mutex::new(Some(Vec::with_capacity(64 * 1024))),
            wake_reader: Notify::new(),
            closed: AtomicBool::new(false),
            spin_skip: std::sync::atomic::AtomicU32::new(0),
        });
        let tasks = vec![tokio::spawn(write_loop(stream.clone(), shared.clone()))];
        let client = Self {
            shared,
            stream,
            tasks,
        };
        let mut auth = Map::new();
        auth.insert("token".into(), Value::String(token.to_string()));
        match client.send(0, "auth", auth).await {
            Ok(answer) if answer.get("value") == Some(&Value::Bool(true)) => Ok(client),
            Ok(answer) if answer.contains_key("error") => Err(Error::Unauthorized {
                address: address.to_string(),
            }),
            Err(Error::Closed { .. }) => Err(Error::Unauthorized {
                address: address.to_string(),
            }),
            Err(err) => Err(err),
            Ok(answer) => Err(Error::Protocol {
                address: address.to_string(),
                message: format!("unexpected answer to auth: {}", Value::Object(answer)),
            }),
        }
    }

    /// The frame `{"id", "op", ...fields}`.
    fn frame(&self, id: u64, op: &str, mut fields: Map<String, Value>) -> Result<Vec<u8>, Error> {
        fields.insert("id".into(), Value::from(id));
        fields.insert("op".into(), Value::String(op.to_string()));
        let body = serde_json::to_vec(&Value::Object(fields)).map_err(|e| Error::Protocol {
            address: self.shared.address.clone(),
            message: e.to_string(),
        })?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// Send one frame `{"id", "op", ...fields}` and wait for the answer with that id.
    async fn send(&self, id: u64, op: &str, fields: Map<String, Value>) -> Answer {
        let closed = || Error::Closed {
            address: self.shared.address.clone(),
        };
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let frame = self.frame(id, op, fields)?;

        let _in_flight = InFlight::new();
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.write(&frame);
        if self.shared.closed.load(Ordering::Acquire) {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(closed());
        }
        self.wait(rx).await.unwrap_or_else(|_| Err(closed()))
    }

    /// Wait for an answer, reading the socket while nobody else does.
    async fn wait(
        &self,
        mut rx: oneshot::Receiver<Answer>,
    ) -> Result<Answer, oneshot::error::RecvError> {
        loop {
            if let Some(mut leader) = Leader::take(&self.shared) {
                if let Some(answer) = leader
                    .read_until(&self.stream, true, || rx.try_recv().ok())
                    .await
                {
                    return Ok(answer);
                }
                return rx.await;
            }
            tokio::select! {
                biased;
                answer = &mut rx => return answer,
                _ = self.shared.wake_reader.notified() => {}
            }
        }
    }

    /// Send a request whose every frame (events, then the final answer) comes to the
    /// returned stream.
    fn open_stream(&self, op: &str, fields: Map<String, Value>) -> Result<CallStream, Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                address: self.shared.address.clone(),
            });
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(id, op, fields)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let follower = Follower {
            shared: self.shared.clone(),
            stream: self.stream.clone(),
            rx,
            id,
            ended: false,
        };
        self.write(&frame);
        Ok(follower.into_stream())
    }

    /// Write now if nothing is queued; queue what the socket does not take.
    fn write(&self, frame: &[u8]) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !queue.is_empty() {
            queue.extend_from_slice(frame);
            return;
        }
        let mut written = 0;
        while written < frame.len() {
            match self.stream.try_write(&frame[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    drop(queue);
                    fail_all(&self.shared);
                    return;
                }
            }
        }
        if written < frame.len() {
            queue.extend_from_slice(&frame[written..]);
            drop(queue);
            self.shared.wake_writer.notify_one();
        }
    }
}

#[async_trait::async_trait]
impl BackendClient for PipeClient {
    fn transport(&self) -> Transport {
        Transport::Pipe
    }

    async fn request(&self, op: Op, session: Option<&str>) -> Result<Reply, Error> {
        let (name, fields) = op.into_request(session, None);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let answer = self.send(id, &name, fields).await?;
        Reply::from_json(answer).map_err(|e| match e {
            ReplyError::Remote(remote) => Error::Remote(remote),
            ReplyError::Malformed(message) => Error::Protocol {
                address: self.shared.address.clone(),
                message,
            },
        })
    }

    async fn request_stream(
        &self,
        op: Op,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error> {
        let (name, mut fields) = op.into_request(session, call);
        fields.insert("stream".into(), Value::Bool(true));
        self.open_stream(&name, fields)
    }

    async fn attach(&self, call: &str, after: u64) -> Result<CallStream, Error> {
        let mut fields = Map::new();
        fields.insert("call".into(), Value::String(call.to_string()));
        fields.insert("after".into(), Value::from(after));
        self.open_stream("attach", fields)
    }
}

/// The reading side of a streamed request: takes its turn reading the socket like a
/// waiting call does, and forgets the request when dropped.
struct Follower {
    shared: Arc<Shared>,
    stream: Arc<Stream>,
    rx: mpsc::UnboundedReceiver<Answer>,
    id: u64,
    ended: bool,
}

impl Follower {
    /// The next frame of this request; `None` once the connection is gone and all was read.
    async fn next_frame(&mut self) -> Option<Answer> {
        loop {
            match self.rx.try_recv() {
                Ok(answer) => return Some(answer),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if let Some(mut leader) = Leader::take(&self.shared) {
                let rx = &mut self.rx;
                if let Some(answer) = leader
                    .read_until(&self.stream, false, || rx.try_recv().ok())
                    .await
                {
                    return Some(answer);
                }
                drop(leader);
                return self.rx.recv().await;
            }
            tokio::select! {
                biased;
                answer = self.rx.recv() => return answer,
                _ = self.shared.wake_reader.notified() => {}
            }
        }
    }

    fn into_stream(self) -> CallStream {
        futures_util::stream::unfold(self, |mut this| async move {
            if this.ended {
                return None;
            }
            let item = match this.next_frame().await {
                Some(Ok(frame)) => CallEvent::from_json(frame).map_err(|message| Error::Protocol {
                    address: this.shared.address.clone(),
                    message,
                }),
                Some(Err(err)) => Err(err),
                None => Err(Error::Closed {
                    address: this.shared.address.clone(),
                }),
            };
            this.ended = !matches!(
                item,
                Ok(CallEvent::Output { .. } | CallEvent::Dropped { .. })
            );
            Some((item, this))
        })
        .boxed()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.shared
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Fail every waiting call: the connection is gone.
fn fail_all(shared: &Shared) {
    shared.closed.store(true, Ordering::Release);
    let pending: Vec<_> = shared
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    for (_, tx) in pending {
        let _ = tx.send(Err(Error::Closed {
            address: shared.address.clone(),
        }));
    }
    // Dropping the senders ends the streams (with `Closed`).
    shared
        .streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

async fn write_loop(stream: Arc<Stream>, shared: Arc<Shared>) {
    enum Next {
        Idle,
        Wait,
        Again,
        Broken,
    }
    loop {
        shared.wake_writer.notified().await;
        loop {
            let next = {
                let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.is_empty() {
                    Next::Idle
                } else {
                    match stream.try_write(&queue) {
                        Ok(n) => {
                            queue.drain(..n);
                            Next::Again
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Next::Wait,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Next::Again,
                        Err(_) => Next::Broken,
                    }
                }
            };
            match next {
                Next::Idle => break,
                Next::Again => {}
                Next::Wait => {
                    if stream.writable().await.is_err() {
                        fail_all(&shared);
                        return;
                    }
                }
                Next::Broken => {
                    fail_all(&shared);
                    return;
                }
            }
        }
    }
}

/// The caller that reads the socket; gives the buffer back (and wakes a waiting caller to
/// read next) when dropped, also when its call is cancelled.
struct Leader<'a> {
    shared: &'a Shared,
    buf: Option<Vec<u8>>,
}

impl<'a> Leader<'a> {
    fn take(shared: &'a Shared) -> Option<Self> {
        let buf = shared
            .read_buf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some(Self {
            shared,
            buf: Some(buf),
        })
    }

    /// Until when this call may spin, or `None` (not alone, or spinning did not pay lately).
    fn spin_deadline(&self) -> Option<Instant> {
        if IN_FLIGHT.load(Ordering::Relaxed) != 1 {
            return None;
        }
        let skip = self.shared.spin_skip.load(Ordering::Relaxed);
        if skip > 0 {
            self.shared.spin_skip.store(skip - 1, Ordering::Relaxed);
            return None;
        }
        Some(Instant::now() + SPIN)
    }

    /// Read the socket until `ready` gives something; `None` when the connection closed
    /// first (the caller's channel then has, or will have, the failure). A lone call spins
    /// first if `spin` (see the module comment); a stream's follower never does.
    async fn read_until<T>(
        &mut self,
        stream: &Stream,
        spin: bool,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let mut spin_until = (!spin).then_some(None);
        loop {
            if let Some(answer) = ready() {
                return Some(answer);
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return None;
            }
            let buf = self.buf.as_mut().expect("the leader holds the buffer");
            buf.reserve(16 * 1024);
            match stream.try_read_buf(buf) {
                Ok(0) => fail_all(self.shared),
                Ok(_) => {
                    if !dispatch_frames(buf, self.shared) {
                        fail_all(self.shared);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if spin_until.is_none() {
                        spin_until = Some(self.spin_deadline());
                    }
                    if let Some(Some(until)) = spin_until {
                        if Instant::now() < until && IN_FLIGHT.load(Ordering::Relaxed) == 1 {
                            // Give the CPU to the backend if it shares our core, and return
                            // `Pending` once so futures polled next to this one (`join_all`,
                            // `select!`) get to send their calls (which ends the spin).
                            std::thread::yield_now();
                            tokio::task::yield_now().await;
                            continue;
                        }
                        // The spin ran out: skip spinning for a while.
                        spin_until = Some(None);
                        self.shared.spin_skip.store(SPIN_RETRY, Ordering::Relaxed);
                    }
                    if stream.readable().await.is_err() {
                        fail_all(self.shared);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => fail_all(self.shared),
            }
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        *self
            .shared
            .read_buf
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.buf.take();
        let waiting = !self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            || !self
                .shared
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
        if waiting {
            self.shared.wake_reader.notify_one();
        }
    }
}
