//! The core's one error vocabulary: what kind of failure an error is ([`ErrorCode`]),
//! and its text with its causes ([`chain`]). Every interface maps the code to its own
//! status (HTTP, gRPC, the app's code, the daemon's failure code) and shows the chain.

use serde::{Deserialize, Serialize};

/// What kind of failure, whatever the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bad input: a bad name, a malformed request, a request that cannot be met as asked.
    Invalid,
    /// No such environment, runtime or backend.
    NotFound,
    /// The name is taken, or the thing is busy, in use or in a state that refuses it.
    Conflict,
    /// The operation was cancelled.
    Cancelled,
    /// The operation ran and failed (a tool's own error, a download, a backend that did not start).
    Failed,
    /// Something broke inside the host (a file it keeps could not be read or written).
    Internal,
}

/// An error and its `source()` chain on one line, `: `-separated; a cause whose text the
/// line already holds is not repeated.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// What a person can do about an error, for interfaces that offer it as an action (the
/// app's buttons) instead of a command to type. The CLI's messages name the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// No usable default Python: choose one found on the machine or install one.
    InstallRuntime,
    /// The admin environment is missing or lacks a package the request needs: repair it.
    RepairAdmin,
    /// A runtime is unknown or broken: see the runtimes (remove, reinstall, pick another).
    Runtimes,
}

/// An error's chain as [`chain`] gives it, without the advice meant for a CLI user (which
/// `beep-host` command to run), and the [`Hint`] that stands for that advice.
pub fn advised(error: &(dyn std::error::Error + 'static)) -> (String, Option<Hint>) {
    let mut message = String::new();
    let mut hint = None;
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = match plain(cause) {
            Some((text, h)) => {
                hint = hint.or(h);
                text
            }
            None => cause.to_string(),
        };
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        next = cause.source();
    }
    (message, hint)
}

/// The text of an error whose message tells a CLI command, without it, and its hint.
fn plain(error: &(dyn std::error::Error + 'static)) -> Option<(String, Option<Hint>)> {
    use crate::runtime::Error as R;
    if let Some(e) = error.downcast_ref::<crate::Error>() {
        // Transparent: its text is its module error's.
        return match e {
            crate::Error::Runtime(e) => plain(e),
            crate::Error::Venv(e) => plain(e),
            crate::Error::Backend(e) => plain(e),
            crate::Error::Daemon(e) => plain(e),
            _ => None,
        };
    }
    // The daemon did this work for us: its answer holds the plain text and the hint.
    if let Some(crate::daemon::Error::Remote {
        message,
        plain,
        hint,
        ..
    }) = error.downcast_ref::<crate::daemon::Error>()
    {
        return Some((plain.clone().unwrap_or_else(|| message.clone()), *hint));
    }
    let runtime = error
        .downcast_ref::<R>()
        .or_else(|| error.downcast_ref::<Box<R>>().map(|b| &**b));
    if let Some(e) = runtime {
        return match e {
            R::NotFound { request } => Some((
                format!("No runtime matches `{request}`"),
                Some(Hint::Runtimes),
            )),
            R::NoDefault => Some((
                "No default runtime is set".to_string(),
                Some(Hint::InstallRuntime),
            )),
            R::DefaultMissing { key } => Some((
                format!("The default runtime `{key}` is missing"),
                Some(Hint::InstallRuntime),
            )),
            R::Unusable { key, problem } => Some((
                format!("Runtime `{key}` is broken: {problem}"),
                Some(Hint::Runtimes),
            )),
            R::InUse { key, users } => Some((
                format!(
                    "Failed to remove runtime `{key}`: it is used by {users}; stop or delete them first"
                ),
                None,
            )),
            _ => None,
        };
    }
    if let Some(crate::venv::Error::NotFound { name }) = error.downcast_ref::<crate::venv::Error>()
    {
        return Some((format!("Environment `{name}` does not exist"), None));
    }
    if let Some(crate::backend::Error::GrpcMissing { env, .. }) =
        error.downcast_ref::<crate::backend::Error>()
    {
        return Some((
            format!(
                "Failed to start an `rpc` backend in environment `{env}`: grpcio is not installed there; \
                 use the admin environment (the default), or install `grpcio protobuf` into `{env}`"
            ),
            Some(Hint::RepairAdmin),
        ));
    }
    None
}

impl crate::Error {
    /// What kind of failure this is.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Paths(e) => e.code(),
            Self::Config(e) => e.code(),
            Self::Lock(e) => e.code(),
            Self::Runtime(e) => e.code(),
            Self::Venv(e) => e.code(),
            Self::Backend(e) => e.code(),
            Self::Host(e) => e.code(),
            Self::Daemon(e) => e.code(),
            Self::Project(e) => e.code(),
            Self::Bundle(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_each_cause_once() {
        let e = crate::config::Error::Write {
            path: "/x/config.toml".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(
            chain(&e),
            "Failed to write config `/x/config.toml`: disk full"
        );
        // A cause already in the text (fs-err names the path too) is not repeated.
        let io = fs_err::read("/nonexistent/beep-chain-test").unwrap_err();
        let text = io.to_string();
        let e = crate::config::Error::Read {
            path: "/nonexistent/beep-chain-test".into(),
            source: io,
        };
        let line = chain(&e);
        assert_eq!(line.matches(&text).count(), 1, "{line}");
    }

    /// The app once cut "run `beep-host init`" out of messages with a regex: the core now
    /// says what can be done as a hint, and the text without the command.
    #[test]
    fn advice_for_the_cli_becomes_a_hint() {
        let e = crate::venv::Error::Runtime {
            name: "admin".into(),
            source: Box::new(crate::runtime::Error::NoDefault),
        };
        assert!(chain(&e).contains("beep-host init"), "{}", chain(&e));
        let (text, hint) = advised(&e);
        assert_eq!(
            text,
            "Failed to find a runtime for environment `admin`: No default runtime is set"
        );
        assert_eq!(hint, Some(Hint::InstallRuntime));
        let e: crate::Error = crate::runtime::Error::Unusable {
            key: "k".into(),
            problem: "gone".into(),
        }
        .into();
        assert_eq!(
            advised(&e),
            (
                "Runtime `k` is broken: gone".to_string(),
                Some(Hint::Runtimes)
            )
        );
        let e = crate::backend::Error::GrpcMissing {
            env: "a".into(),
            path: "/e/a".into(),
        };
        let (text, hint) = advised(&e);
        assert!(
            !text.contains("beep-host") && text.contains("grpcio"),
            "{text}"
        );
        assert_eq!(hint, Some(Hint::RepairAdmin));
        // A runtime in use: what uses it, without the CLI's `--force`.
        let e = crate::runtime::Error::InUse {
            key: "cpython-3.12".into(),
            users: crate::runtime::RuntimeUsers {
                runtime_backends: vec!["d40c466a".into()],
                ..Default::default()
            },
        };
        assert!(chain(&e).contains("--force"), "{}", chain(&e));
        let (text, hint) = advised(&e);
        assert_eq!(
            text,
            "Failed to remove runtime `cpython-3.12`: it is used by backends running on it: d40c466a; stop or delete them first"
        );
        assert_eq!(hint, None);
        // Other errors are their chain, with no hint.
        let e = crate::config::Error::Write {
            path: "/x/config.toml".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(advised(&e), (chain(&e), None));
    }

    #[test]
    fn the_crate_error_keeps_its_module_code() {
        let e: crate::Error = crate::runtime::Error::RemoveAdopted { key: "k".into() }.into();
        assert_eq!(e.code(), ErrorCode::Conflict);
        let e: crate::Error = crate::venv::Error::NotFound { name: "x".into() }.into();
        assert_eq!(e.code(), ErrorCode::NotFound);
    }
}
