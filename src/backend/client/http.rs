//! The HTTP transport: `POST /v1/<op>` with a JSON body and `Authorization: Bearer`,
//! over one keep-alive connection pool on loopback. Live calls are server-sent events:
//! the same `POST` with `Accept: text/event-stream`, and `GET /v1/calls/{call}/events`.

use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use super::value::ReplyError;
use super::{BackendClient, CallEvent, CallInfo, CallStream, Error, Op, Reply};
use crate::backend::spec::Transport;

/// A client of an HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base: String,
    address: String,
    authorization: String,
}

impl HttpClient {
    /// A client for `127.0.0.1:PORT`; the first request (`info`) checks the token.
    pub async fn connect(address: &str, token: &str) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            // Below the server's idle keep-alive timeout (60 s): a pooled connection is
            // dropped here before the server closes it under a request.
            .pool_idle_timeout(std::time::Duration::from_secs(50))
            .http1_only()
            .build()
            .map_err(|source| Error::Connect {
                address: address.to_string(),
                source: Box::new(source),
            })?;
        let this = Self {
            client,
            base: format!("http://{address}/v1/"),
            address: address.to_string(),
            authorization: format!("Bearer {token}"),
        };
        this.request(Op::Info, None).await?;
        Ok(this)
    }
}

impl HttpClient {
    fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            address: self.address.clone(),
            message: message.into(),
        }
    }

    /// Send `request` asking for server-sent events and follow them. The request goes out
    /// at once from a task of its own (the backend answers the head only with the first
    /// event, and the caller need not poll the stream for the call to start); dropping the
    /// stream closes the connection.
    async fn events(
        &self,
        op: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<CallStream, Error> {
        let this = self.clone();
        let op = op.to_string();
        Ok(super::call::spawn_stream(async move {
            this.open_events(&op, request).await
        }))
    }

    async fn open_events(
        &self,
        op: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<CallStream, Error> {
        let url = format!("{}{}", self.base, op);
        let http = |source| Error::Http {
            op: op.to_string(),
            url: url.clone(),
            source,
        };
        let response = request
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Error::Unauthorized {
                address: self.address.clone(),
            });
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A refusal (bad request, unknown call): one JSON answer, the end of the call.
            let bytes = response.bytes().await.map_err(http)?;
            let object = match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(object)) if object.contains_key("error") => object,
                _ => {
                    return Err(self.protocol(format!(
                        "HTTP {status} where events were asked for: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    )));
                }
            };
            let end = CallEvent::from_json(object).map_err(|m| self.protocol(m))?;
            return Ok(futures_util::stream::iter([Ok(end)]).boxed());
        }
        Ok(sse_events(response.bytes_stream(), self.address.clone()).boxed())
    }
}

/// The events of a `text/event-stream` body: `event: NAME`, `data: JSON` lines, blocks
/// ended by a blank line; the `result` event is the call's end, after which the stream ends.
fn sse_events(
    body: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + Unpin + 'static,
    address: String,
) -> impl Stream<Item = Result<CallEvent, Error>> + Send {
    struct State<B> {
        body: B,
        buf: Vec<u8>,
        address: String,
        ended: bool,
    }
    let state = State {
        body,
        buf: Vec::new(),
        address,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        loop {
            if let Some(end) = find_block_end(&state.buf) {
                let block: Vec<u8> = state.buf.drain(..end.1).collect();
                let Some(item) = parse_block(&block[..end.0], &state.address) else {
                    continue; // a comment or keep-alive
                };
                state.ended = !matches!(
                    item,
                    Ok(CallEvent::Output { .. } | CallEvent::Dropped { .. })
                );
                return Some((item, state));
            }
            match state.body.next().await {
                Some(Ok(chunk)) => state.buf.extend_from_slice(&chunk),
                Some(Err(source)) => {
                    state.ended = true;
                    let err = Error::Io {
                        address: state.address.clone(),
                        source: std::io::Error::other(source),
                    };
                    return Some((Err(err), state));
                }
                None => {
                    state.ended = true;
                    let err = Error::Unfinished {
                        call: String::new(),
                        address: state.address.clone(),
                    };
                    return Some((Err(err), state));
                }
            }
        }
    })
}

/// Where the first event block ends: (its length without the blank line, with it).
fn find_block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One event block; `None` for a block without data (a comment).
fn parse_block(block: &[u8], address: &str) -> Option<Result<CallEvent, Error>> {
    let text = String::from_utf8_lossy(block);
    let mut name = "message";
    let mut data = String::new();
    for line in text.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let protocol = |message: String| Error::Protocol {
        address: address.to_string(),
        message,
    };
    let mut object = match serde_json::from_str::<Value>(&data) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Some(Err(protocol(format!(
                "event data is not a JSON object: {data}"
            ))));
        }
    };
    if name == "result" {
        object.remove("event");
    }
    Some(CallEvent::from_json(object).map_err(protocol))
}

#[async_trait::async_trait]
impl BackendClient for HttpClient {
    fn transport(&self) -> Transport {
        Transport::Http
    }

    async fn request(&self, op: Op, session: Option<&str>) -> Result<Reply, Error> {
        let (name, fields) = op.into_request(session, None);
        let url = format!("{}{}", self.base, name);
        let http = |source| Error::Http {
            op: name.clone(),
            url: url.clone(),
            source,
        };
        let body = serde_json::to_vec(&Value::Object(fields)).map_err(|e| Error::Protocol {
            address: self.address.clone(),
            message: e.to_string(),
        })?;
        let response = self
            .client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Error::Unauthorized {
                address: self.address.clone(),
            });
        }
        let bytes = response.bytes().await.map_err(http)?;
        let object = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(Error::Protocol {
                    address: self.address.clone(),
                    message: format!(
                        "HTTP {status} with a body that is not a JSON object: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ),
                });
            }
        };
        match Reply::from_json(object) {
            Ok(reply) if status.is_success() => Ok(reply),
            Ok(_) => Err(Error::Protocol {
                address: self.address.clone(),
                message: format!("HTTP {status} without an error"),
            }),
            Err(ReplyError::Remote(remote)) => Err(Error::Remote(remote)),
            Err(ReplyError::Malformed(message)) => Err(Error::Protocol {
                address: self.address.clone(),
                message,
            }),
        }
    }

    async fn request_stream(
        &self,
        op: Op,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error> {
        let (name, fields) = op.into_request(session, call);
        let body =
            serde_json::to_vec(&Value::Object(fields)).map_err(|e| self.protocol(e.to_string()))?;
        let request = self
            .client
            .post(format!("{}{}", self.base, name))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.events(&name, request).await
    }

    async fn attach(&self, call: &str, after: u64) -> Result<CallStream, Error> {
        if !super::valid_call_id(call) {
            // Not a call id (and not a path segment to send).
            return Err(Error::Remote(super::RemoteError {
                type_name: "UnknownCall".into(),
                message: format!(
                    "unknown call `{}`",
                    call.chars().take(100).collect::<String>()
                ),
                traceback: String::new(),
            }));
        }
        let url = format!("{}calls/{call}/events?after={after}", self.base);
        self.events("attach", self.client.get(url)).await
    }

    async fn calls(&self, session: Option<&str>, all: bool) -> Result<Vec<CallInfo>, Error> {
        let url = format!("{}calls", self.base);
        let http = |source| Error::Http {
            op: "calls".into(),
            url: url.clone(),
            source,
        };
        let mut query = Vec::new();
        if all {
            query.push(("all", "1"));
        }
        if let Some(session) = session {
            query.push(("session", session));
        }
        let response = self
            .client
            .get(&url)
            .query(&query)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .send()
            .await
            .map_err(http)?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(Error::Unauthorized {
                address: self.address.clone(),
            });
        }
        let bytes = response.bytes().await.map_err(http)?;
        let object: Map<String, Value> = serde_json::from_slice(&bytes)
            .map_err(|e| self.protocol(format!("unexpected answer to calls: {e}")))?;
        let reply = Reply::from_json(object).map_err(|e| match e {
            ReplyError::Remote(remote) => Error::Remote(remote),
            ReplyError::Malformed(message) => self.protocol(message),
        })?;
        serde_json::from_value(reply.value)
            .map_err(|e| self.protocol(format!("unexpected answer to calls: {e}")))
    }
}
