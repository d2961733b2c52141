//! The daemon's local protocol: one JSON object per line each way, over a Unix socket
//! (`<state>/daemon/daemon.sock`, in a directory only the user can enter) or, on Windows, a
//! named pipe. A client sends `hello` first; every request gets one answer, except
//! `watch`, after which the daemon sends one [`BackendEvent`] per line until the client
//! goes away.

use serde::{Deserialize, Serialize};

use crate::backend::{
    BackendId, BackendOptions, BackendState, BackendStatus, RestartPolicy, Transport,
};

/// Bumped whenever a request or answer changes shape.
pub const PROTOCOL: u32 = 1;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        version: String,
    },
    List {
        /// Ask each ready backend whether a call runs in it (`busy`).
        #[serde(default)]
        busy: bool,
    },
    /// Boxed: the spec is much larger than the other requests (on the wire it is flat).
    Start(Box<StartSpec>),
    Stop {
        id: BackendId,
    },
    StopAll,
    Restart {
        id: BackendId,
    },
    Remove {
        id: BackendId,
    },
    Connection {
        id: BackendId,
    },
    LogTail {
        id: BackendId,
        lines: usize,
    },
    /// From now on, send every backend event.
    Watch,
    /// Stop every backend and exit.
    Shutdown,
}

/// A backend to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSpec {
    /// The environment to run in (ignored when `runtime` is given).
    pub env: String,
    /// A runtime to run on directly instead of an environment: its key, a version
    /// (`3.12`) or an interpreter path, resolved by the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub transport: Transport,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Milliseconds to wait for the ready line.
    pub ready_timeout_ms: u64,
    /// A project's declarations (environment variables, preload, health, limits).
    #[serde(default)]
    pub options: BackendOptions,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(serde_json::Value),
    Error(Failure),
}

/// A failed request: a code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: FailureCode,
    /// The message with its causes, as the CLI shows it (advice names `beep-host` commands).
    pub message: String,
    /// The message without the advice meant for a CLI user, when it had some
    /// ([`crate::error::advised`]); absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<String>,
    /// What an interface can offer to do about it, when the core knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<crate::error::Hint>,
}

impl Failure {
    /// A failure without advice: its message is the same for every interface.
    pub fn new(code: FailureCode, message: String) -> Self {
        Self {
            code,
            message,
            plain: None,
            hint: None,
        }
    }

    /// A core error: its chain, and its plain message and hint when it holds CLI advice.
    pub fn of(code: FailureCode, error: &(dyn std::error::Error + 'static)) -> Self {
        let message = crate::error::chain(error);
        let (plain, hint) = crate::error::advised(error);
        Self {
            code,
            plain: (plain != message).then_some(plain),
            message,
            hint,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    Invalid,
    NotFound,
    Conflict,
    Failed,
}

impl From<crate::ErrorCode> for FailureCode {
    /// The daemon's protocol keeps four codes: a cancel or an internal error is a failure.
    fn from(code: crate::ErrorCode) -> Self {
        use crate::ErrorCode as C;
        match code {
            C::Invalid => Self::Invalid,
            C::NotFound => Self::NotFound,
            C::Conflict => Self::Conflict,
            C::Cancelled | C::Failed | C::Internal => Self::Failed,
        }
    }
}

impl From<FailureCode> for crate::ErrorCode {
    fn from(code: FailureCode) -> Self {
        match code {
            FailureCode::Invalid => Self::Invalid,
            FailureCode::NotFound => Self::NotFound,
            FailureCode::Conflict => Self::Conflict,
            FailureCode::Failed => Self::Failed,
        }
    }
}

/// The daemon's `hello` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
    pub pid: u32,
}

/// The `list` answer: every backend, and the records that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub backends: Vec<BackendStatus>,
    #[serde(default)]
    pub unreadable: Vec<crate::backend::record::Unreadable>,
}

impl Listing {
    /// The backends that run (or are being started again) in `env`.
    pub fn running_in(&self, env: &str) -> impl Iterator<Item = &BackendStatus> {
        self.backends
            .iter()
            .filter(move |b| b.runtime.is_none() && b.env == env && !b.state.is_final())
    }

    /// The backends that run (or are being started again) on runtime `key` itself.
    pub fn running_on_runtime(&self, key: &str) -> impl Iterator<Item = &BackendStatus> {
        self.backends.iter().filter(move |b| {
            b.runtime.as_ref().is_some_and(|r| r.key == key) && !b.state.is_final()
        })
    }

    pub fn get(&self, id: &BackendId) -> Option<&BackendStatus> {
        self.backends.iter().find(|b| &b.id == id)
    }

    pub fn count(&self, state: BackendState) -> usize {
        self.backends.iter().filter(|b| b.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `start` stays one flat object on the wire, boxed or not.
    #[test]
    fn start_is_flat_on_the_wire() {
        let line = r#"{"op":"start","env":"admin","transport":"pipe","restart":"never","ready_timeout_ms":5000}"#;
        let request: Request = serde_json::from_str(line).unwrap();
        let Request::Start(spec) = &request else {
            panic!("{request:?}");
        };
        assert_eq!(spec.env, "admin");
        assert_eq!(spec.transport, Transport::Pipe);
        assert_eq!(spec.ready_timeout_ms, 5000);
        let back = serde_json::to_value(&request).unwrap();
        assert_eq!(back["op"], "start");
        assert_eq!(back["env"], "admin");
        assert_eq!(back["ready_timeout_ms"], 5000);
        assert_eq!(
            serde_json::from_value::<Request>(back.clone()).unwrap(),
            request
        );
        // No runtime: the field is absent on the wire (an older daemon reads it).
        assert!(back.get("runtime").is_none(), "{back}");
        let line = r#"{"op":"start","env":"","runtime":"3.12","transport":"http","ready_timeout_ms":5000}"#;
        let Request::Start(spec) = serde_json::from_str(line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(spec.runtime.as_deref(), Some("3.12"));
    }

    /// A failure with a hint crosses whole; one from an older peer (no `plain`, no `hint`)
    /// still parses, and one without advice does not grow the fields.
    #[test]
    fn failures_carry_their_hint_and_old_ones_still_parse() {
        let err = crate::backend::Error::GrpcMissing {
            env: "plain".into(),
            path: "/h/envs/plain".into(),
        };
        let failure = Failure::of(FailureCode::Invalid, &err);
        assert!(failure.message.contains("beep-host"), "{}", failure.message);
        let plain = failure.plain.clone().unwrap();
        assert!(
            !plain.contains("beep-host") && plain.contains("grpcio"),
            "{plain}"
        );
        assert_eq!(failure.hint, Some(crate::error::Hint::RepairAdmin));
        let line = serde_json::to_string(&Answer::Error(failure.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Answer>(&line).unwrap(),
            Answer::Error(failure)
        );
        let old = r#"{"error":{"code":"not_found","message":"gone"}}"#;
        assert_eq!(
            serde_json::from_str::<Answer>(old).unwrap(),
            Answer::Error(Failure::new(FailureCode::NotFound, "gone".into()))
        );
        let line = serde_json::to_value(Answer::Error(Failure::new(
            FailureCode::Failed,
            "no".into(),
        )))
        .unwrap();
        assert_eq!(
            line,
            serde_json::json!({"error": {"code": "failed", "message": "no"}})
        );
    }
}
