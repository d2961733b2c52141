//! Errors as the UI sees them: `{code, message}`, never a bare string.

use serde::Serialize;

/// What kind of failure; grows only when the UI branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Invalid,
    Busy,
    Cancelled,
    Failed,
}

/// The error of every command.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct AppError {
    pub code: ErrorCode,
    /// The core's message with its causes, without advice meant for the CLI (which
    /// `beep-host` command to run): the hint stands for it.
    pub message: String,
    /// What the UI can offer to do about it (a button), when the core knows.
    pub hint: Option<Hint>,
}

/// The core's [`beep_host::error::Hint`], as the UI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// Choose or install a default Python (the first-run choice).
    InstallRuntime,
    /// Repair the admin environment.
    RepairAdmin,
    /// See the runtimes.
    Runtimes,
}

impl From<beep_host::error::Hint> for Hint {
    fn from(hint: beep_host::error::Hint) -> Self {
        use beep_host::error::Hint as H;
        match hint {
            H::InstallRuntime => Self::InstallRuntime,
            H::RepairAdmin => Self::RepairAdmin,
            H::Runtimes => Self::Runtimes,
        }
    }
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A core error: its code in the UI's terms, its text with its causes and its hint.
    pub fn from_core(
        code: beep_host::ErrorCode,
        error: &(dyn std::error::Error + 'static),
    ) -> Self {
        let (message, hint) = beep_host::error::advised(error);
        Self {
            code: code.into(),
            message,
            hint: hint.map(Into::into),
        }
    }
}

impl From<beep_host::ErrorCode> for ErrorCode {
    /// The UI tells apart only what it shows differently: a conflict is `busy`, and an
    /// internal error is a failure like any other.
    fn from(code: beep_host::ErrorCode) -> Self {
        use beep_host::ErrorCode as C;
        match code {
            C::Invalid => Self::Invalid,
            C::NotFound => Self::NotFound,
            C::Conflict => Self::Busy,
            C::Cancelled => Self::Cancelled,
            C::Failed | C::Internal => Self::Failed,
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

macro_rules! from_core {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for AppError {
            fn from(e: $error) -> Self {
                Self::from_core(e.code(), &e)
            }
        })*
    };
}

from_core!(
    beep_host::Error,
    beep_host::runtime::Error,
    beep_host::venv::Error,
    beep_host::venv::name::Error,
    beep_host::backend::Error,
    beep_host::backend::client::Error,
    beep_host::host::Error,
    beep_host::daemon::Error,
    beep_host::config::Error,
    beep_host::paths::Error,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_as_code_and_message() {
        let e: AppError = beep_host::venv::Error::NotFound { name: "x".into() }.into();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "not_found");
        assert!(json["message"].as_str().unwrap().contains("`x`"));
        let e: AppError = beep_host::runtime::Error::Cancelled.into();
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], "cancelled");
        let e: AppError = beep_host::venv::EnvName::parse("../x").unwrap_err().into();
        assert_eq!(e.code, ErrorCode::Invalid);
    }

    /// The app and the host API once disagreed (removing an adopted runtime was Invalid
    /// here, Conflict there; an existing environment Invalid here): both follow the core.
    #[test]
    fn codes_follow_the_core() {
        let adopted: AppError = beep_host::runtime::Error::RemoveAdopted { key: "k".into() }.into();
        assert_eq!(adopted.code, ErrorCode::Busy);
        let exists: AppError = beep_host::venv::Error::Exists {
            name: "a".into(),
            path: "/e/a".into(),
        }
        .into();
        assert_eq!(exists.code, ErrorCode::Busy);
        let ended: AppError = beep_host::backend::Error::Ended {
            id: beep_host::backend::BackendId::parse("b1").unwrap(),
        }
        .into();
        assert_eq!(ended.code, ErrorCode::Busy);
        let remote: AppError = beep_host::daemon::Error::Remote {
            code: beep_host::daemon::protocol::FailureCode::NotFound,
            message: "gone".into(),
            plain: None,
            hint: None,
        }
        .into();
        assert_eq!(remote.code, ErrorCode::NotFound);
        let record: AppError = beep_host::paths::Error::NoHome.into();
        assert_eq!(record.code, ErrorCode::Failed);
    }

    /// No message tells the user to run a CLI command: the hint is the UI's button.
    #[test]
    fn cli_advice_crosses_as_a_hint() {
        let e: AppError = beep_host::venv::Error::Runtime {
            name: "admin".into(),
            source: Box::new(beep_host::runtime::Error::NoDefault),
        }
        .into();
        assert_eq!(
            e.message,
            "Failed to find a runtime for environment `admin`: No default runtime is set"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["hint"], "install_runtime");
        let e: AppError =
            beep_host::Error::from(beep_host::runtime::Error::DefaultMissing { key: "k".into() })
                .into();
        assert!(!e.message.contains("beep-host"), "{}", e.message);
        assert_eq!(e.hint, Some(Hint::InstallRuntime));
        let e: AppError = beep_host::venv::Error::NotFound { name: "x".into() }.into();
        assert_eq!(
            (e.message.as_str(), e.hint),
            ("Environment `x` does not exist", None)
        );
    }

    /// A failure the daemon sends back keeps the core's hint, and the message shown is the
    /// one without CLI advice (the CLI's text stays in `message` on the wire).
    #[test]
    fn a_daemon_failure_crosses_with_its_hint() {
        let e: AppError = beep_host::Error::from(beep_host::daemon::Error::Remote {
            code: beep_host::daemon::protocol::FailureCode::Invalid,
            message: "Failed to start: grpcio is not installed there. Run `beep-host venv admin`"
                .into(),
            plain: Some("Failed to start: grpcio is not installed there".into()),
            hint: Some(beep_host::error::Hint::RepairAdmin),
        })
        .into();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert_eq!(e.message, "Failed to start: grpcio is not installed there");
        assert_eq!(e.hint, Some(Hint::RepairAdmin));
    }

    #[test]
    fn causes_are_kept() {
        let io = std::io::Error::other("disk full");
        let e: AppError = beep_host::config::Error::Write {
            path: "/x/config.toml".into(),
            source: io,
        }
        .into();
        assert!(
            e.message.contains("config.toml") && e.message.contains("disk full"),
            "{}",
            e.message
        );
    }
}
