//! The pipe transport: a Unix domain socket carrying frames of a 4-byte big-endian length
//! and a JSON object. Requests carry ids; answers may come back in any order and are
//! matched to their callers by id, so one connection serves many concurrent calls.
//!
//! Writes go straight to the socket from the caller (a non-blocking `try_write` under a
//! short lock); only what the socket does not take is queued for a writer task. One
//! reader task parses frames and completes the waiting callers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::value::ReplyError;
use super::{BackendClient, Error, Op, Reply};
use crate::backend::spec::Transport;

/// The largest frame accepted from the backend.
const MAX_FRAME: usize = 256 * 1024 * 1024;

type Answer = Result<Map<String, Value>, Error>;

#[derive(Debug)]
struct Shared {
    address: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    queue: Mutex<Vec<u8>>,
    wake_writer: Notify,
    closed: AtomicBool,
}

/// A client of a pipe backend.
#[derive(Debug)]
pub struct PipeClient {
    shared: Arc<Shared>,
    #[cfg(unix)]
    stream: Arc<tokio::net::UnixStream>,
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
    /// Connect to the socket at `address` and authenticate with `token`.
    #[cfg(unix)]
    pub async fn connect(address: &str, token: &str) -> Result<Self, Error> {
        let stream = tokio::net::UnixStream::connect(address)
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
            queue: Mutex::new(Vec::new()),
            wake_writer: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let tasks = vec![
            tokio::spawn(read_loop(stream.clone(), shared.clone())),
            tokio::spawn(write_loop(stream.clone(), shared.clone())),
        ];
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

    #[cfg(not(unix))]
    pub async fn connect(address: &str, _token: &str) -> Result<Self, Error> {
        Err(Error::Connect {
            address: address.to_string(),
            source: "the pipe transport needs Unix domain sockets here".into(),
        })
    }

    /// Send one frame `{"id", "op", ...fields}` and wait for the answer with that id.
    #[cfg(unix)]
    async fn send(&self, id: u64, op: &str, mut fields: Map<String, Value>) -> Answer {
        let closed = || Error::Closed {
            address: self.shared.address.clone(),
        };
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        fields.insert("id".into(), Value::from(id));
        fields.insert("op".into(), Value::String(op.to_string()));
        let body = serde_json::to_vec(&Value::Object(fields)).map_err(|e| Error::Protocol {
            address: self.shared.address.clone(),
            message: e.to_string(),
        })?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);

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
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Write now if nothing is queued; queue what the socket does not take.
    #[cfg(unix)]
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
        let (name, mut fields) = op.into_parts();
        if let Some(session) = session {
            fields.insert("session".into(), Value::String(session.to_string()));
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        #[cfg(unix)]
        let answer = self.send(id, &name, fields).await?;
        #[cfg(not(unix))]
        let answer: Map<String, Value> = {
            let _ = (id, name, fields);
            return Err(Error::Closed {
                address: self.shared.address.clone(),
            });
        };
        Reply::from_json(answer).map_err(|e| match e {
            ReplyError::Remote(remote) => Error::Remote(remote),
            ReplyError::Malformed(message) => Error::Protocol {
                address: self.shared.address.clone(),
                message,
            },
        })
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
}

#[cfg(unix)]
async fn write_loop(stream: Arc<tokio::net::UnixStream>, shared: Arc<Shared>) {
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

#[cfg(unix)]
async fn read_loop(stream: Arc<tokio::net::UnixStream>, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match stream.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if !dispatch_frames(&mut buf, &shared) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stream.readable().await.is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    fail_all(&shared);
}

/// Complete the callers of every whole frame in `buf`; `false` on a broken stream.
fn dispatch_frames(buf: &mut Vec<u8>, shared: &Shared) -> bool {
    let mut start = 0;
    while buf.len() - start >= 4 {
        let len = u32::from_be_bytes(buf[start..start + 4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            tracing::warn!(len, "frame from backend too large");
            return false;
        }
        if buf.len() - start - 4 < len {
            break;
        }
        let body = &buf[start + 4..start + 4 + len];
        start += 4 + len;
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                tracing::warn!("unparseable frame from backend");
                continue;
            }
        };
        let Some(id) = object.get("id").and_then(Value::as_u64) else {
            tracing::warn!("frame from backend without an id");
            continue;
        };
        let waiter = shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(Ok(object));
        }
    }
    buf.drain(..start);
    true
}
