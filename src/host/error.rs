//! Errors as every interface shows them: `{code, message}` with a small code set.

use serde::Serialize;

use crate::{backend, runtime, venv};

/// What kind of failure; the HTTP status and gRPC code follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bad input: a bad name, a malformed request (400).
    Invalid,
    /// Missing or wrong token (401).
    Unauthorized,
    /// A request from a place that may not call (non-local Host, an Origin header) (403).
    Forbidden,
    /// No such environment, runtime or backend (404).
    NotFound,
    /// The name is taken, or the thing is busy (locked, in use) (409).
    Conflict,
    /// The operation ran and failed (the installer's own error, a backend that did not start) (422).
    Failed,
    /// The operation was cancelled.
    Cancelled,
    /// Something broke inside the host (500).
    Internal,
}

/// An error with its code and a message that names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::Invalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::Cancelled => 409,
            ErrorCode::Failed => 422,
            ErrorCode::Internal => 500,
        }
    }

    /// The gRPC status for this error.
    pub fn to_grpc(&self) -> tonic::Status {
        let code = match self.code {
            ErrorCode::Invalid => tonic::Code::InvalidArgument,
            ErrorCode::Unauthorized => tonic::Code::Unauthenticated,
            ErrorCode::Forbidden => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::Conflict => tonic::Code::AlreadyExists,
            ErrorCode::Failed => tonic::Code::Aborted,
            ErrorCode::Cancelled => tonic::Code::Cancelled,
            ErrorCode::Internal => tonic::Code::Internal,
        };
        tonic::Status::new(code, self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    crate::check::error_chain(e)
}

impl From<venv::Error> for ApiError {
    fn from(e: venv::Error) -> Self {
        use venv::Error as E;
        let code = match &e {
            E::Name(_) => ErrorCode::Invalid,
            E::NotFound { .. } => ErrorCode::NotFound,
            E::Exists { .. } | E::Lock { .. } | E::InUse { .. } | E::CaseCollision { .. } => {
                ErrorCode::Conflict
            }
            E::Runtime { source, .. } => match source.as_ref() {
                runtime::Error::NoDefault | runtime::Error::DefaultMissing(_) => ErrorCode::Failed,
                _ => ErrorCode::Invalid,
            },
            E::Requirement { .. } => ErrorCode::Invalid,
            E::Read { .. } | E::Write { .. } => ErrorCode::Internal,
            _ => ErrorCode::Failed,
        };
        Self::new(code, chain(&e))
    }
}

impl From<runtime::Error> for ApiError {
    fn from(e: runtime::Error) -> Self {
        use runtime::Error as E;
        let code = match &e {
            E::NotFound(_) | E::NoCatalogEntry { .. } => ErrorCode::NotFound,
            E::InvalidRequest(_) => ErrorCode::Invalid,
            E::RemoveAdopted(_) | E::InUse { .. } => ErrorCode::Conflict,
            E::Refused { .. } => ErrorCode::Invalid,
            E::Cancelled => ErrorCode::Cancelled,
            E::Io(_) | E::Config(_) => ErrorCode::Internal,
            _ => ErrorCode::Failed,
        };
        Self::new(code, chain(&e))
    }
}

impl From<backend::Error> for ApiError {
    fn from(e: backend::Error) -> Self {
        use backend::Error as E;
        let code = match &e {
            E::EnvironmentMissing { .. } => ErrorCode::NotFound,
            E::NotFound { .. } => ErrorCode::NotFound,
            E::IdTaken { .. }
            | E::NotReady { .. }
            | E::EnvironmentBusy { .. }
            | E::StillRunning { .. }
            | E::Ended { .. } => ErrorCode::Conflict,
            E::CurrentExe { .. } | E::CreateDir { .. } | E::Record(_) => ErrorCode::Internal,
            _ => ErrorCode::Failed,
        };
        Self::new(code, chain(&e))
    }
}

impl From<venv::name::Error> for ApiError {
    fn from(e: venv::name::Error) -> Self {
        Self::new(ErrorCode::Invalid, e.to_string())
    }
}
