//! The operations and values that travel between Rust and Python.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One operation of the Python side. Deserializing (only `from_parts` does) refuses
/// unknown fields, and never produces `Other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Exec {
        code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<f64>,
    },
    Eval {
        expr: String,
    },
    Import {
        module: String,
    },
    Create {
        target: String,
        #[serde(default)]
        args: Vec<Value>,
        #[serde(default)]
        kwargs: Map<String, Value>,
    },
    Call {
        handle: String,
        method: String,
        #[serde(default)]
        args: Vec<Value>,
        #[serde(default)]
        kwargs: Map<String, Value>,
    },
    Getattr {
        handle: String,
        name: String,
    },
    Setattr {
        handle: String,
        name: String,
        value: Value,
    },
    Release {
        handle: String,
    },
    Handles,
    Info,
    Interrupt,
    /// The journaled calls of the session (of every session with `all`).
    Calls {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    Shutdown,
    /// An operation by name with its fields as given (the CLI's `beep-host call`).
    #[serde(skip)]
    Other {
        op: String,
        fields: Map<String, Value>,
    },
}

impl Op {
    /// Parse `op` with the fields of a JSON object.
    pub fn from_parts(op: &str, fields: Map<String, Value>) -> Self {
        let mut object = fields.clone();
        object.insert("op".into(), Value::String(op.to_string()));
        match serde_json::from_value::<Self>(Value::Object(object)) {
            Ok(typed) => typed,
            Err(_) => Self::Other {
                op: op.to_string(),
                fields,
            },
        }
    }

    /// [`Op::into_parts`] with the request's `session` and `call` fields added when given.
    pub fn into_request(
        self,
        session: Option<&str>,
        call: Option<&str>,
    ) -> (String, Map<String, Value>) {
        let (name, mut fields) = self.into_parts();
        if let Some(session) = session {
            fields.insert("session".into(), Value::String(session.to_string()));
        }
        if let Some(call) = call {
            fields.insert("call".into(), Value::String(call.to_string()));
        }
        (name, fields)
    }

    /// The operation name and its fields.
    pub fn into_parts(self) -> (String, Map<String, Value>) {
        if let Self::Other { op, fields } = self {
            return (op, fields);
        }
        let Ok(Value::Object(mut object)) = serde_json::to_value(&self) else {
            unreachable!("an Op serializes to an object");
        };
        let Some(Value::String(op)) = object.remove("op") else {
            unreachable!("an Op carries its tag");
        };
        (op, object)
    }
}

impl Op {
    /// The typed operation of `op` with `fields` as a backend reads them: a handle is
    /// `"h7"` or `{"$handle": "h7"}` (a whole handle value too), `args`/`kwargs` may be
    /// missing or null, other fields are ignored; the `session` field is returned beside
    /// it. An unknown op is `UnknownOperation`, a missing or wrong-typed field `BadRequest`,
    /// with the messages the backend gives on the other transports.
    pub fn from_fields(
        op: &str,
        fields: &Map<String, Value>,
    ) -> Result<(Self, Option<String>), RemoteError> {
        let fields = Fields(fields);
        let typed = match op {
            "exec" => Self::Exec {
                code: fields.string("code")?,
                timeout: match fields.0.get("timeout") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) if n.as_f64().is_some_and(|t| t > 0.0) => n.as_f64(),
                    Some(_) => {
                        return Err(bad_request(
                            "`timeout` must be a positive number of seconds",
                        ));
                    }
                },
            },
            "eval" => Self::Eval {
                expr: fields.string("expr")?,
            },
            "import" => Self::Import {
                module: fields.string("module")?,
            },
            "create" => Self::Create {
                target: match fields.0.get("target") {
                    None => return Err(bad_request("missing field `target`")),
                    Some(Value::String(path)) => path.clone(),
                    Some(Value::Object(_)) => fields.handle("target")?,
                    Some(_) => {
                        return Err(bad_request("`target` must be a dotted path or a handle"));
                    }
                },
                args: fields.args()?,
                kwargs: fields.kwargs()?,
            },
            "call" => Self::Call {
                method: fields.string("method")?,
                handle: fields.handle("handle")?,
                args: fields.args()?,
                kwargs: fields.kwargs()?,
            },
            "getattr" => Self::Getattr {
                name: fields.string("name")?,
                handle: fields.handle("handle")?,
            },
            "setattr" => Self::Setattr {
                name: fields.string("name")?,
                value: fields.required("value")?.clone(),
                handle: fields.handle("handle")?,
            },
            "release" => Self::Release {
                handle: fields.handle("handle")?,
            },
            "handles" => Self::Handles,
            "info" => Self::Info,
            "interrupt" => Self::Interrupt,
            "calls" => Self::Calls {
                all: match fields.0.get("all") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(all)) => *all,
                    Some(_) => return Err(bad_request("`all` must be true or false")),
                },
            },
            "shutdown" => Self::Shutdown,
            _ => {
                return Err(RemoteError {
                    type_name: "UnknownOperation".into(),
                    message: format!("unknown op `{}`", op.chars().take(100).collect::<String>()),
                    traceback: String::new(),
                });
            }
        };
        let session = match fields.0.get("session") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => return Err(bad_request("`session` must be a string")),
        };
        Ok((typed, session))
    }
}

fn bad_request(message: impl Into<String>) -> RemoteError {
    RemoteError {
        type_name: "BadRequest".into(),
        message: message.into(),
        traceback: String::new(),
    }
}

/// The fields of a request, read as the backend reads them.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn required(&self, name: &str) -> Result<&Value, RemoteError> {
        self.0
            .get(name)
            .ok_or_else(|| bad_request(format!("missing field `{name}`")))
    }

    fn string(&self, name: &str) -> Result<String, RemoteError> {
        match self.required(name)? {
            Value::String(text) => Ok(text.clone()),
            _ => Err(bad_request(format!("`{name}` must be a string"))),
        }
    }

    fn handle(&self, name: &str) -> Result<String, RemoteError> {
        let value = self.required(name)?;
        let id = match value {
            Value::Object(object) => object.get("$handle"),
            other => Some(other),
        };
        match id {
            Some(Value::String(id)) => Ok(id.clone()),
            _ => Err(bad_request(format!(
                "`{name}` must be a handle id like `h7` or {{\"$handle\": \"h7\"}}"
            ))),
        }
    }

    fn args(&self) -> Result<Vec<Value>, RemoteError> {
        match self.0.get("args") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(args)) => Ok(args.clone()),
            Some(_) => Err(bad_request("`args` must be a list")),
        }
    }

    fn kwargs(&self) -> Result<Map<String, Value>, RemoteError> {
        match self.0.get("kwargs") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(kwargs)) => Ok(kwargs.clone()),
            Some(_) => Err(bad_request("`kwargs` must be an object")),
        }
    }
}

/// A Python exception, as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    #[serde(rename = "type")]
    pub type_name: String,
    pub message: String,
    #[serde(default)]
    pub traceback: String,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The call id, for operations that run user code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

impl Reply {
    /// Read an answer object: `{"value": ...}` (with `stdout`/`stderr` for exec) or
    /// `{"error": {type, message, traceback}}`.
    pub fn from_json(mut object: Map<String, Value>) -> Result<Self, ReplyError> {
        if let Some(error) = object.remove("error") {
            return Err(match serde_json::from_value::<RemoteError>(error.clone()) {
                Ok(remote) => ReplyError::Remote(remote),
                Err(_) => ReplyError::Malformed(error.to_string()),
            });
        }
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        Ok(Self {
            stdout: text(object.remove("stdout")),
            stderr: text(object.remove("stderr")),
            call: text(object.remove("call")),
            value: object.remove("value").unwrap_or(Value::Null),
        })
    }
}

/// Why an answer object is not a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyError {
    Remote(RemoteError),
    Malformed(String),
}

/// A Python object the backend keeps; pass it back by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Handle {
    #[serde(rename = "$handle")]
    pub id: String,
    #[serde(rename = "type", default)]
    pub type_name: String,
    #[serde(default)]
    pub repr: String,
}

impl Handle {
    /// The JSON form that passes the handle as an argument: `{"$handle": "h7"}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "$handle": self.id })
    }
}

/// A value from Python: JSON, a handle, or bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    Json(Value),
    Handle(Handle),
    Bytes(Vec<u8>),
}

impl PyValue {
    pub fn from_json(value: Value) -> Self {
        if let Value::Object(object) = &value {
            if object.contains_key("$handle")
                && let Ok(handle) = serde_json::from_value::<Handle>(value.clone())
            {
                return Self::Handle(handle);
            }
            if object.len() == 1
                && let Some(Value::String(b64)) = object.get("$bytes")
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                return Self::Bytes(bytes);
            }
        }
        Self::Json(value)
    }

    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            Self::Handle(handle) => Some(handle),
            _ => None,
        }
    }

    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Self::Json(value) => Some(value),
            _ => None,
        }
    }

    /// Back to the wire form.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Json(value) => value.clone(),
            Self::Handle(handle) => serde_json::to_value(handle).unwrap_or(Value::Null),
            Self::Bytes(bytes) => serde_json::json!({
                "$bytes": base64::engine::general_purpose::STANDARD.encode(bytes)
            }),
        }
    }
}

/// What `exec` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub value: PyValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ops_round_trip() {
        let (op, fields) = Op::Eval { expr: "1+1".into() }.into_parts();
        assert_eq!(op, "eval");
        assert_eq!(Value::Object(fields), json!({"expr": "1+1"}));
        let parsed = Op::from_parts("exec", json!({"code": "x=1"}).as_object().unwrap().clone());
        assert_eq!(
            parsed,
            Op::Exec {
                code: "x=1".into(),
                timeout: None
            }
        );
        assert!(matches!(
            Op::from_parts("frobnicate", Map::new()),
            Op::Other { .. }
        ));
        assert_eq!(Op::Handles.into_parts().0, "handles");
    }

    /// One `Op` both ways: missing `args`/`kwargs` are empty, an unknown field or tag
    /// keeps the operation as given (`Other`), and typed fields survive a round trip.
    #[test]
    fn from_parts_reads_what_into_parts_writes() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            Op::from_parts("call", fields(json!({"handle": "h1", "method": "m"}))),
            Op::Call {
                handle: "h1".into(),
                method: "m".into(),
                args: Vec::new(),
                kwargs: Map::new(),
            }
        );
        for (op, extra) in [
            ("eval", json!({"expr": "1", "surprise": 1})),
            ("other", json!({"op": "x"})),
            ("exec", json!({"code": 5})),
        ] {
            assert_eq!(
                Op::from_parts(op, fields(extra.clone())),
                Op::Other {
                    op: op.into(),
                    fields: fields(extra)
                }
            );
        }
        let typed = Op::Create {
            target: "m:C".into(),
            args: vec![json!(1)],
            kwargs: fields(json!({"k": true})),
        };
        let (op, parts) = typed.clone().into_parts();
        assert_eq!(Op::from_parts(&op, parts), typed);
    }

    #[test]
    fn fields_read_as_the_backend_reads_them() {
        let fields = |v: Value| v.as_object().unwrap().clone();
        let (op, session) = Op::from_fields(
            "call",
            &fields(
                json!({"handle": {"$handle": "h1", "type": "x"}, "method": "m", "session": "s"}),
            ),
        )
        .unwrap();
        assert_eq!(
            op,
            Op::Call {
                handle: "h1".into(),
                method: "m".into(),
                args: vec![],
                kwargs: Map::new()
            }
        );
        assert_eq!(session.as_deref(), Some("s"));
        let bad = Op::from_fields("eval", &Map::new()).unwrap_err();
        assert_eq!(
            (bad.type_name.as_str(), bad.message.as_str()),
            ("BadRequest", "missing field `expr`")
        );
        let bad =
            Op::from_fields("call", &fields(json!({"handle": 7, "method": "m"}))).unwrap_err();
        assert_eq!(bad.type_name, "BadRequest");
        let unknown = Op::from_fields("frobnicate", &Map::new()).unwrap_err();
        assert_eq!(unknown.type_name, "UnknownOperation");
    }

    #[test]
    fn values() {
        let h = PyValue::from_json(json!({"$handle": "h7", "type": "a.B", "repr": "<B>"}));
        assert_eq!(h.as_handle().unwrap().id, "h7");
        assert_eq!(h.as_handle().unwrap().to_json(), json!({"$handle": "h7"}));
        assert_eq!(
            PyValue::from_json(json!({"$bytes": "aGk="})),
            PyValue::Bytes(b"hi".to_vec())
        );
        assert_eq!(PyValue::from_json(json!(2)), PyValue::Json(json!(2)));
        let err = Reply::from_json(
            json!({"error": {"type": "ZeroDivisionError", "message": "division by zero", "traceback": "tb"}})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(matches!(err, Err(ReplyError::Remote(r)) if r.type_name == "ZeroDivisionError"));
    }
}
