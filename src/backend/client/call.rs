//! Live calls: the events of a call (its output as it is written, what the journal dropped,
//! its end) and the rows of `calls`. Every transport turns its frames into these.

use std::pin::Pin;

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::value::{RemoteError, Reply, ReplyError};

/// The events of one call, in order; the last one is [`CallEvent::End`]. An `Err` item means
/// the connection failed (the call itself may still run: attach again).
pub type CallStream = Pin<Box<dyn Stream<Item = Result<CallEvent, super::Error>> + Send>>;

/// The stream `open` gives, opened from a task of its own: the request goes out at once,
/// whether or not (and however late) the caller polls; a failure to open is the stream's
/// only item. Dropping the stream ends the task (and its connection).
pub(crate) fn spawn_stream(
    open: impl Future<Output = Result<CallStream, super::Error>> + Send + 'static,
) -> CallStream {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let forward = async {
            match open.await {
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                }
                Ok(mut events) => {
                    while let Some(item) = events.next().await {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        tokio::select! {
            () = forward => {}
            () = tx.closed() => {}
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Which output stream of the backend a chunk was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One event of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// Text the call wrote (`seq` from 1, increasing by 1 per call).
    Output {
        call: String,
        stream: OutputStream,
        seq: u64,
        data: String,
    },
    /// Events `seq_from..=seq_to` were dropped from the journal before this reader got them.
    Dropped {
        call: String,
        seq_from: u64,
        seq_to: u64,
        bytes: u64,
    },
    /// The end: the answer an unstreamed call gets (output came as events before).
    End(CallEnd),
}

/// The end of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    pub call: String,
    /// The seq after the last output event.
    pub seq: Option<u64>,
    /// The value, or the Python exception (`KeyboardInterrupt`, `TimeoutError`, ...).
    pub result: Result<Reply, RemoteError>,
}

impl CallEvent {
    /// The call this event belongs to.
    pub fn call(&self) -> &str {
        match self {
            Self::Output { call, .. } | Self::Dropped { call, .. } => call,
            Self::End(end) => &end.call,
        }
    }

    /// Read a JSON event (`{"event": "output"|"dropped", ...}`) or, without `event`, the
    /// final answer. Unknown shapes are errors (the message says what was wrong).
    pub fn from_json(mut object: Map<String, Value>) -> Result<Self, String> {
        let call = match object.remove("call") {
            Some(Value::String(call)) => call,
            None | Some(Value::Null) => String::new(),
            Some(other) => return Err(format!("`call` is not a string: {other}")),
        };
        let number = |object: &Map<String, Value>, name: &str| {
            object
                .get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("event without a numeric `{name}`: {object:?}"))
        };
        match object.get("event").and_then(Value::as_str) {
            Some("output") => {
                let stream = match object.get("stream").and_then(Value::as_str) {
                    Some("stdout") => OutputStream::Stdout,
                    Some("stderr") => OutputStream::Stderr,
                    other => return Err(format!("output event with stream {other:?}")),
                };
                let Some(Value::String(data)) = object.remove("data") else {
                    return Err("output event without `data`".into());
                };
                Ok(Self::Output {
                    seq: number(&object, "seq")?,
                    call,
                    stream,
                    data,
                })
            }
            Some("dropped") => Ok(Self::Dropped {
                seq_from: number(&object, "seq_from")?,
                seq_to: number(&object, "seq_to")?,
                bytes: number(&object, "bytes")?,
                call,
            }),
            Some(other) => Err(format!("unknown event `{other}`")),
            None => {
                let seq = object.get("seq").and_then(Value::as_u64);
                let result = match Reply::from_json(object) {
                    Ok(mut reply) => {
                        reply.call = Some(call.clone()).filter(|c| !c.is_empty());
                        Ok(reply)
                    }
                    Err(ReplyError::Remote(remote)) => Err(remote),
                    Err(ReplyError::Malformed(message)) => return Err(message),
                };
                Ok(Self::End(CallEnd { call, seq, result }))
            }
        }
    }
}

/// The state of a journaled call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Running,
    Done,
    Failed,
    Interrupted,
    TimedOut,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::TimedOut => "timed_out",
        }
    }
}

/// One row of `calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    pub call: String,
    pub op: String,
    #[serde(default)]
    pub session: String,
    pub state: CallState,
    /// Unix seconds.
    pub started: f64,
    /// Seconds; `None` while running.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub output_bytes: u64,
}

/// A call id a client may choose: 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_call_id(call: &str) -> bool {
    (1..=128).contains(&call.len())
        && call
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh client call id (`cli-` and 12 random hex digits).
pub fn new_call_id(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    format!("{prefix}-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => unreachable!(),
        }
    }

    #[test]
    fn events_and_the_end_parse() {
        let out = CallEvent::from_json(object(json!({
            "id": 3, "event": "output", "call": "c1", "stream": "stderr", "seq": 2, "data": "x\n"
        })))
        .unwrap();
        assert_eq!(
            out,
            CallEvent::Output {
                call: "c1".into(),
                stream: OutputStream::Stderr,
                seq: 2,
                data: "x\n".into()
            }
        );
        let end = CallEvent::from_json(object(json!({
            "id": 3, "ok": true, "call": "c1", "seq": 3, "value": 42
        })))
        .unwrap();
        let CallEvent::End(end) = end else { panic!() };
        assert_eq!(end.seq, Some(3));
        assert_eq!(end.result.unwrap().value, json!(42));
        let failed = CallEvent::from_json(object(json!({
            "call": "c1", "error": {"type": "KeyboardInterrupt", "message": "", "traceback": ""}
        })))
        .unwrap();
        let CallEvent::End(failed) = failed else {
            panic!()
        };
        assert_eq!(failed.result.unwrap_err().type_name, "KeyboardInterrupt");
        assert!(CallEvent::from_json(object(json!({"event": "weird", "call": "c1"}))).is_err());
    }

    #[test]
    fn call_ids() {
        assert!(valid_call_id("cli-0a1b2c3d4e5f"));
        assert!(valid_call_id(&new_call_id("cli")));
        assert!(!valid_call_id(""));
        assert!(!valid_call_id("a b"));
        assert!(!valid_call_id(&"x".repeat(129)));
    }
}
