//! Clients of a running backend, one per transport, behind one trait.
//!
//! Every operation of the Python side (`exec`, `eval`, `import`, `create`, `call`,
//! `getattr`, `setattr`, `release`, `handles`, `info`, `interrupt`, `shutdown`) is a
//! typed method of [`BackendClient`]; values are JSON, except what Python cannot turn
//! into JSON, which comes back as a [`Handle`] (or bytes).

mod call;
pub mod grpc;
pub mod http;
pub mod pipe;
mod value;

use std::time::Duration;

use serde_json::{Map, Value};

pub use call::{
    CallEnd, CallEvent, CallInfo, CallState, CallStream, OutputStream, new_call_id, valid_call_id,
};
pub use value::{ExecOutput, Handle, Op, PyValue, RemoteError, Reply};

use super::spec::Transport;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to connect to backend at `{address}`")]
    Connect {
        address: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Failed to authenticate to backend at `{address}`: the token was refused")]
    Unauthorized { address: String },
    #[error("Python raised `{}`: {}", .0.type_name, .0.message)]
    Remote(RemoteError),
    #[error("Failed to talk to backend at `{address}`: {message}")]
    Protocol { address: String, message: String },
    #[error("Failed to talk to backend at `{address}`")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to send `{op}` to `{url}`")]
    Http {
        op: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Failed to call `{op}` on backend at `{address}`")]
    Grpc {
        op: String,
        address: String,
        #[source]
        source: Box<tonic::Status>,
    },
    #[error("Failed to talk to backend at `{address}`: the connection is closed")]
    Closed { address: String },
    #[error(
        "Failed to follow call `{call}` of backend at `{address}`: the stream ended before the call did"
    )]
    Unfinished { call: String, address: String },
    #[error("Failed to get an answer to `{op}` from `{address}` within {timeout:?}")]
    Timeout {
        op: String,
        address: String,
        timeout: Duration,
    },
}

impl Error {
    /// What kind of failure this is (see [`crate::ErrorCode`]).
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        C::Failed
    }
}

impl Error {
    /// The Python exception, when Python raised one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Self::Remote(remote) => Some(remote),
            _ => None,
        }
    }
}

/// A connection to one backend. All methods may be called concurrently.
#[async_trait::async_trait]
pub trait BackendClient: Send + Sync {
    /// The transport this client speaks.
    fn transport(&self) -> Transport;

    /// Send one operation; `session` selects a separate namespace on the Python side.
    async fn request(&self, op: Op, session: Option<&str>) -> Result<Reply, Error>;

    /// Run statements; the value of a trailing expression comes back with the output.
    async fn exec(&self, code: &str, timeout: Option<f64>) -> Result<ExecOutput, Error> {
        let reply = self
            .request(
                Op::Exec {
                    code: code.to_string(),
                    timeout,
                },
                None,
            )
            .await?;
        Ok(ExecOutput {
            stdout: reply.stdout.unwrap_or_default(),
            stderr: reply.stderr.unwrap_or_default(),
            value: PyValue::from_json(reply.value),
        })
    }

    async fn eval(&self, expr: &str) -> Result<PyValue, Error> {
        self.value(Op::Eval {
            expr: expr.to_string(),
        })
        .await
    }

    async fn import(&self, module: &str) -> Result<PyValue, Error> {
        self.value(Op::Import {
            module: module.to_string(),
        })
        .await
    }

    /// Call a class or callable by dotted path (`collections.OrderedDict`).
    async fn create(
        &self,
        target: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<PyValue, Error> {
        self.value(Op::Create {
            target: target.to_string(),
            args,
            kwargs,
        })
        .await
    }

    async fn call(
        &self,
        handle: &Handle,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<PyValue, Error> {
        self.value(Op::Call {
            handle: handle.id.clone(),
            method: method.to_string(),
            args,
            kwargs,
        })
        .await
    }

    async fn getattr(&self, handle: &Handle, name: &str) -> Result<PyValue, Error> {
        self.value(Op::Getattr {
            handle: handle.id.clone(),
            name: name.to_string(),
        })
        .await
    }

    async fn setattr(&self, handle: &Handle, name: &str, value: Value) -> Result<(), Error> {
        self.value(Op::Setattr {
            handle: handle.id.clone(),
            name: name.to_string(),
            value,
        })
        .await
        .map(drop)
    }

    async fn release(&self, handle: &Handle) -> Result<(), Error> {
        self.value(Op::Release {
            handle: handle.id.clone(),
        })
        .await
        .map(drop)
    }

    /// The live handles: id, type, repr, age.
    async fn handles(&self) -> Result<Value, Error> {
        Ok(self.request(Op::Handles, None).await?.value)
    }

    /// Python version, executable, environment, pid.
    async fn info(&self) -> Result<Value, Error> {
        Ok(self.request(Op::Info, None).await?.value)
    }

    async fn interrupt(&self) -> Result<(), Error> {
        self.request(Op::Interrupt, None).await.map(drop)
    }

    /// Interrupt `call` if it is the one running; true if it was.
    async fn interrupt_call(&self, call: &str) -> Result<bool, Error> {
        let mut fields = Map::new();
        fields.insert("call".into(), Value::String(call.to_string()));
        let op = Op::Other {
            op: "interrupt".into(),
            fields,
        };
        Ok(self.request(op, None).await?.value == Value::Bool(true))
    }

    /// Send an operation that runs user code (`exec`, `eval`, `create`, `call`) and follow
    /// it: its output as it is written, then its end. `call` names the call (see
    /// [`valid_call_id`]); `None` lets the backend name it (`c1`, `c2`, ...).
    async fn request_stream(
        &self,
        op: Op,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error>;

    /// Follow a call again: its journaled events after `after` (0: from the start), then
    /// the live ones, then its end. An unknown call is the remote error `UnknownCall`.
    async fn attach(&self, call: &str, after: u64) -> Result<CallStream, Error>;

    /// [`exec`](Self::exec), streamed.
    async fn exec_stream(
        &self,
        code: &str,
        timeout: Option<f64>,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error> {
        let op = Op::Exec {
            code: code.to_string(),
            timeout,
        };
        self.request_stream(op, session, call).await
    }

    /// [`eval`](Self::eval), streamed.
    async fn eval_stream(
        &self,
        expr: &str,
        session: Option<&str>,
        call: Option<&str>,
    ) -> Result<CallStream, Error> {
        let op = Op::Eval {
            expr: expr.to_string(),
        };
        self.request_stream(op, session, call).await
    }

    /// The journaled calls of `session` (of every session with `all`), oldest first.
    async fn calls(&self, session: Option<&str>, all: bool) -> Result<Vec<CallInfo>, Error> {
        let value = self.request(Op::Calls { all }, session).await?.value;
        serde_json::from_value(value).map_err(|e| Error::Protocol {
            address: String::new(),
            message: format!("unexpected answer to calls: {e}"),
        })
    }

    /// Ask the backend to exit.
    async fn shutdown(&self) -> Result<(), Error> {
        self.request(Op::Shutdown, None).await.map(drop)
    }

    #[doc(hidden)]
    async fn value(&self, op: Op) -> Result<PyValue, Error> {
        Ok(PyValue::from_json(self.request(op, None).await?.value))
    }
}

/// Read a call's events up to its end (the output is dropped).
pub async fn finish(mut stream: CallStream) -> Result<CallEnd, Error> {
    use futures_util::StreamExt;
    while let Some(event) = stream.next().await {
        if let CallEvent::End(end) = event? {
            return Ok(end);
        }
    }
    Err(Error::Closed {
        address: String::new(),
    })
}

/// Connect to a backend over its transport.
pub async fn connect(
    transport: Transport,
    address: &str,
    token: &str,
) -> Result<Box<dyn BackendClient>, Error> {
    Ok(match transport {
        Transport::Http => Box::new(http::HttpClient::connect(address, token).await?),
        Transport::Pipe => Box::new(pipe::PipeClient::connect(address, token).await?),
        Transport::Rpc => Box::new(grpc::GrpcClient::connect(address, token).await?),
    })
}
