//! The gRPC transport: the `beep.backend.v1.Backend` service, built from
//! `python/beep_backend/backend.proto` by `build.rs` (protox, no protoc). Values travel as
//! JSON text; errors of user code come back inside the reply, protocol errors as statuses.

use futures_util::StreamExt;
use serde_json::{Map, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::{
    BackendClient, CallEnd, CallEvent, CallInfo, CallState, CallStream, Error, Op, OutputStream,
    RemoteError, Reply,
};
use crate::backend::spec::Transport;

/// The code generated from the .proto.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("beep.backend.v1");
}

use proto::backend_client::BackendClient as Stub;

/// A client of a gRPC backend.
#[derive(Debug, Clone)]
pub struct GrpcClient {
    channel: Channel,
    address: String,
    authorization: MetadataValue<tonic::metadata::Ascii>,
}

impl GrpcClient {
    /// Connect to `127.0.0.1:PORT`; the first call (`Info`) checks the token.
    pub async fn connect(address: &str, token: &str) -> Result<Self, Error> {
        let connect = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            address: address.to_string(),
            source,
        };
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| connect(Box::new(e)))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| connect(Box::new(e)))?;
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|e| connect(Box::new(e)))?;
        let client = Self {
            channel,
            address: address.to_string(),
            authorization,
        };
        client.request(Op::Info, None).await?;
        Ok(client)
    }

    fn request_of<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }

    fn status(&self, op: &str, status: tonic::Status) -> Error {
        if status.code() == tonic::Code::Unauthenticated {
            Error::Unauthorized {
                address: self.address.clone(),
            }
        } else if status.code() == tonic::Code::InvalidArgument {
            // A missing or malformed field: what the other transports answer `BadRequest`.
            Error::Remote(RemoteError {
                type_name: "BadRequest".into(),
                message: status.message().to_string(),
                traceback: String::new(),
            })
        } else {
            Error::Grpc {
                op: op.to_string(),
                address: self.address.clone(),
                source: Box::new(status),
            }
        }
    }

    fn parse(&self, text: &str) -> Result<Value, Error> {
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|e| Error::Protocol {
            address: self.address.clone(),
            message: format!("bad JSON value from the backend: {e}"),
        })
    }

    fn value_reply(&self, reply: proto::ValueReply) -> Result<Reply, Error> {
        let call = Some(reply.call).filter(|c| !c.is_empty());
        match reply.result {
            Some(proto::value_reply::Result::ValueJson(text)) => Ok(Reply {
                call,
                ..value(self.parse(&text)?)
            }),
            Some(proto::value_reply::Result::Error(error)) => Err(remote(error)),
            None => Ok(Reply {
                call,
                ..value(Value::Null)
            }),
        }
    }

    /// One event of a streamed call.
    fn event(&self, event: proto::CallEvent) -> Result<CallEvent, Error> {
        let call = event.call;
        match event.kind {
            Some(proto::call_event::Kind::Output(output)) => Ok(CallEvent::Output {
                call,
                seq: event.seq,
                stream: match output.stream.as_str() {
                    "stdout" => OutputStream::Stdout,
                    "stderr" => OutputStream::Stderr,
                    other => {
                        return Err(Error::Protocol {
                            address: self.address.clone(),
                            message: format!("output event with stream `{other}`"),
                        });
                    }
                },
                data: output.data,
            }),
            Some(proto::call_event::Kind::Dropped(dropped)) => Ok(CallEvent::Dropped {
                call,
                seq_from: dropped.seq_from,
                seq_to: dropped.seq_to,
                bytes: dropped.bytes,
            }),
            Some(proto::call_event::Kind::Result(result)) => {
                let result = match result.error {
                    Some(error) => Err(RemoteError {
                        type_name: error.r#type,
                        message: error.message,
                        traceback: error.traceback,
                    }),
                    None => Ok(Reply {
                        value: self.parse(&result.value_json)?,
                        stdout: Some(result.stdout).filter(|s| !s.is_empty()),
                        stderr: Some(result.stderr).filter(|s| !s.is_empty()),
                        call: Some(call.clone()).filter(|c| !c.is_empty()),
                    }),
                };
                Ok(CallEvent::End(CallEnd {
                    call,
                    seq: Some(event.seq),
                    result,
                }))
            }
            None => Err(Error::Protocol {
                address: self.address.clone(),
                message: "call event without a kind".into(),
            }),
        }
    }

    /// A server stream of call events as a [`CallStream`]; a NOT_FOUND status (unknown
    /// call) is the end of the call with `UnknownCall`.
    fn follow(
        &self,
        op: &'static str,
        call: &str,
        answer: Result<tonic::Response<tonic::Streaming<proto::CallEvent>>, tonic::Status>,
    ) -> Result<CallStream, Error> {
        let events = match answer {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                let end = CallEvent::End(CallEnd {
                    call: call.to_string(),
                    seq: None,
                    result: Err(RemoteError {
                        type_name: "UnknownCall".into(),
                        message: status.message().to_string(),
                        traceback: String::new(),
                    }),
                });
                return Ok(futures_util::stream::iter([Ok(end)]).boxed());
            }
            Err(status) => return Err(self.status(op, status)),
        };
        let this = self.clone();
        let call = call.to_string();
        Ok(
            futures_util::stream::unfold((events, false), move |(mut events, ended)| {
                let this = this.clone();
                let call = call.clone();
                async move {
                    if ended {
                        return None;
                    }
                    let item = match events.next().await {
                        Some(Ok(event)) => this.event(event),
                        Some(Err(status)) => Err(this.status(op, status)),
                        None => Err(Error::Unfinished {
                            call,
                            address: this.address.clone(),
                        }),
                    };
                    let ended = !matches!(
                        item,
                        Ok(CallEvent::Output { .. } | CallEvent::Dropped { .. })
                    );
                    Some((item, (events, ended)))
                }
            })
            .boxed(),
        )
    }
}

fn value(value: Value) -> Reply {
    Reply {
        value,
        stdout: None,
        stderr: None,
        call: None,
    }
}

fn remote(error: proto::Error) -> Error {
    Error::Remote(RemoteError {
        type_name: error.r#type,
        message: error.message,
        traceback: error.traceback,
    })
}

fn json_text(value: impl Into<Value>) -> String {
    value.into().to_string()
}

#[async_trait::async_trait]
impl BackendClient for GrpcClient {
    fn transport(&self) -> Transport {
        Transport::Rpc
    }

    async fn request(&self, op: Op, session: Option<&str>) -> Result<Reply, Error> {
        self.request_call(op, session, None).await
    }

    async fn request_stream(
        &self,
        op: Op,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error> {
        // The server sends the head with the first event: the rpc is awaited from a task
        // of its own, so the call starts whether or not the stream is polled.
        let named = call.unwrap_or_default().to_string();
        let mut stub = Stub::new(self.channel.clone());
        let this = self.clone();
        match op {
            Op::Exec { code, timeout } => {
                let request = self.request_of(proto::ExecRequest {
                    session: session.unwrap_or_default().to_string(),
                    code,
                    timeout,
                    call: named.clone(),
                });
                Ok(super::call::spawn_stream(async move {
                    let answer = stub.exec_stream(request).await;
                    this.follow("exec", &named, answer)
                }))
            }
            Op::Eval { expr } => {
                let request = self.request_of(proto::EvalRequest {
                    session: session.unwrap_or_default().to_string(),
                    expr,
                    call: named.clone(),
                });
                Ok(super::call::spawn_stream(async move {
                    let answer = stub.eval_stream(request).await;
                    this.follow("eval", &named, answer)
                }))
            }
            Op::Other { op, fields } if matches!(op.as_str(), "exec" | "eval") => {
                let (typed, by_name) = Op::from_fields(&op, &fields).map_err(Error::Remote)?;
                let session = session.map(str::to_string).or(by_name);
                self.request_stream(typed, session.as_deref(), call).await
            }
            // No streaming rpc: the unary one, its answer the only event.
            op => {
                let result = match self.request_call(op, session, call).await {
                    Ok(reply) => Ok(reply),
                    Err(Error::Remote(remote)) => Err(remote),
                    Err(err) => return Err(err),
                };
                let call = result
                    .as_ref()
                    .ok()
                    .and_then(|r| r.call.clone())
                    .unwrap_or(named);
                let end = CallEvent::End(CallEnd {
                    call,
                    seq: None,
                    result,
                });
                Ok(futures_util::stream::iter([Ok(end)]).boxed())
            }
        }
    }

    async fn attach(&self, call: &str, after: u64) -> Result<CallStream, Error> {
        let request = self.request_of(proto::AttachRequest {
            session: String::new(),
            call: call.to_string(),
            after,
        });
        let (this, call) = (self.clone(), call.to_string());
        Ok(super::call::spawn_stream(async move {
            let answer = Stub::new(this.channel.clone()).attach(request).await;
            this.follow("attach", &call, answer)
        }))
    }

    async fn calls(&self, session: Option<&str>, all: bool) -> Result<Vec<CallInfo>, Error> {
        let reply = Stub::new(self.channel.clone())
            .calls(self.request_of(proto::CallsRequest {
                session: session.unwrap_or_default().to_string(),
                all,
            }))
            .await
            .map_err(|s| self.status("calls", s))?
            .into_inner();
        reply
            .calls
            .into_iter()
            .map(|c| {
                let state = serde_json::from_value::<CallState>(Value::String(c.state.clone()))
                    .map_err(|_| Error::Protocol {
                        address: self.address.clone(),
                        message: format!("call `{}` in unknown state `{}`", c.call, c.state),
                    })?;
                Ok(CallInfo {
                    call: c.call,
                    op: c.op,
                    session: c.session,
                    state,
                    started: c.started,
                    duration: c.duration,
                    output_bytes: c.output_bytes,
                })
            })
            .collect()
    }

    async fn interrupt_call(&self, call: &str) -> Result<bool, Error> {
        let reply = Stub::new(self.channel.clone())
            .interrupt(self.request_of(proto::InterruptRequest {
                call: call.to_string(),
            }))
            .await
            .map_err(|s| self.status("interrupt", s))?;
        Ok(reply.into_inner().interrupted)
    }
}

impl GrpcClient {
    /// One unary operation, named `call` (when it runs user code) if given.
    async fn request_call(
        &self,
        op: Op,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<Reply, Error> {
        let session = session.unwrap_or_default().to_string();
        let named = call.unwrap_or_default().to_string();
        let mut stub = Stub::new(self.channel.clone());
        match op {
            Op::Exec { code, timeout } => {
                let reply = stub
                    .exec(self.request_of(proto::ExecRequest {
                        session,
                        code,
                        timeout,
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("exec", s))?
                    .into_inner();
                if let Some(error) = reply.error {
                    return Err(remote(error));
                }
                Ok(Reply {
                    value: self.parse(&reply.value_json)?,
                    stdout: Some(reply.stdout),
                    stderr: Some(reply.stderr),
                    call: Some(reply.call).filter(|c| !c.is_empty()),
                })
            }
            Op::Eval { expr } => {
                let reply = stub
                    .eval(self.request_of(proto::EvalRequest {
                        session,
                        expr,
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("eval", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Import { module } => {
                let reply = stub
                    .import(self.request_of(proto::ImportRequest {
                        session,
                        module,
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("import", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Create {
                target,
                args,
                kwargs,
            } => {
                let is_handle = target.len() > 1
                    && target.starts_with('h')
                    && target[1..].bytes().all(|b| b.is_ascii_digit());
                let target = if is_handle {
                    proto::create_request::Target::Handle(target)
                } else {
                    proto::create_request::Target::Path(target)
                };
                let reply = stub
                    .create(self.request_of(proto::CreateRequest {
                        session,
                        target: Some(target),
                        args_json: json_text(args),
                        kwargs_json: json_text(kwargs),
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("create", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Call {
                handle,
                method,
                args,
                kwargs,
            } => {
                let reply = stub
                    .call(self.request_of(proto::CallRequest {
                        session,
                        handle,
                        method,
                        args_json: json_text(args),
                        kwargs_json: json_text(kwargs),
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("call", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Getattr { handle, name } => {
                let reply = stub
                    .get_attr(self.request_of(proto::GetAttrRequest {
                        session,
                        handle,
                        name,
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("getattr", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Setattr {
                handle,
                name,
                value,
            } => {
                let reply = stub
                    .set_attr(self.request_of(proto::SetAttrRequest {
                        session,
                        handle,
                        name,
                        value_json: json_text(value),
                        call: named,
                    }))
                    .await
                    .map_err(|s| self.status("setattr", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Release { handle } => {
                let reply = stub
                    .release(self.request_of(proto::ReleaseRequest { session, handle }))
                    .await
                    .map_err(|s| self.status("release", s))?;
                self.value_reply(reply.into_inner())
            }
            Op::Handles => {
                let reply = stub
                    .handles(self.request_of(proto::HandlesRequest { session }))
                    .await
                    .map_err(|s| self.status("handles", s))?
                    .into_inner();
                if let Some(error) = reply.error {
                    return Err(remote(error));
                }
                let handles = reply
                    .handles
                    .into_iter()
                    .map(|h| {
                        serde_json::json!({
                            "id": h.id, "type": h.r#type, "repr": h.repr,
                            "created": h.created, "last_used": h.last_used, "age": h.age,
                        })
                    })
                    .collect::<Vec<_>>();
                Ok(value(Value::Array(handles)))
            }
            Op::Info => {
                let info = stub
                    .info(self.request_of(proto::InfoRequest {}))
                    .await
                    .map_err(|s| self.status("info", s))?
                    .into_inner();
                let mut object = Map::new();
                object.insert("python_version".into(), info.python_version.into());
                object.insert("executable".into(), info.executable.into());
                object.insert("prefix".into(), info.prefix.into());
                object.insert(
                    "env_name".into(),
                    Some(info.env_name).filter(|s| !s.is_empty()).into(),
                );
                object.insert("pid".into(), info.pid.into());
                object.insert("transport".into(), info.transport.into());
                object.insert("started_at".into(), info.started_at.into());
                object.insert("handles".into(), info.handles.into());
                object.insert("busy".into(), info.busy.into());
                Ok(value(Value::Object(object)))
            }
            Op::Interrupt => {
                let reply = stub
                    .interrupt(self.request_of(proto::InterruptRequest {
                        call: String::new(),
                    }))
                    .await
                    .map_err(|s| self.status("interrupt", s))?;
                Ok(value(reply.into_inner().interrupted.into()))
            }
            Op::Shutdown => {
                let reply = stub
                    .shutdown(self.request_of(proto::ShutdownRequest {}))
                    .await
                    .map_err(|s| self.status("shutdown", s))?;
                Ok(value(reply.into_inner().accepted.into()))
            }
            // An op by name (`beep-host call`): read its fields as the pipe and HTTP
            // backends do, so the documented forms work here too.
            Op::Calls { all } => {
                let calls = self.calls(Some(&session), all).await?;
                Ok(value(serde_json::to_value(calls).unwrap_or_default()))
            }
            // `interrupt` naming a call.
            Op::Other { op, fields }
                if op == "interrupt" && matches!(fields.get("call"), Some(Value::String(_))) =>
            {
                let call = fields["call"].as_str().unwrap_or_default();
                Ok(value(self.interrupt_call(call).await?.into()))
            }
            Op::Other { op, fields } => {
                let (typed, by_name) = Op::from_fields(&op, &fields).map_err(Error::Remote)?;
                let session = Some(session).filter(|s| !s.is_empty()).or(by_name);
                let call = match fields.get("call") {
                    Some(Value::String(call)) => Some(call.as_str()),
                    _ => call,
                };
                Box::pin(self.request_call(typed, session.as_deref(), call)).await
            }
        }
    }
}
