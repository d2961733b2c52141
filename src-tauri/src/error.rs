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
    /// The core's message with its causes, one per line.
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error and its `source()` chain, as the CLI prints it.
    fn from_chain(code: ErrorCode, error: &dyn std::error::Error) -> Self {
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
        Self::new(code, message)
    }
}

pub type AppResult<T> = Result<T, AppError>;

impl From<beep_host::runtime::Error> for AppError {
    fn from(e: beep_host::runtime::Error) -> Self {
        use beep_host::runtime::Error as E;
        let code = match &e {
            E::NotFound(_) | E::NoDefault | E::DefaultMissing(_) | E::NoCatalogEntry { .. } => {
                ErrorCode::NotFound
            }
            E::InvalidRequest(_) | E::RemoveAdopted(_) => ErrorCode::Invalid,
            E::Cancelled => ErrorCode::Cancelled,
            E::Lock(_) => ErrorCode::Busy,
            _ => ErrorCode::Failed,
        };
        Self::from_chain(code, &e)
    }
}

impl From<beep_host::venv::Error> for AppError {
    fn from(e: beep_host::venv::Error) -> Self {
        use beep_host::venv::Error as E;
        let code = match &e {
            E::NotFound { .. } => ErrorCode::NotFound,
            E::Name(_) | E::Requirement { .. } | E::Exists { .. } => ErrorCode::Invalid,
            E::InUse { .. } | E::Lock { .. } => ErrorCode::Busy,
            _ => ErrorCode::Failed,
        };
        Self::from_chain(code, &e)
    }
}

impl From<beep_host::host::Error> for AppError {
    fn from(e: beep_host::host::Error) -> Self {
        Self::from_chain(ErrorCode::Failed, &e)
    }
}

impl From<beep_host::venv::name::Error> for AppError {
    fn from(e: beep_host::venv::name::Error) -> Self {
        Self::from_chain(ErrorCode::Invalid, &e)
    }
}

impl From<beep_host::backend::Error> for AppError {
    fn from(e: beep_host::backend::Error) -> Self {
        use beep_host::backend::Error as E;
        let code = match &e {
            E::NotFound { .. } | E::EnvironmentMissing { .. } => ErrorCode::NotFound,
            E::NotReady { .. } | E::IdTaken { .. } | E::EnvironmentBusy { .. } => ErrorCode::Busy,
            E::GrpcMissing { .. } => ErrorCode::Invalid,
            _ => ErrorCode::Failed,
        };
        Self::from_chain(code, &e)
    }
}

impl From<beep_host::daemon::Error> for AppError {
    fn from(e: beep_host::daemon::Error) -> Self {
        use beep_host::daemon::protocol::FailureCode as F;
        let code = match e.code() {
            Some(F::NotFound) => ErrorCode::NotFound,
            Some(F::Invalid) => ErrorCode::Invalid,
            Some(F::Conflict) => ErrorCode::Busy,
            _ => ErrorCode::Failed,
        };
        Self::from_chain(code, &e)
    }
}

impl From<beep_host::backend::client::Error> for AppError {
    fn from(e: beep_host::backend::client::Error) -> Self {
        Self::from_chain(ErrorCode::Failed, &e)
    }
}

impl From<beep_host::config::Error> for AppError {
    fn from(e: beep_host::config::Error) -> Self {
        let code = match &e {
            beep_host::config::Error::Installer(_) => ErrorCode::Invalid,
            _ => ErrorCode::Failed,
        };
        Self::from_chain(code, &e)
    }
}

impl From<beep_host::paths::Error> for AppError {
    fn from(e: beep_host::paths::Error) -> Self {
        Self::from_chain(ErrorCode::Failed, &e)
    }
}

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
