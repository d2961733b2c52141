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

    #[test]
    fn the_crate_error_keeps_its_module_code() {
        let e: crate::Error = crate::runtime::Error::RemoveAdopted { key: "k".into() }.into();
        assert_eq!(e.code(), ErrorCode::Conflict);
        let e: crate::Error = crate::venv::Error::NotFound { name: "x".into() }.into();
        assert_eq!(e.code(), ErrorCode::NotFound);
    }
}
